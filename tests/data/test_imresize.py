"""MATLAB-compatible imresize: bit-exact against the official benchmark LR files, plus analytic checks."""

from __future__ import annotations

import pytest
import torch

from sr_lit.data.imresize import bicubic_upscale, imresize, make_lr, modcrop, weight_matrix
from tests._shared import benchmark_triplets

SCALES = (2, 3, 4)


# --- the official files (EDSR benchmark LR = symmetric border) ------------------------------------


@pytest.mark.data
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("set_name", ["Set5", "Set14"])
def test_make_lr_bit_exact_with_official_files(set_name: str, scale: int) -> None:
    total = same = 0
    worst = (0, "")
    for name, hr, lr_ref in benchmark_triplets(set_name, scale):
        lr = make_lr(hr, scale)
        assert lr.dtype == torch.uint8
        assert lr.shape == lr_ref.shape, (name, lr.shape, lr_ref.shape)  # floor(HR / s), C = 1 for bridge
        diff = (lr.int() - lr_ref.int()).abs()
        total += diff.numel()
        same += int((diff == 0).sum())
        worst = max(worst, (int(diff.max()), name))
    # Measured: every pixel of all 57 files identical (Set5 425,592 / 187,962 / 106,398 values at
    # x2/x3/x4, Set14 2,284,939 / 1,011,058 / 570,547). Assert the strongest true statement.
    assert worst[0] == 0 and same == total, f"{set_name} x{scale}: {same}/{total} equal, max diff {worst}"


@pytest.mark.data
@pytest.mark.parametrize("scale", SCALES)
def test_replicate_differs_only_on_outer_two_lr_pixels(scale: int) -> None:
    n_border_diff = 0
    for name, hr, _ in benchmark_triplets("Set5", scale):
        sym = make_lr(hr, scale, border="symmetric").int()
        rep = make_lr(hr, scale, border="replicate").int()
        assert torch.equal(sym[..., 2:-2, 2:-2], rep[..., 2:-2, 2:-2]), name
        n_border_diff += int((sym != rep).sum())
    assert n_border_diff > 0  # the option really changes something (RCAN/SelfExSR files)


def test_replicate_interior_equal_on_random_image() -> None:
    g = torch.Generator().manual_seed(0)
    hr = torch.randint(0, 256, (3, 61, 47), generator=g, dtype=torch.uint8)
    for s in SCALES:
        sym, rep = make_lr(hr, s).int(), make_lr(hr, s, border="replicate").int()
        assert torch.equal(sym[..., 2:-2, 2:-2], rep[..., 2:-2, 2:-2])
        assert not torch.equal(sym, rep)


# --- MATLAB's known kernel weights and analytic invariants ------------------------------------------


def test_x2_upscale_weights_are_matlab_keys_weights() -> None:
    w = weight_matrix(16, 32, 2.0)
    # Output pixel 5 (0-based) sits at input 2.25: taps 1..4, distances 1.25, 0.25, -0.75, -1.75.
    expected = torch.tensor([-0.0703125, 0.8671875, 0.2265625, -0.0234375], dtype=torch.float64)
    assert torch.equal(w[5, 1:5], expected)
    assert w[5].count_nonzero() == 4


def test_half_downscale_weights_are_antialiased() -> None:
    w = weight_matrix(32, 16, 0.5)
    # Output 5 sits at input 10.5 (0-based): 8 taps, kernel stretched by 2, scaled by 1/2.
    half = torch.tensor([-0.01171875, -0.03515625, 0.11328125, 0.43359375], dtype=torch.float64)
    expected = torch.cat([half, half.flip(0)])
    assert torch.allclose(w[5, 7:15], expected, atol=1e-15, rtol=0)
    assert torch.allclose(w.sum(dim=1), torch.ones(16, dtype=torch.float64), atol=1e-14, rtol=0)


@pytest.mark.parametrize("border", ["symmetric", "replicate"])
@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3, 1 / 4])
def test_constant_image_stays_constant(scale: float, border: str) -> None:
    x = torch.full((2, 3, 24, 36), 137.0, dtype=torch.float64)
    y = imresize(x, scale=scale, border=border)
    assert torch.allclose(y, torch.full_like(y, 137.0), atol=1e-10, rtol=0)
    yq = imresize(x, scale=scale, border=border, quantize=True)
    assert torch.equal(yq, torch.full_like(yq, 137.0))


@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3, 1 / 4])
def test_linear_ramp_is_preserved_in_the_interior(scale: float) -> None:
    # Symmetric normalised kernels reproduce linear functions, so a ramp f(j) = j maps to
    # u(x) - 1 with MATLAB's mapping u = x / scale + 0.5 (1 - 1 / scale) (1-based x).
    n = 48
    ramp = torch.arange(n, dtype=torch.float64).expand(5, n)
    y = imresize(ramp, scale=scale)
    out = y.shape[-1]
    x = torch.arange(1, out + 1, dtype=torch.float64)
    expected = x / scale + 0.5 * (1 - 1 / scale) - 1
    # The border reaches 2 input px in: 2 LR px when downscaling, 2 * scale px when upscaling.
    margin = 2 * round(scale) + 1 if scale > 1 else 3
    inner = slice(margin, out - margin)
    assert torch.allclose(y[0, inner], expected[inner], atol=1e-9, rtol=0)


