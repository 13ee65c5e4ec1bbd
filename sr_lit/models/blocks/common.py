"""Building blocks shared by the backbones: default conv, frozen MeanShift, the residual block, option checks."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from sr_lit.errors import ConfigError

# DIV2K RGB mean used by EDSR/RCAN (std 1).
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def default_conv(in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True) -> nn.Conv2d:
    """EDSR's `default_conv`: 'same' zero padding (k // 2), bias on."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


class MeanShift(nn.Conv2d):
    """Frozen 1x1 conv adding (sign=+1) or subtracting (sign=-1) the DIV2K mean, scaled by rgb_range.

    A Conv2d (not buffers) so state_dict keys match EDSR/RCAN checkpoints (`sub_mean.weight`, ...);
    requires_grad=False keeps it out of trainable-parameter counts and the optimiser.
    """

    def __init__(
        self,
        rgb_range: float,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
        rgb_std: tuple[float, float, float] = (1.0, 1.0, 1.0),
        sign: int = -1,
    ) -> None:
        super().__init__(3, 3, kernel_size=1)
        std = torch.tensor(rgb_std)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1) / std.view(3, 1, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(rgb_mean) / std)
        for p in self.parameters():
            p.requires_grad = False


class ResidualBlock(nn.Module):
    """EDSR ResBlock / RCAN RCAB: x + res_scale * [conv-ReLU-conv (-attention) (-HPF)](x).

    The attention module sits at index 3 of `body` (RCAN's RCAB layout, so RCAN checkpoint keys match);
    the optional dynamic HPF is applied last in the branch via `DynamicHPF.enhance` (r <- r + HPF(r) or HPF(r)).
    """

    def __init__(
        self,
        n_feats: int,
        kernel_size: int = 3,
        res_scale: float = 1.0,
        attention: nn.Module | None = None,
        hpf: nn.Module | None = None,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            default_conv(n_feats, n_feats, kernel_size),
            nn.ReLU(inplace=True),
            default_conv(n_feats, n_feats, kernel_size),
        ]
        if attention is not None:
            layers.append(attention)
        self.body = nn.Sequential(*layers)
        self.hpf = hpf
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.body(x)
        if self.hpf is not None:
            r = self.hpf.enhance(r)
        return x + r * self.res_scale


def constructor_options(cls: type, exclude: Iterable[str] = ()) -> tuple[str, ...]:
    """Names of the keyword options `cls.__init__` accepts (minus `exclude`): the allowed config keys."""
    skip = {"self", *exclude}
    params = inspect.signature(cls.__init__).parameters.values()
    return tuple(p.name for p in params if p.name not in skip and p.kind is not p.VAR_KEYWORD)


def check_options(options: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Raise a ConfigError naming the first unknown key in `options` and the allowed ones."""
    allowed = tuple(allowed)
    for key in options:
        if key not in allowed:
            raise ConfigError(f"unknown key {where}.{key!r}; allowed keys: {', '.join(allowed) or '(none)'}")


def check_int(value: Any, key: str, minimum: int = 1) -> int:
    """Validate an integer config value (bools rejected) and return it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}; got {value!r}")
    return value


def check_choice(value: Any, key: str, choices: Iterable[str]) -> str:
    """Validate a string config value against its allowed choices and return it."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")
    return value
