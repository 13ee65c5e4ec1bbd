"""bf16 autocast (what trainer.precision=bf16-mixed runs): the units stay in bf16 where it is safe, their small
reductions and the output conv stay fp32, and a training step's gradients agree with the fp32 step.

Tolerances. bf16 keeps 8 significant bits: one rounding is a relative error of at most 2^-9 (0.2 %).
- A unit alone, given bf16 inputs, against fp32 arithmetic on the same (bf16-rounded) inputs: each output or
  gradient value passes through a handful of roundings, so a relative L2 error of a few 2^-9 per tensor; the bound
  2^-6 (1.6 %) is 8 roundings. A unit that silently computed in fp32 would pass this, so the dtype of what it hands
  on is checked too (bf16 in, bf16 out).
- A whole step against the fp32 step (same weights, same batch): every convolution rounds its inputs, forward
  and backward, so the gradients differ by a few % per tensor. Tensors of local operators (convolutions, the HPF
  predictor, BatchNorm): at most 8 % (measured 2026-12-02 over 6 seeds x both models below: median 1 %, max 4.2 %).
  Tensors of the attention units (MLP/FC, MMCA's frequency logits) have gradients that are sums over the whole
  feature map, whose terms cancel: they amplify the upstream rounding (measured median 1 %, but up to 47 % for a
  2-element hidden bias of edsr_tiny's MMCA, 32 -> 2 -> 32). Their bounds: median over them 5 %, each one's cosine
  >= 0.8 (measured min 0.886). The whole gradient's cosine (the direction of the step): >= 0.9999 (measured
  0.99997).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sr_lit.models.blocks.attention import ChannelAttention, FcaAttention, MMCAttention
from sr_lit.models.blocks.hpf import DynamicHPF
from sr_lit.models.blocks.precision import autocast_off, reflect_pad
from sr_lit.models.registry import build_model

BF16 = torch.bfloat16
UNIT_BOUND = 2.0**-6


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.float().flatten(), b.float().flatten(), dim=0))


UNITS = {
    "mmca": lambda: MMCAttention(32),
    "fca": lambda: FcaAttention(32),
    "ca": lambda: ChannelAttention(32, reduction=4),
    "hpf_shift": lambda: DynamicHPF(32),
    "hpf_unfold": lambda: DynamicHPF(32, impl="unfold"),
    "hpf_joint": lambda: DynamicHPF(32, softmax="joint"),
}


@pytest.mark.parametrize("name", list(UNITS))
def test_unit_keeps_bf16_and_matches_fp32_arithmetic(name: str) -> None:
    torch.manual_seed(0)
    unit = UNITS[name]()
    # feature magnitudes of an EDSR working on [0, 255]; FCA/CA get smaller ones so that their sigmoid gates are
    # not saturated (a saturated gate has zero gradient: nothing to compare)
    amp = 2.0 if name in ("fca", "ca") else 20.0
    x = (amp * torch.randn(2, 32, 30, 26) + 3 * torch.randn(1, 32, 1, 1)).to(BF16)
    grad = torch.randn(2, 32, 30, 26).to(BF16)

    def run(x_in: torch.Tensor, g_in: torch.Tensor, autocast: bool) -> tuple[torch.Tensor, ...]:
        unit.zero_grad()
        xi = x_in.clone().requires_grad_()
        with torch.autocast("cpu", dtype=BF16, enabled=autocast):
            y = unit(xi)
        y.backward(g_in.to(y.dtype))
        grads = [p.grad for p in unit.parameters()]
        return (y.detach(), xi.grad, *grads)

    got = run(x, grad, autocast=True)
    ref = run(x.float(), grad.float(), autocast=False)
    assert got[0].dtype == BF16, f"{name} hands on {got[0].dtype} under bf16 autocast"
    assert got[1].dtype == BF16
    names = ["output", "input grad", *(n for n, _ in unit.named_parameters())]
    for label, a, b in zip(names, got, ref):
        assert b.norm() > 0, f"{name}: {label} is zero: the comparison would be empty"
        assert _rel(a, b) < UNIT_BOUND, f"{name}: {label} relative error {_rel(a, b):.2e}"


def test_reflect_pad_keeps_the_dtype_under_autocast() -> None:
    # CPU autocast runs reflection_pad2d in fp32: a plain F.pad would upcast the HPF and the residual stream after it
    x = torch.randn(1, 4, 6, 6).to(BF16)
    with torch.autocast("cpu", dtype=BF16):
        assert F.pad(x, (1, 1, 1, 1), mode="reflect").dtype == torch.float32  # the behaviour worked around
        assert reflect_pad(x, 1).dtype == BF16
        with autocast_off(x):
            assert not torch.is_autocast_enabled("cpu")
        assert torch.is_autocast_enabled("cpu")
    torch.testing.assert_close(reflect_pad(x, 1), F.pad(x, (1, 1, 1, 1), mode="reflect"), atol=0, rtol=0)


MODELS = {
    "edsr_tiny+mmca+hpf": dict(
        backbone={"arch": "edsr", "n_resblocks": 8, "n_feats": 32, "res_scale": 1.0, "rgb_range": 255},
        attention={"name": "mmca"},
        hpf={"name": "dynamic"},
    ),
    "rcan_g1b2+fca+hpf": dict(
        backbone={"arch": "rcan", "n_resgroups": 1, "n_resblocks": 2, "n_feats": 32, "rgb_range": 255},
        attention={"name": "fca", "reduction": 8},
        hpf={"name": "dynamic"},
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_bf16_step_gradients_agree_with_fp32(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(**MODELS[name], scale=2).train()
    lr = torch.rand(4, 3, 24, 24)
    hr = (F.interpolate(lr, scale_factor=2, mode="bicubic") + 0.02 * torch.randn(4, 3, 48, 48)).clamp(0, 1)
    grads = {}
    for precision in ("fp32", "bf16"):
        model.zero_grad()
        with torch.autocast("cpu", dtype=BF16, enabled=precision == "bf16"):
            sr = model(lr)
        # the output conv runs in fp32 under autocast: the loss sees no bf16-rounded output
        assert sr.dtype == torch.float32
        F.l1_loss(sr * 255, hr * 255).backward()
        grads[precision] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert grads["bf16"].keys() == grads["fp32"].keys()
    rel = {n: _rel(grads["bf16"][n], g) for n, g in grads["fp32"].items()}
    cos = {n: _cos(grads["bf16"][n], g) for n, g in grads["fp32"].items()}
    global_sums = [n for n in rel if any(part in n for part in ("mlp.", "freq_logits", ".fc.", "conv_du."))]
    local = [n for n in rel if n not in global_sums]
    assert global_sums and local
    worst = max(local, key=rel.get)
    assert rel[worst] < 0.08, (worst, rel[worst])
    assert sorted(rel[n] for n in global_sums)[len(global_sums) // 2] < 0.05
    assert min(cos[n] for n in global_sums) > 0.8, min((cos[n], n) for n in global_sums)
    whole = [torch.cat([g[n].flatten() for n in rel]) for g in (grads["bf16"], grads["fp32"])]
    assert _cos(*whole) > 0.9999
    # and bf16 really ran: identical gradients would mean autocast never reached the convolutions
    assert rel[worst] > 1e-4


def test_native_bf16_means_the_cpu_has_the_instructions() -> None:
    """On x86 Linux: true exactly when the CPU reports AVX-512 BF16 or AMX (oneDNN's own bf16 flag is also true on
    AVX-512 CPUs without them, where bf16 is emulated and slower than fp32, and it decides `make train`'s run)."""
    import platform
    from pathlib import Path

    from sr_lit.models.blocks.precision import native_bf16

    cpuinfo = Path("/proc/cpuinfo")
    if platform.machine() != "x86_64" or not cpuinfo.is_file():
        pytest.skip("reads x86 CPU flags from /proc/cpuinfo")
    flags = next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split()
    assert native_bf16("cpu") == ("avx512_bf16" in flags or "amx_tile" in flags)
