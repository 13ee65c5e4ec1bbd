"""RCAN (Zhang et al. 2018): residual groups of RCABs, on the shared skeleton (skeleton.py).

state_dict keys follow the RCAN code: body.<g>.body.<b>.body.{0,2,3.conv_du.{0,2}} (RCAB convs + CA),
body.<g>.body.<n_resblocks> (group tail conv), body.<n_resgroups> (body tail conv).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from sr_lit.models.backbones.skeleton import KERNEL_SIZE, SRSkeleton, residual_blocks
from sr_lit.models.blocks.common import check_int, default_conv
from sr_lit.models.blocks.hpf import HPFPlan, parse_hpf
from sr_lit.models.registry import register_backbone

# RCAN's own channel attention, used when RCAN is constructed without an attention config.
RCAN_CA: Mapping[str, Any] = MappingProxyType({"name": "ca", "reduction": 16})


class ResidualGroup(nn.Module):
    """n_resblocks RCABs + conv, plus the group's identity skip.

    HPF placement `auto`: one unit at the end of the group, before its tail conv (h <- h + HPF(h)).
    HPF placement `every`: inside the branch of every `every`-th RCAB instead.
    """

    def __init__(
        self,
        n_feats: int,
        n_resblocks: int,
        res_scale: float,
        attention: Mapping[str, Any] | None,
        hpf_plan: HPFPlan | None,
    ) -> None:
        super().__init__()
        in_blocks = hpf_plan if hpf_plan is not None and hpf_plan.placement == "every" else None
        blocks, margin = residual_blocks(n_resblocks, n_feats, res_scale, attention, in_blocks)
        self.body = nn.Sequential(*blocks, default_conv(n_feats, n_feats, KERNEL_SIZE))
        self.hpf = hpf_plan.build(n_feats) if hpf_plan is not None and hpf_plan.placement == "auto" else None
        if self.hpf is not None:
            margin += self.hpf.receptive_radius
        self.receptive_margin = margin + KERNEL_SIZE // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        last = len(self.body) - 1
        for i, layer in enumerate(self.body):
            if i == last and self.hpf is not None:
                h = self.hpf.enhance(h)
            h = layer(h)
        return h + x


@register_backbone("rcan")
class RCAN(SRSkeleton):
    """RCAN: n_resgroups ResidualGroups + conv, global skip, EDSR's upsampler and tail.

    attention (configs/attention) replaces the CA in every RCAB (`none` removes it; the CA reduction comes from
    the attention config). RCAN's code leaves res_scale unused; here the branch is scaled by it (1.0 = same).
    """

    def __init__(
        self,
        n_resgroups: int = 10,
        n_resblocks: int = 20,
        n_feats: int = 64,
        res_scale: float = 1.0,
        scale: int = 2,
        rgb_range: float = 255,
        attention: Mapping[str, Any] | None = RCAN_CA,
        hpf: Mapping[str, Any] | None = None,
    ) -> None:
        check_int(n_resgroups, "n_resgroups", minimum=0)
        check_int(n_resblocks, "n_resblocks", minimum=0)
        check_int(n_feats, "n_feats")
        plan = parse_hpf(hpf)
        groups = [ResidualGroup(n_feats, n_resblocks, res_scale, attention, plan) for _ in range(n_resgroups)]
        body_margin = sum(g.receptive_margin for g in groups)
        super().__init__(groups, body_margin, n_feats, scale, rgb_range)
        self.n_resgroups = n_resgroups
        self.n_resblocks = n_resblocks
