"""EDSR (Lim et al. 2017) on the shared skeleton (skeleton.py).

Layout and state_dict keys follow EDSR-PyTorch: sub_mean, head.0, body.<i>.body.{0,2}, body.<n> (body tail conv),
tail.0 (Upsampler), tail.1 (conv F->3), add_mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sr_lit.models.backbones.skeleton import SRSkeleton, residual_blocks
from sr_lit.models.blocks.common import check_int
from sr_lit.models.blocks.hpf import parse_hpf
from sr_lit.models.registry import register_backbone


@register_backbone("edsr")
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
        blocks, body_margin = residual_blocks(n_resblocks, n_feats, res_scale, attention, parse_hpf(hpf))
        super().__init__(blocks, body_margin, n_feats, scale, rgb_range)
        self.n_resblocks = n_resblocks
