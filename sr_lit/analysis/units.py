"""What the trained units learned: MMCA's frequency-aggregation weights and HPF's frequency response.

MMCA (DESIGN 1.2): each unit's softmax over its K DCT frequencies, placed at the bases' (u, v) on the pool_size
grid. HPF (DESIGN 1.1): at every pixel and channel group the unit applies h = delta - w, w the predicted k x k
low-pass (taps t at offsets d_t), so its frequency response is H(f) = 1 - sum_t w_t exp(i pi f . d_t), f in units of
the feature grid's Nyquist. We average |H| over pixels and groups on one input image, and measure how much of the
feature energy above half Nyquist the high-pass passes (windowed power spectra, sr_lit.analysis.spectrum).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from sr_lit.analysis.spectrum import power_spectrum, radial_frequency
from sr_lit.models.blocks.attention import MMCAttention
from sr_lit.models.blocks.hpf import DynamicHPF

__all__ = [
    "mmca_weights",
    "highpass_response",
    "energy_passed",
    "hpf_responses",
    "GRID_POINTS",
    "MAX_PIXELS",
]

GRID_POINTS = 33  # frequency grid per axis for |H|, f in [-1, 1] x Nyquist (step 1/16)
MAX_PIXELS = 2048  # pixels whose kernels (all groups) enter the mean response; a regular subsample above that


def mmca_weights(model: nn.Module) -> list[dict[str, Any]]:
    """Per MMCA unit: name, aggregation, pool size, (u, v) of its K bases, softmax weights, and how spread they are
    (entropy / log K: 1 = uniform; effective K = exp(entropy))."""
    units = []
    for name, m in model.named_modules():
        if not isinstance(m, MMCAttention):
            continue
        freqs = m.freqs
        k = len(freqs)
        if m.freq_logits is not None:
            w = torch.softmax(m.freq_logits.detach().double().cpu(), dim=0)
        else:  # aggregation: mean
            w = torch.full((k,), 1.0 / k, dtype=torch.float64)
        entropy = float(-(w * w.clamp_min(1e-300).log()).sum())
        units.append(
            {
                "unit": name,
                "aggregation": m.aggregation,
                "pool_size": m.pool_size,
                "freqs": [list(f) for f in freqs],
                "weights": w.tolist(),
                "effective_k": math.exp(entropy),
                "entropy_ratio": entropy / math.log(k) if k > 1 else 1.0,
                "max_weight_freq": list(freqs[int(w.argmax())]),
            }
        )
    return units


def _tap_offsets(k: int) -> torch.Tensor:
    """(k*k, 2) offsets (dy, dx) of the taps, row-major: tap t = row * k + col reads x[y + row - k//2, x + col - k//2]."""
    p = k // 2
    return torch.tensor([(row - p, col - p) for row in range(k) for col in range(k)], dtype=torch.float64)


def highpass_response(
    kernels: torch.Tensor,
    kernel_size: int,
    groups: int,
    grid_points: int = GRID_POINTS,
    max_pixels: int = MAX_PIXELS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(f, mean |H|): f (P,) in [-1, 1] x Nyquist; mean over pixels and groups of |1 - sum_t w_t e^{i pi f.d_t}|,
    (P, P) indexed [f_y, f_x]. kernels: (N, G*k*k, H, W) low-pass weights, group-major, as DynamicHPF.kernels."""
    taps = kernel_size * kernel_size
    n, ch, h, w = kernels.shape
    if ch != groups * taps:
        raise ValueError(
            f"kernels {tuple(kernels.shape)} do not hold {groups} groups of {kernel_size}x{kernel_size}"
        )
    wts = (
        kernels.double().reshape(n, groups, taps, h * w).permute(0, 3, 1, 2).reshape(n * h * w, groups, taps)
    )
    if wts.shape[0] > max_pixels:
        idx = torch.linspace(0, wts.shape[0] - 1, max_pixels).round().long()
        wts = wts[idx]
    wts = wts.reshape(-1, taps)
    f = torch.linspace(-1.0, 1.0, grid_points, dtype=torch.float64)
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    d = _tap_offsets(kernel_size)
    phase = math.pi * (d[:, :1] * fy.reshape(1, -1) + d[:, 1:] * fx.reshape(1, -1))  # (taps, P*P)
    cos, sin = torch.cos(phase), torch.sin(phase)
    total = torch.zeros(phase.shape[1], dtype=torch.float64)
    for chunk in wts.split(4096):  # bounded memory: (chunk, P*P) at a time
        total += torch.hypot(1.0 - chunk @ cos, chunk @ sin).sum(dim=0)
    return f, (total / wts.shape[0]).reshape(grid_points, grid_points)


def _radial_mean(f: torch.Tensor, values: torch.Tensor, step: float) -> tuple[list[float], list[float]]:
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    r = torch.sqrt(fy**2 + fx**2).flatten()
    idx = (r / step + 0.5).floor().long()
    v = values.flatten()
    out_r, out_v = [], []
    for i in range(int(idx.max()) + 1):
        sel = idx == i
        if bool(sel.any()):
            out_r.append(i * step)
            out_v.append(float(v[sel].mean()))
    return out_r, out_v


def energy_passed(x: torch.Tensor, high: torch.Tensor, cutoff: float = 0.5) -> dict[str, float]:
    """Windowed energy of input features x and of their high-pass (N, C, h, w) above / below ``cutoff`` x Nyquist.

    passed_above_half_nyquist = E_high(r > cutoff) / E_x(r > cutoff): the share of the features' high-frequency
    energy the unit passes (1 for an ideal high-pass); passed_below = the same below the cutoff (DC included);
    output_share_above = E_high(r > cutoff) / E_high: where the unit's output energy lies.
    """
    px = power_spectrum(x.double(), window=True).sum(dim=(0, 1))
    ph = power_spectrum(high.double(), window=True).sum(dim=(0, 1))
    hi = radial_frequency(*px.shape, device=px.device) > cutoff
    ex_hi, ex_lo = float(px[hi].sum()), float(px[~hi].sum())
    eh_hi, eh_lo = float(ph[hi].sum()), float(ph[~hi].sum())

    def ratio(a: float, b: float) -> float | None:
        return a / b if b > 0 else None

    return {
        "passed_above_half_nyquist": ratio(eh_hi, ex_hi),
        "passed_below_half_nyquist": ratio(eh_lo, ex_lo),
        "output_share_above_half_nyquist": ratio(eh_hi, eh_hi + eh_lo),
        "input_share_above_half_nyquist": ratio(ex_hi, ex_hi + ex_lo),
    }


@torch.no_grad()
def hpf_responses(
    model: nn.Module, lr01: torch.Tensor, grid_points: int = GRID_POINTS, max_pixels: int = MAX_PIXELS
) -> list[dict[str, Any]]:
    """Run ``model`` on lr01 (1, 3, h, w) in [0, 1]; per DynamicHPF placement: mean |H| (2-D and radial) and the
    energy it passes above half Nyquist (``energy_passed``), on that image's features."""
    captured: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, DynamicHPF):

            def hook(mod: DynamicHPF, inputs: tuple, out: torch.Tensor, name: str = name) -> None:
                x = inputs[0]
                captured[name] = (x.detach().cpu(), mod.kernels(x).detach().cpu(), out.detach().cpu())

            handles.append(m.register_forward_hook(hook))
    if not handles:
        return []
    was_training = model.training
    model.eval()
    try:
        model(lr01)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    modules = dict(model.named_modules())
    units = []
    for name, (x, kernels, high) in captured.items():
        m = modules[name]
        f, resp = highpass_response(kernels, m.kernel_size, m.groups, grid_points, max_pixels)
        rr, rv = _radial_mean(f, resp, step=float(f[1] - f[0]))
        units.append(
            {
                "unit": name,
                "kernel_size": m.kernel_size,
                "groups": m.groups,
                "softmax": m.softmax,
                "feature_size": list(x.shape[-2:]),
                "grid_freq": f.tolist(),
                "mean_response": resp.tolist(),
                "radial_r": rr,
                "radial_response": rv,
                **energy_passed(x, high),
            }
        )
    return units