# --- shapes, batching, dtypes, errors --------------------------------------------------------------


def test_output_sizes() -> None:
    x = torch.zeros(1, 279, 280)
    assert imresize(x, scale=1 / 3).shape[-2:] == (93, 94)  # MATLAB ceil(scale * in), exact for 279
    assert imresize(x, scale=2).shape[-2:] == (558, 560)
    assert imresize(x, out_size=(100, 50)).shape[-2:] == (100, 50)
    hr = torch.zeros(3, 361, 250, dtype=torch.uint8)  # Set14 comic (H x W)
    assert make_lr(hr, 3).shape == (3, 120, 83)
    assert modcrop(hr, 4).shape == (3, 360, 248)


def test_batched_equals_per_image() -> None:
    g = torch.Generator().manual_seed(1)
    hr = torch.randint(0, 256, (2, 4, 3, 40, 33), generator=g, dtype=torch.uint8)
    lr = make_lr(hr, 4)
    sr = bicubic_upscale(lr, 4)
    xf = hr.float() / 255
    yf = imresize(xf, scale=0.5)
    for i in range(2):
        for j in range(4):
            assert torch.equal(lr[i, j], make_lr(hr[i, j], 4))
            assert torch.equal(sr[i, j], bicubic_upscale(lr[i, j], 4))
            assert torch.allclose(yf[i, j], imresize(xf[i, j], scale=0.5), atol=1e-6, rtol=0)


def test_dtypes_and_float_path_close_to_uint8_path() -> None:
    # Smooth content: on noise the per-pass clamp of the uint8 path legitimately differs a lot.
    yy, xx = torch.meshgrid(torch.arange(20.0), torch.arange(30.0), indexing="ij")
    smooth = 128 + 60 * torch.sin(xx / 5) * torch.cos(yy / 7) + torch.arange(3.0).view(3, 1, 1) * 10
    lr = smooth.round().to(torch.uint8)
    up_u8 = bicubic_upscale(lr, 2)
    up_f = bicubic_upscale(lr.float() / 255, 2)
    assert up_u8.dtype == torch.uint8 and up_f.dtype == torch.float32
    assert up_f.shape == up_u8.shape == (3, 40, 60)
    # Float path is unrounded: within about a grey level of the per-pass-rounded uint8 path.
    assert (up_f.clamp(0, 1) * 255 - up_u8.float()).abs().max() <= 1.5
    assert bicubic_upscale(lr.double(), 3).dtype == torch.float64
    assert imresize(lr, scale=2).dtype == torch.float32


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"scale": 0}, "scale"),
        ({"scale": -2}, "scale"),
        ({"scale": None}, "exactly one"),
        ({"scale": 2, "out_size": (4, 4)}, "exactly one"),
        ({"out_size": (0, 4)}, "out_size"),
        ({"scale": 2, "border": "reflect"}, "border"),
    ],
)
def test_imresize_errors(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        imresize(torch.zeros(8, 8), **kwargs)


def test_make_lr_and_upscale_errors() -> None:
    hr = torch.zeros(3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="scale"):
        make_lr(hr, 2.5)
    with pytest.raises(ValueError, match="scale"):
        make_lr(hr, 0)
    with pytest.raises(ValueError, match="hr_uint8"):
        make_lr(hr.float(), 2)
    with pytest.raises(ValueError, match="border"):
        make_lr(hr, 2, border="mirror")
    with pytest.raises(ValueError, match="smaller than scale"):
        make_lr(torch.zeros(3, 3, 8, dtype=torch.uint8), 4)
    with pytest.raises(ValueError, match="scale"):
        bicubic_upscale(hr, 1.5)
    with pytest.raises(ValueError, match="x must have"):
        imresize(torch.zeros(5), scale=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    g = torch.Generator().manual_seed(3)
    hr = torch.randint(0, 256, (2, 3, 64, 48), generator=g, dtype=torch.uint8)
    lr = make_lr(hr, 3)
    lr_cuda = make_lr(hr.cuda(), 3)
    assert lr_cuda.is_cuda and torch.equal(lr_cuda.cpu(), lr)
    assert torch.equal(bicubic_upscale(lr.cuda(), 3).cpu(), bicubic_upscale(lr, 3))
    xf = hr.float() / 255
    assert torch.allclose(imresize(xf.cuda(), scale=0.25).cpu(), imresize(xf, scale=0.25), atol=1e-5)
