"""Channel attention units (DESIGN 1.2): RCAN's CA (squeeze-excitation), FcaNet, and MMCA (ours).

All units map x (N, C, H, W) to x * a with a (N, C, 1, 1) in (0, 1). FCA and MMCA pool adaptively to
pool_size x pool_size and are therefore global operations (tiling can never be exact for them).

Under autocast (sr_lit.models.blocks.precision) CA, FCA and MMCA pool the features in their own dtype (bf16; the pooling
accumulates in fp32 inside), then compute the DCT projection, the MLP and the gate from those N x C x s*s numbers in
the parameters' dtype (fp32 under mixed precision): a DCT coefficient is a signed sum of 49 values in which the
high frequencies cancel, and the gate scales every feature. Only the final x * a runs in the features' dtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sr_lit.errors import ConfigError
from sr_lit.models.blocks.common import check_choice, check_int, check_options, constructor_options
from sr_lit.models.blocks.dct import FreqSpec, dct_bases, freq_indices
from sr_lit.models.blocks.precision import autocast_off
from sr_lit.models.registry import ATTENTION, register_attention

AGGREGATIONS = ("learned", "mean")


def _hidden_channels(channels: int, reduction: int) -> int:
    check_int(channels, "channels")
    check_int(reduction, "reduction")
    if channels // reduction < 1:
        raise ConfigError(f"reduction={reduction} leaves no hidden channels for channels={channels}")
    return channels // reduction


@register_attention("ca")
class ChannelAttention(nn.Module):
    """RCAN's CALayer: global avg pool -> 1x1 conv C->C/r (bias) -> ReLU -> 1x1 conv C/r->C (bias) -> sigmoid.

    Attribute names (`conv_du.0`, `conv_du.2`) follow RCAN so its checkpoints load.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = _hidden_channels(channels, reduction)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.avg_pool(x)
        with autocast_off(x):  # small tensors, in the parameters' dtype (module docstring)
            gate = self.conv_du(pooled.to(self.conv_du[0].weight.dtype))
        return x * gate.to(x.dtype)


@register_attention("fca")
class FcaAttention(nn.Module):
    """FcaNet multi-spectral attention: channel part i (of K contiguous parts) is projected on DCT basis i.

    One scalar per channel, then Linear C->C/r -> ReLU -> Linear C/r->C (no bias, as FcaNet) -> sigmoid.
    """

    def __init__(
        self, channels: int, reduction: int = 16, pool_size: int = 7, freq: FreqSpec = "top16"
    ) -> None:
        super().__init__()
        hidden = _hidden_channels(channels, reduction)
        freqs = freq_indices(freq, pool_size)
        if channels % len(freqs):
            raise ConfigError(
                f"fca needs channels divisible by the number of frequencies K: channels={channels}, "
                f"freq={freq!r} has K={len(freqs)}"
            )
        self.pool_size = pool_size
        # (C, s, s): channel c uses the basis of its part c // (C // K). Fixed, rebuilt from the config.
        per_channel = dct_bases(freqs, pool_size).repeat_interleave(channels // len(freqs), dim=0)
        self.register_buffer("dct_filter", per_channel, persistent=False)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x, self.pool_size)
        with autocast_off(x):  # small tensors, in the parameters' dtype (module docstring)
            pooled = pooled.to(self.dct_filter.dtype)
            spectrum = (pooled * self.dct_filter).sum(dim=(2, 3))  # (N, C)
            gate = self.fc(spectrum)[:, :, None, None]
        return x * gate.to(x.dtype)


@register_attention("mmca")
class MMCAttention(nn.Module):
    """Matrix multi-spectral channel attention (ours, DESIGN 1.2).

    D (N, C, K): every channel projected on all K DCT bases. A shared channel MLP (1x1 convs over C on D viewed
    as (N, C, K, 1): C->C/r->C, ReLU, biases as RCAN's CA) gives the attention map A (N, C, K); aggregation
    `learned` weights the K columns by softmax(K logits, zero-initialised = mean at start), `mean` averages them;
    sigmoid -> one gate per channel. With K = 1 (DC) this is exactly squeeze-excitation (up to the DC basis scale)
    when H and W are multiples of pool_size (equal adaptive-pooling bins), and for any size with pool_size = 1.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        pool_size: int = 7,
        freq: FreqSpec = "top16",
        aggregation: str = "learned",
    ) -> None:
        super().__init__()
        hidden = _hidden_channels(channels, reduction)
        freqs = freq_indices(freq, pool_size)
        self.aggregation = check_choice(aggregation, "aggregation", AGGREGATIONS)
        self.pool_size = pool_size
        self.freqs = tuple(freqs)  # (u, v) of each basis, in dct_bases / freq_logits order
        self.register_buffer(
            "dct_bases", dct_bases(freqs, pool_size).flatten(1), persistent=False
        )  # (K, s*s)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
        )
        if self.aggregation == "learned":
            self.freq_logits = nn.Parameter(torch.zeros(len(freqs)))
        else:
            self.register_parameter("freq_logits", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x, self.pool_size).flatten(2)  # (N, C, s*s)
        with autocast_off(x):  # small tensors, in the parameters' dtype (module docstring)
            coeffs = pooled.to(self.dct_bases.dtype) @ self.dct_bases.t()  # (N, C, K)
            attn = self.mlp(coeffs.unsqueeze(-1)).squeeze(-1)  # (N, C, K)
            if self.freq_logits is not None:
                logits = attn @ torch.softmax(self.freq_logits, dim=0)
            else:
                logits = attn.mean(dim=-1)
            gate = torch.sigmoid(logits)[:, :, None, None]
        return x * gate.to(x.dtype)


def build_attention(cfg: Mapping[str, Any] | None, channels: int) -> nn.Module | None:
    """Build the unit named by cfg["name"] (configs/attention/*.yaml) for `channels`; None for `none`."""
    if cfg is None:
        return None
    options = dict(cfg)
    name = ATTENTION.check(options.pop("name", None))
    cls = ATTENTION[name]
    if cls is None:  # `none`
        check_options(options, (), f"attention (name={name!r})")
        return None
    check_options(options, constructor_options(cls, exclude=("channels",)), f"attention (name={name!r})")
    return cls(channels, **options)
