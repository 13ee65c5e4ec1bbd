"""MATLAB-compatible bicubic ``imresize`` in torch (batched, any device).

Why not PIL/OpenCV/``F.interpolate``: SR benchmarks are defined by MATLAB's ``imresize`` (antialiased
cubic kernel, a = -0.5, its own coordinate mapping). Any other resizer shifts PSNR by tenths of a dB.

Each dimension is resized by one dense (out, in) weight matrix with the border handling folded in
(taps outside the image are mapped back to real pixels). Height pass first, then width, as MATLAB
does for equal scale factors. With ``quantize=True`` the result of each pass is rounded half up and
clamped to [0, 255], which is what MATLAB does for uint8 images; that reproduces the official EDSR
benchmark LR files (symmetric border) and the RCAN/SelfExSR LR files (replicate border) bit-exactly.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from numbers import Real

import torch

BORDERS = ("symmetric", "replicate")

__all__ = [
    "BORDERS",
    "imresize",
    "make_lr",
    "make_lr_into",
    "bicubic_upscale",
    "modcrop",
    "weight_matrix",
    "clear_weight_cache",
]


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys cubic kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _map_border(idx: torch.Tensor, n: int, border: str) -> torch.Tensor:
    """Map 0-based tap indices that may fall outside [0, n) onto real pixels."""
    if border == "replicate":
        return idx.clamp(0, n - 1)
    # MATLAB: aux = [1:n, n:-1:1]; idx = aux(mod(idx - 1, 2n) + 1)  (edge pixel repeated once).
    m = torch.remainder(idx, 2 * n)
    return torch.where(m < n, m, 2 * n - 1 - m)


@lru_cache(maxsize=32)
def _weight_matrix_cpu(in_len: int, out_len: int, scale: float, border: str) -> torch.Tensor:
    """(out_len, in_len) float64 resampling matrix, built exactly as MATLAB's ``contributions``."""
    antialias = scale < 1
    kernel_width = 4.0 / scale if antialias else 4.0
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    # Output pixel x (1-based) maps to input coordinate u (1-based), pixel centres aligned.
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # 1-based
    dist = u[:, None] - idx
    w = scale * _cubic(scale * dist) if antialias else _cubic(dist)
    w = w / w.sum(dim=1, keepdim=True)
    cols = _map_border(idx.long() - 1, in_len, border)
    mat = torch.zeros(out_len, in_len, dtype=torch.float64)
    # Mirrored/clamped taps can hit the same pixel twice: accumulate, don't overwrite.
    mat.scatter_add_(1, cols, w)
    return mat


