"""Plug-in units and layers shared by the backbones."""

from sr_lit.models.blocks.attention import (
    ATTENTION_NAMES,
    ChannelAttention,
    FcaAttention,
    MMCAttention,
    build_attention,
)
from sr_lit.models.blocks.common import MeanShift, ResidualBlock, default_conv
from sr_lit.models.blocks.dct import FREQ_SETS, dct_bases, dct_basis_2d, freq_indices
from sr_lit.models.blocks.hpf import (
    HPF_NAMES,
    DynamicHPF,
    HPFPlan,
    dynamic_highpass_shift,
    dynamic_highpass_unfold,
    dynamic_lowpass_unfold,
    parse_hpf,
)
from sr_lit.models.blocks.upsample import SCALES, Upsampler

__all__ = [
    "ATTENTION_NAMES",
    "FREQ_SETS",
    "HPF_NAMES",
    "SCALES",
    "ChannelAttention",
    "DynamicHPF",
    "FcaAttention",
    "HPFPlan",
    "MMCAttention",
    "MeanShift",
    "ResidualBlock",
    "Upsampler",
    "build_attention",
    "dct_basis_2d",
    "dct_bases",
    "default_conv",
    "dynamic_highpass_shift",
    "dynamic_highpass_unfold",
    "dynamic_lowpass_unfold",
    "freq_indices",
    "parse_hpf",
]
