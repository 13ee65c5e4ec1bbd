"""What EDSR and RCAN share: the head/body/tail skeleton, the residual-block stack with its attention and HPF
placement, and the receptive margin that tiled inference needs (DESIGN 1.3, P10).

State-dict layout follows EDSR-PyTorch: sub_mean, head.0, body.<i> ... body.<n> (body tail conv), tail.0
(Upsampler), tail.1 (conv F->3), add_mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from sr_lit.errors import ConfigError
from sr_lit.models.blocks.attention import build_attention
from sr_lit.models.blocks.common import MeanShift, ResidualBlock, check_int, default_conv
from sr_lit.models.blocks.hpf import HPFPlan
from sr_lit.models.blocks.precision import autocast_off
from sr_lit.models.blocks.upsample import Upsampler, check_scale, tail_margin

N_COLORS = 3
KERNEL_SIZE = 3


def residual_blocks(
    n_blocks: int,
    n_feats: int,
    res_scale: float,
    attention: Mapping[str, Any] | None,
    hpf_plan: HPFPlan | None,
) -> tuple[list[nn.Module], int]:
    """`n_blocks` residual blocks (conv-ReLU-conv, attention unit, optional HPF) and their receptive margin.

    The HPF goes into block i (0-based) when (i + 1) % every == 0 (`hpf_plan.in_block`); pass None for blocks
    that take no HPF (RCAN's default places one per group instead, see rcan.ResidualGroup).
    Margin: each block's two 3x3 convs add 2 * (3 // 2) LR pixels, an HPF its own radius.
    """
    blocks: list[nn.Module] = []
    margin = 0
    for i in range(n_blocks):
        block_hpf = hpf_plan.build(n_feats) if hpf_plan is not None and hpf_plan.in_block(i) else None
        blocks.append(
            ResidualBlock(
                n_feats,
                KERNEL_SIZE,
                res_scale=res_scale,
                attention=build_attention(attention, n_feats),
                hpf=block_hpf,
            )
        )
        margin += 2 * (KERNEL_SIZE // 2) + (block_hpf.receptive_radius if block_hpf is not None else 0)
    return blocks, margin


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
            raise ConfigError(f"rgb_range must be > 0; got {rgb_range!r}")
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
        # smallest LR side the network accepts: 1 for zero-padded convs; blocks that reflect-pad (the HPF) need more
        self.min_input_side = max(
            (int(m.min_input_side) for m in self.body.modules() if hasattr(m, "min_input_side")), default=1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x * self.rgb_range))
        x = self.body(x) + x
        x = self.tail[0](x)  # the upsampler
        # The output conv (F -> 3, well under 1 % of the FLOPs) and the mean in the parameters' dtype even under
        # autocast: a bf16 output on the [0, rgb_range] scale is rounded to 0.5-1 grey level, which moves PSNR by
        # hundredths of a dB and flips the L1 gradient's sign wherever |SR - HR| is below that.
        with autocast_off(x):
            return self.add_mean(self.tail[1](x.to(self.add_mean.weight.dtype))) / self.rgb_range
