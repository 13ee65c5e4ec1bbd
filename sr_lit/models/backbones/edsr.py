"""EDSR (Lim et al. 2017), plus the head/body/tail skeleton that RCAN shares.

Layout and state_dict keys follow EDSR-PyTorch: sub_mean, head.0, body.<i>.body.{0,2}, body.<n> (body tail conv),
tail.0 (Upsampler), tail.1 (conv F->3), add_mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from sr_lit.models.blocks.attention import build_attention
from sr_lit.models.blocks.common import MeanShift, ResidualBlock, check_int, default_conv
from sr_lit.models.blocks.hpf import parse_hpf
from sr_lit.models.blocks.upsample import Upsampler, check_scale, tail_margin

N_COLORS = 3
KERNEL_SIZE = 3


class SRSkeleton(nn.Module):
    """[0,1] in -> *rgb_range -> sub_mean -> head conv -> body (+ global skip) -> upsampler -> conv -> add_mean -> /rgb_range.

    `body_blocks` are followed by the body tail conv; `body_margin` is their LR-pixel receptive radius.
    """

    def __init__(
        self,
        body_blocks: Sequence[nn.Module],
        body_margin: int,
        n_feats: int,
        scale: int,
        rgb_range: float,
    ) -> None:
        super().__init__()
        check_int(n_feats, "n_feats")
        if not rgb_range > 0:
            raise ValueError(f"rgb_range must be > 0; got {rgb_range!r}")
        self.scale = check_scale(scale)
        self.rgb_range = float(rgb_range)
        self.sub_mean = MeanShift(self.rgb_range, sign=-1)
        self.add_mean = MeanShift(self.rgb_range, sign=1)
        self.head = nn.Sequential(default_conv(N_COLORS, n_feats, KERNEL_SIZE))
        self.body = nn.Sequential(*body_blocks, default_conv(n_feats, n_feats, KERNEL_SIZE))
        self.tail = nn.Sequential(
            Upsampler(scale, n_feats, KERNEL_SIZE), default_conv(n_feats, N_COLORS, KERNEL_SIZE)
        )
        radius = KERNEL_SIZE // 2
        # head conv + body + body tail conv + upsampler/tail (HR convs count as fractions of an LR pixel).
        self.receptive_margin = math.ceil(radius + body_margin + radius + tail_margin(scale, KERNEL_SIZE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x * self.rgb_range))
        x = self.body(x) + x
        return self.add_mean(self.tail(x)) / self.rgb_range


class EDSR(SRSkeleton):
    """EDSR: n_resblocks ResBlocks (conv-ReLU-conv, * res_scale, + x), no BN.

    attention (configs/attention): a unit at the end of every residual branch (before res_scale, as RCAB).
    hpf (configs/hpf): in block i (0-based) with (i + 1) % every == 0, the branch gets r <- r + HPF(r)
    (or HPF(r) for combine=replace) after the attention; placement `auto` and `every` mean the same here.
    """

    def __init__(
        self,
        n_resblocks: int = 16,
        n_feats: int = 64,
        res_scale: float = 1.0,
        scale: int = 2,
        rgb_range: float = 255,
        attention: Mapping[str, Any] | None = None,
        hpf: Mapping[str, Any] | None = None,
    ) -> None:
        check_int(n_resblocks, "n_resblocks", minimum=0)
        check_int(n_feats, "n_feats")
        plan = parse_hpf(hpf)
        blocks: list[nn.Module] = []
        body_margin = 0
        for i in range(n_resblocks):
            block_hpf = plan.build(n_feats) if plan is not None and plan.in_block(i) else None
            blocks.append(
                ResidualBlock(
                    n_feats,
                    KERNEL_SIZE,
                    res_scale=res_scale,
                    attention=build_attention(attention, n_feats),
                    hpf=block_hpf,
                )
            )
            body_margin += 2 * (KERNEL_SIZE // 2) + (
                block_hpf.receptive_radius if block_hpf is not None else 0
            )
        super().__init__(blocks, body_margin, n_feats, scale, rgb_range)
        self.n_resblocks = n_resblocks
