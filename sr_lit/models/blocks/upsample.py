"""EDSR's sub-pixel upsampler and the LR-pixel margin of the upsampling tail."""

from __future__ import annotations

from fractions import Fraction

from torch import nn

from sr_lit.errors import ConfigError
from sr_lit.models.blocks.common import DIV2K_RGB_MEAN, MeanShift, default_conv

__all__ = ["DIV2K_RGB_MEAN", "MeanShift", "SCALES", "Upsampler", "check_scale", "default_conv", "tail_margin"]

SCALES = (2, 3, 4)


def check_scale(scale: object) -> int:
    if isinstance(scale, bool) or scale not in SCALES:
        raise ConfigError(f"scale must be 2, 3 or 4; got {scale!r}")
    return int(scale)  # type: ignore[call-overload]


def _steps(scale: int) -> list[int]:
    """Pixel-shuffle factors: x2 -> [2], x3 -> [3], x4 -> [2, 2]."""
    return [2, 2] if scale == 4 else [scale]


class Upsampler(nn.Sequential):
    """x2/x4: [conv3x3 F->4F, PixelShuffle(2)] once/twice; x3: [conv3x3 F->9F, PixelShuffle(3)] (no BN/act).

    A Sequential with EDSR's layout so checkpoint keys (`tail.0.0.weight`, ...) match.
    """

    def __init__(self, scale: int, n_feats: int, kernel_size: int = 3) -> None:
        layers: list[nn.Module] = []
        for factor in _steps(check_scale(scale)):
            layers += [default_conv(n_feats, factor * factor * n_feats, kernel_size), nn.PixelShuffle(factor)]
        super().__init__(*layers)


def tail_margin(scale: int, kernel_size: int = 3) -> Fraction:
    """LR-pixel radius of the upsampler convs plus the final HR conv (each conv at its own resolution)."""
    radius, resolution, margin = kernel_size // 2, 1, Fraction(0)
    for factor in _steps(check_scale(scale)):
        margin += Fraction(radius, resolution)
        resolution *= factor
    return margin + Fraction(radius, resolution)
