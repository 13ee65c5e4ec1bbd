"""Dynamic high-pass filter (DESIGN 1.1): kernels, zero-DC property, shift vs unfold implementations, and the
difference form sum_t w_t (x - x_t) the model computes against the definition in DESIGN 1.1 x - L."""

from __future__ import annotations

import pytest
import torch

from sr_lit.models.blocks.hpf import (
    DynamicHPF,
    dynamic_highpass_shift,
    dynamic_highpass_unfold,
    dynamic_lowpass_unfold,
    parse_hpf,
)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_shift_matches_unfold_forward_and_backward(kernel_size: int) -> None:
    torch.manual_seed(0)
    groups, taps = 4, kernel_size * kernel_size
    x = torch.randn(2, 8, 11, 13)
    w = torch.randn(2, groups * taps, 11, 13).softmax(dim=1)
    grad_out = torch.randn(2, 8, 11, 13)
    results = []
    for highpass in (dynamic_highpass_unfold, dynamic_highpass_shift):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        out = highpass(xi, wi, kernel_size, groups)
        out.backward(grad_out)
        results.append((out.detach(), xi.grad, wi.grad))
    for ref, lean in zip(*results):
        torch.testing.assert_close(lean, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_shift_hand_written_backward_passes_gradcheck(kernel_size: int) -> None:
    # the shift path's backward is hand-written (an autograd.Function): check it against finite differences
    torch.manual_seed(0)
    x = torch.randn(1, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 2 * kernel_size**2, 5, 6, dtype=torch.float64).softmax(dim=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: dynamic_highpass_shift(a, b, kernel_size, 2), (x, w))


@pytest.mark.parametrize("needs", ["x", "w"])
def test_shift_backward_with_one_input_needing_grad(needs: str) -> None:
    # a frozen predictor (w without grad) or a frozen trunk (x without grad) must still get its one gradient
    torch.manual_seed(1)
    x, w = torch.randn(2, 4, 6, 5), torch.randn(2, 18, 6, 5).softmax(dim=1)
    grads = []
    for highpass in (dynamic_highpass_unfold, dynamic_highpass_shift):
        xi, wi = x.clone().requires_grad_(needs == "x"), w.clone().requires_grad_(needs == "w")
        highpass(xi, wi, 3, 2).square().sum().backward()
        grads.append((xi if needs == "x" else wi).grad)
        assert (wi if needs == "x" else xi).grad is None
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-5)


def test_shift_without_grad_equals_with_grad() -> None:
    # inference / export takes the plain-ops branch: same numbers as the autograd.Function branch
    x, w = torch.randn(1, 8, 7, 9), torch.randn(1, 4 * 9, 7, 9).softmax(dim=1)
    with torch.no_grad():
        plain = dynamic_highpass_shift(x, w, 3, 4)
    with_grad = dynamic_highpass_shift(x.clone().requires_grad_(), w, 3, 4)
    assert with_grad.requires_grad
    torch.testing.assert_close(with_grad.detach(), plain, atol=0, rtol=0)


def test_centre_tap_kernel_passes_no_high_frequencies() -> None:
    x = torch.randn(1, 4, 6, 7)
    w = torch.zeros(1, 2 * 9, 6, 7)
    w[:, 4] = w[:, 9 + 4] = 1.0  # centre tap of both groups: L = x
    torch.testing.assert_close(dynamic_lowpass_unfold(x, w, 3, 2), x)
    for highpass in (dynamic_highpass_shift, dynamic_highpass_unfold):
        assert torch.equal(highpass(x, w, 3, 2), torch.zeros_like(x))


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_difference_form_equals_x_minus_lowpass(kernel_size: int) -> None:
    # the definition in DESIGN 1.1 HPF = x - L, L = sum_t w_t x_t, for per-group normalised kernels (float64: exact sums)
    torch.manual_seed(2)
    x = torch.randn(2, 8, 9, 7, dtype=torch.float64)
    w = torch.randn(2, 4, kernel_size**2, 9, 7, dtype=torch.float64).softmax(dim=2).flatten(1, 2)
    definition = x - dynamic_lowpass_unfold(x, w, kernel_size, 4)
    for highpass in (dynamic_highpass_shift, dynamic_highpass_unfold):
        torch.testing.assert_close(highpass(x, w, kernel_size, 4), definition, atol=1e-12, rtol=0)


