"""8-bit quantisation, MATLAB ``rgb2ycbcr`` luma and border shaving for SR evaluation.

Not kornia's ``rgb_to_ycbcr``: that is the full-range JPEG form (Y = 0.299 R + ...), which scores
about 1.3 dB lower than the studio-swing BT.601 luma every SR paper uses.
"""

from __future__ import annotations

import torch

__all__ = ["quantize", "rgb_to_y", "shave", "Y_COEFFS"]

# MATLAB rgb2ycbcr on [0, 255] RGB: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255.
Y_COEFFS = (65.481, 128.553, 24.966)


def quantize(x01: torch.Tensor) -> torch.Tensor:
    """[0, 1] float -> [0, 255] float on the 8-bit grid (clamped, rounded half up like im2uint8).

    ``torch.round`` rounds half to even; MATLAB rounds half away from zero, which on the
    clamped non-negative range is ``floor(v + 0.5)``.
    """
    if not x01.is_floating_point():
        raise ValueError(f"x01 must be a float tensor in [0, 1], got dtype {x01.dtype}")
    return torch.floor(x01.clamp(0.0, 1.0) * 255.0 + 0.5)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 studio-swing luma of [0, 255] RGB (..., 3, H, W) -> (..., 1, H, W), float, not rounded."""
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"x must be RGB (..., 3, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    r, g, b = x.unbind(dim=-3)
    y = 16.0 + (Y_COEFFS[0] * r + Y_COEFFS[1] * g + Y_COEFFS[2] * b) / 255.0
    return y.unsqueeze(-3)


def shave(x: torch.Tensor, s: int) -> torch.Tensor:
    """Drop ``s`` pixels at every border of the last two dims (the SR protocol shaves ``scale``)."""
    if s < 0:
        raise ValueError(f"shave width must be >= 0, got s={s}")
    if s == 0:
        return x
    h, w = x.shape[-2:]
    if h <= 2 * s or w <= 2 * s:
        raise ValueError(f"cannot shave {s} px from an image of size {h}x{w}")
    return x[..., s:-s, s:-s]