@lru_cache(maxsize=64)
def _weight_matrix_on(
    in_len: int, out_len: int, scale: float, border: str, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    return _weight_matrix_cpu(in_len, out_len, scale, border).to(device=device, dtype=dtype)


def weight_matrix(
    in_len: int,
    out_len: int,
    scale: float,
    border: str = "symmetric",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The cached (out_len, in_len) matrix for one dimension (exposed for tests and tiling code)."""
    _check_border(border)
    return _weight_matrix_on(in_len, out_len, float(scale), border, torch.device(device or "cpu"), dtype)


def clear_weight_cache() -> None:
    """Drop the cached weight matrices (dense, up to ~16 MB each for a 2K side; one per image size seen).

    The decode cache calls this after set-up: DIV2K has dozens of distinct sizes, whose matrices would
    otherwise stay in memory for the whole run.
    """
    _weight_matrix_on.cache_clear()
    _weight_matrix_cpu.cache_clear()


def _check_border(border: str) -> None:
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got border={border!r}")


def _check_int_scale(scale: object) -> int:
    if isinstance(scale, bool) or not isinstance(scale, Real) or scale != int(scale) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got scale={scale!r}")
    return int(scale)


def _out_len(in_len: int, scale: float) -> int:
    # MATLAB: ceil(scale * in). Exact rational arithmetic so 1/3 * 279 is 93, not 94.
    return math.ceil(Fraction(scale).limit_denominator(10**6) * in_len)


def _resolve_scales(
    shape: tuple[int, int],
    scale: float | tuple[float, float] | None,
    out_size: tuple[int, int] | None,
) -> tuple[tuple[float, float], tuple[int, int]]:
    if (scale is None) == (out_size is None):
        raise ValueError("give exactly one of scale= or out_size=")
    if out_size is not None:
        if len(out_size) != 2 or any(int(o) != o or o < 1 for o in out_size):
            raise ValueError(f"out_size must be two positive integers (H, W), got out_size={out_size!r}")
        outs = (int(out_size[0]), int(out_size[1]))
        # MATLAB derives the scale from the requested size when only the size is given.
        return (outs[0] / shape[0], outs[1] / shape[1]), outs
    pair = scale if isinstance(scale, (tuple, list)) else (scale, scale)
    if len(pair) != 2 or any(isinstance(s, bool) or not isinstance(s, Real) or not s > 0 for s in pair):
        raise ValueError(f"scale must be a positive number or a pair of them, got scale={scale!r}")
    scales = (float(pair[0]), float(pair[1]))
    outs = (_out_len(shape[0], scales[0]), _out_len(shape[1], scales[1]))
    if min(outs) < 1:
        raise ValueError(f"scale={scale!r} gives an empty output for input size {shape}")
    return scales, outs


def _round_clamp(x: torch.Tensor) -> torch.Tensor:
    # Round half up (MATLAB's uint8 conversion for non-negative values) and saturate.
    return torch.floor(x + 0.5).clamp_(0.0, 255.0)


def imresize(
    x: torch.Tensor,
    scale: float | tuple[float, float] | None = None,
    out_size: tuple[int, int] | None = None,
    border: str = "symmetric",
    quantize: bool = False,
) -> torch.Tensor:
    """MATLAB ``imresize(x, scale, 'bicubic')`` over the last two dims of ``x`` (..., H, W).

    ``x`` is float in any range (integer tensors are converted to float). With ``quantize=True``
    (x in [0, 255]) each pass is rounded half up and clamped, as MATLAB does for uint8 images.
    Returns the input's float dtype (float32 for integer input).
    """
    _check_border(border)
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dims (..., H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h < 1 or w < 1:
        raise ValueError(f"x must have non-empty H and W, got shape {tuple(x.shape)}")
    (sh, sw), (oh, ow) = _resolve_scales((h, w), scale, out_size)

    out_dtype = x.dtype if x.is_floating_point() else torch.float32
    # float64 keeps the rounding of each pass identical to MATLAB's double arithmetic;
    # MPS has no float64, so fall back there (rare half-way ties may then differ).
    if quantize or x.dtype == torch.float64:
        work = torch.float32 if x.device.type == "mps" else torch.float64
    else:
        work = torch.float32
    y = x.to(work)

    if (oh, sh) != (h, 1.0):
        wh = _weight_matrix_on(h, oh, sh, border, y.device, work)
        y = torch.matmul(wh, y)
        if quantize:
            y = _round_clamp(y)
    if (ow, sw) != (w, 1.0):
        ww = _weight_matrix_on(w, ow, sw, border, y.device, work)
        y = torch.matmul(y, ww.T)
        if quantize:
            y = _round_clamp(y)
    return y.to(out_dtype)


def modcrop(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Top-left crop of the last two dims to a multiple of ``scale``."""
    s = _check_int_scale(scale)
    h, w = x.shape[-2:]
    if h < s or w < s:
        raise ValueError(f"image of size {h}x{w} is smaller than scale={s}")
    return x[..., : h - h % s, : w - w % s]


def make_lr(hr_uint8: torch.Tensor, scale: int, border: str = "symmetric") -> torch.Tensor:
    """Benchmark LR from an HR uint8 image (..., H, W): modcrop, then MATLAB bicubic 1/scale.

    Bit-exact with the EDSR benchmark LR files (``symmetric``) or the RCAN/SelfExSR ones (``replicate``).
    """
    if hr_uint8.dtype != torch.uint8:
        raise ValueError(f"hr_uint8 must be a torch.uint8 tensor, got dtype {hr_uint8.dtype}")
    s = _check_int_scale(scale)
    _check_border(border)
    hr = modcrop(hr_uint8, s)
    if s == 1:
        return hr.clone()
    lr = imresize(hr.to(torch.float64), scale=1.0 / s, border=border, quantize=True)
    return lr.to(torch.uint8)


def make_lr_into(
    hr_uint8: torch.Tensor, out: torch.Tensor, scale: int, border: str = "symmetric", strip: int = 512
) -> None:
    """``out[...] = make_lr(hr_uint8, scale, border)`` for a (C, H, W) image, in bounded memory.

    Same passes, same result: each pass is a matmul whose reduction dimension (the input side) is kept whole; only
    the other dimension is cut into strips of ``strip`` columns (height pass) or rows (width pass), and a pass's
    rounded output is exactly an integer in [0, 255], so it is kept as uint8 between the passes; channels one at a
    time. Temporaries: ~20 MB for a 2K image instead of ~130 MB (float64 copies of the whole image).
    """
    if hr_uint8.dtype != torch.uint8 or out.dtype != torch.uint8:
        raise ValueError("make_lr_into works on uint8 tensors")
    s = _check_int_scale(scale)
    _check_border(border)
    hr = modcrop(hr_uint8, s)
    c, h, w = hr.shape
    oh, ow = h // s, w // s
    if tuple(out.shape) != (c, oh, ow):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {(c, oh, ow)}")
    if s == 1:
        out.copy_(hr)
        return
    mid = torch.empty(oh, w, dtype=torch.uint8)
    wh = _weight_matrix_on(h, oh, 1.0 / s, border, torch.device("cpu"), torch.float64)
    ww = _weight_matrix_on(w, ow, 1.0 / s, border, torch.device("cpu"), torch.float64)
    for ch in range(c):  # one channel at a time (channels are independent in both passes)
        for x0 in range(0, w, strip):
            cols = hr[ch, :, x0 : x0 + strip].to(torch.float64)
            mid[:, x0 : x0 + strip] = _round_clamp(torch.matmul(wh, cols)).to(torch.uint8)
        for y0 in range(0, oh, strip):
            rows = mid[y0 : y0 + strip].to(torch.float64)
            out[ch, y0 : y0 + strip] = _round_clamp(torch.matmul(rows, ww.T)).to(torch.uint8)


def bicubic_upscale(lr: torch.Tensor, scale: int, border: str = "symmetric") -> torch.Tensor:
    """MATLAB bicubic upscaling by an integer factor; the standard "bicubic" SR baseline.

    uint8 in -> uint8 out (rounded after each pass, as MATLAB); float in -> float out, unrounded.
    """
    s = _check_int_scale(scale)
    _check_border(border)
    if lr.dtype == torch.uint8:
        return imresize(lr.to(torch.float64), scale=s, border=border, quantize=True).to(torch.uint8)
    if not lr.is_floating_point():
        raise ValueError(f"lr must be uint8 or floating point, got dtype {lr.dtype}")
    work = lr if lr.dtype in (torch.float32, torch.float64) else lr.float()
    return imresize(work, scale=s, border=border).to(lr.dtype)