@pytest.mark.parametrize("impl", ["shift", "unfold"])
@pytest.mark.parametrize("softmax", ["group", "joint"])
def test_module_computes_x_minus_lowpass(impl: str, softmax: str) -> None:
    torch.manual_seed(3)
    hpf = DynamicHPF(16, kernel_size=3, groups=4, softmax=softmax, impl=impl).double()
    x = torch.randn(2, 16, 8, 9, dtype=torch.float64)
    definition = x - dynamic_lowpass_unfold(x, hpf.kernels(x), 3, 4)
    torch.testing.assert_close(hpf(x), definition, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_group_softmax_kernels_sum_to_one_and_constant_maps_to_zero(kernel_size: int) -> None:
    torch.manual_seed(0)
    hpf = DynamicHPF(16, kernel_size=kernel_size, groups=4, softmax="group")
    x = torch.randn(2, 16, 9, 10)
    kernels = hpf.kernels(x).unflatten(1, (4, kernel_size * kernel_size))
    torch.testing.assert_close(kernels.sum(dim=2), torch.ones(2, 4, 9, 10))
    # Constant per channel: zero DC gain -> exactly zero high-pass (every difference x - x_t is 0), any magnitude
    constant = torch.full((2, 16, 9, 10), 0.7) + torch.linspace(0, 300, 16).view(1, 16, 1, 1)
    assert torch.equal(hpf(constant), torch.zeros_like(constant))
    hpf.eval()
    assert torch.equal(hpf(constant), torch.zeros_like(constant))


def test_joint_softmax_sums_to_one_over_all_channels() -> None:
    torch.manual_seed(0)
    hpf = DynamicHPF(16, kernel_size=3, groups=4, softmax="joint")
    kernels = hpf.kernels(torch.randn(2, 16, 9, 10))
    torch.testing.assert_close(kernels.sum(dim=1), torch.ones(2, 9, 10))


def test_impls_agree_inside_the_module() -> None:
    torch.manual_seed(0)
    shift = DynamicHPF(16, groups=8, impl="shift").eval()
    unfold = DynamicHPF(16, groups=8, impl="unfold").eval()
    unfold.load_state_dict(shift.state_dict())
    x = torch.randn(1, 16, 12, 9)
    torch.testing.assert_close(shift(x), unfold(x), atol=1e-5, rtol=1e-5)


def test_enhance_combines_add_or_replace() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 8, 7, 7)
    add = DynamicHPF(8, groups=2, combine="add").eval()
    replace = DynamicHPF(8, groups=2, combine="replace").eval()
    replace.load_state_dict(add.state_dict())
    torch.testing.assert_close(add.enhance(x), x + add(x))
    torch.testing.assert_close(replace.enhance(x), add(x))


def test_predictor_layout() -> None:
    hpf = DynamicHPF(32, kernel_size=5, groups=8, bn=False)
    assert hpf.predictor.weight.shape == (8 * 25, 32, 5, 5)
    assert hpf.predictor.bias is None and hpf.predictor.padding_mode == "reflect"
    assert isinstance(DynamicHPF(32).norm, torch.nn.BatchNorm2d)
    assert DynamicHPF(32, kernel_size=5).receptive_radius == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channels": 12, "groups": 8}, "groups=8 must divide channels=12"),
        ({"channels": 16, "kernel_size": 4}, "kernel_size must be odd"),
        ({"channels": 16, "softmax": "pixel"}, "softmax must be one of group, joint"),
        ({"channels": 16, "combine": "mul"}, "combine must be one of add, replace"),
        ({"channels": 16, "impl": "cuda"}, "impl must be one of shift, unfold"),
    ],
)
def test_dynamic_hpf_rejects_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DynamicHPF(**kwargs)


def test_parse_hpf() -> None:
    assert parse_hpf({"name": "none"}) is None
    plan = parse_hpf({"name": "dynamic", "kernel_size": 5, "placement": "every", "every": 2})
    assert plan is not None and plan.placement == "every" and plan.every == 2
    assert [i for i in range(6) if plan.in_block(i)] == [1, 3, 5]
    assert plan.build(16).kernel_size == 5
    with pytest.raises(ValueError, match="hpf.placement must be one of auto, every"):
        parse_hpf({"name": "dynamic", "placement": "end"})
    with pytest.raises(ValueError, match="hpf.every must be an integer >= 1"):
        parse_hpf({"name": "dynamic", "every": 0})
    with pytest.raises(ValueError, match=r"unknown key hpf.'sigma'"):
        parse_hpf({"name": "dynamic", "sigma": 1})
    with pytest.raises(ValueError, match="hpf.name must be one of none, dynamic"):
        parse_hpf({"name": "static"})
