"""Channel attention units: CA, FCA, MMCA (DESIGN 1.2) and the config factory."""

from __future__ import annotations

import pytest
import torch

from sr_lit.models.blocks.attention import (
    ChannelAttention,
    FcaAttention,
    MMCAttention,
    build_attention,
)


def test_channel_attention_param_count() -> None:
    # RCAN CA at 64 feats, r = 16: (64*4 + 4) + (4*64 + 64) = 580.
    assert sum(p.numel() for p in ChannelAttention(64, 16).parameters()) == 580


@pytest.mark.parametrize(("pool_size", "size", "dc_gain"), [(1, (9, 13), 1.0), (7, (14, 21), 7.0)])
@pytest.mark.parametrize("aggregation", ["learned", "mean"])
def test_mmca_with_one_dc_frequency_equals_squeeze_excitation(
    pool_size: int, size: tuple[int, int], dc_gain: float, aggregation: str
) -> None:
    torch.manual_seed(0)
    channels = 16
    ca = ChannelAttention(channels, reduction=4)
    mmca = MMCAttention(channels, reduction=4, pool_size=pool_size, freq=[[0, 0]], aggregation=aggregation)
    # The (0,0) coefficient of an s x s pooled map is s * mean (basis value 1/s): fold 1/s into the first conv.
    with torch.no_grad():
        mmca.mlp[0].weight.copy_(ca.conv_du[0].weight / dc_gain)
        mmca.mlp[0].bias.copy_(ca.conv_du[0].bias)
        mmca.mlp[2].weight.copy_(ca.conv_du[2].weight)
        mmca.mlp[2].bias.copy_(ca.conv_du[2].bias)
        if mmca.freq_logits is not None:
            mmca.freq_logits.fill_(3.0)  # any value: softmax over K = 1 is 1
    x = torch.randn(2, channels, *size)
    expected = ca(x)
    assert not torch.allclose(expected, x)
    torch.testing.assert_close(mmca(x), expected, atol=1e-6, rtol=1e-5)


def test_fca_splits_channels_into_frequency_parts() -> None:
    fca = FcaAttention(32, reduction=16, freq="pre8")
    assert fca.dct_filter.shape == (32, 7, 7)
    # channels 0-3 use (0,0), channels 28-31 use (6,6)
    torch.testing.assert_close(fca.dct_filter[3], torch.full((7, 7), 1 / 7))
    assert not torch.allclose(fca.dct_filter[28], fca.dct_filter[3])
    assert all(m.bias is None for m in fca.fc if isinstance(m, torch.nn.Linear))
    assert "dct_filter" not in fca.state_dict()  # fixed buffer, rebuilt from the config


@pytest.mark.parametrize(
    "cfg",
    [
        {"name": "ca", "reduction": 16},
        {"name": "fca", "reduction": 16, "pool_size": 7, "freq": "top16"},
        {"name": "fca", "reduction": 4, "pool_size": 14, "freq": "pre8"},
        {"name": "mmca", "reduction": 16, "pool_size": 7, "freq": "top16", "aggregation": "learned"},
        {"name": "mmca", "reduction": 8, "pool_size": 7, "freq": "all49", "aggregation": "mean"},
    ],
)
@pytest.mark.parametrize("size", [(17, 23), (5, 6)])
def test_attention_output_finite_and_input_shaped(cfg: dict, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    unit = build_attention(cfg, 32)
    assert unit is not None
    x = torch.randn(2, 32, *size, requires_grad=True)
    y = unit(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    for p in [x, *unit.parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_mmca_learned_aggregation_has_k_weights() -> None:
    assert MMCAttention(32, freq="top16").freq_logits.shape == (16,)
    assert MMCAttention(32, freq="pre8", aggregation="mean").freq_logits is None


def test_build_attention_none() -> None:
    assert build_attention({"name": "none"}, 32) is None
    assert build_attention(None, 32) is None


@pytest.mark.parametrize(
    ("cfg", "channels", "match"),
    [
        ({"name": "se"}, 32, "attention.name must be one of none, ca, fca, mmca"),
        ({"name": "ca", "freq": "top16"}, 32, r"unknown key attention \(name='ca'\).'freq'"),
        ({"name": "none", "reduction": 16}, 32, "unknown key"),
        ({"name": "fca", "freq": "top16"}, 24, "channels divisible"),
        ({"name": "mmca", "aggregation": "max"}, 32, "aggregation must be one of learned, mean"),
        ({"name": "mmca", "pool_size": 10}, 32, "pool_size must be a multiple of 7"),
        ({"name": "ca", "reduction": 64}, 32, "reduction"),
    ],
)
def test_build_attention_rejects_bad_config(cfg: dict, channels: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_attention(cfg, channels)
