"""Upscaler: bicubic baseline = MATLAB bicubic on the 8-bit LR; automatic tiling; grayscale input."""

from __future__ import annotations

import pytest
import torch

from sr_lit.inference.predictor import Upscaler
from tests.inference._models import tiny_model, to8


def test_bicubic_baseline_matches_bicubic_upscale_uint8() -> None:
    from sr_lit.data.imresize import bicubic_upscale

    lr8 = torch.randint(0, 256, (3, 15, 22), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    up = Upscaler.bicubic(3, device="cpu")
    sr = up(lr8.float() / 255)
    assert torch.equal(to8(sr).to(torch.uint8), bicubic_upscale(lr8, 3))
    # tiled bicubic is bit-exact too (local, rounded per pass)
    tiled = Upscaler.bicubic(3, device="cpu", tile=8)(lr8.float() / 255)
    assert torch.equal(to8(tiled), to8(sr))


def test_auto_tiling_matches_whole_image() -> None:
    model, _ = tiny_model(2)
    lr = torch.rand(3, 40, 71, generator=torch.Generator().manual_seed(1))
    whole = Upscaler(model, device="cpu", max_pixels=None)(lr)
    up = Upscaler(model, device="cpu", max_pixels=32 * 32)
    assert up.tile_for(40, 71) == 32 and up.overlap == model.receptive_margin and not up.feather
    auto = up(lr)
    assert (to8(auto) - to8(whole)).abs().max().item() <= 1


def test_grayscale_input_is_replicated_and_scale_checked() -> None:
    model, _ = tiny_model(2)
    gray = torch.rand(1, 8, 9, generator=torch.Generator().manual_seed(2))
    up = Upscaler(model, device="cpu")
    out = up(gray)
    assert out.shape == (3, 16, 18)
    torch.testing.assert_close(out, up(gray.expand(3, -1, -1)))
    with pytest.raises(ValueError, match="disagrees"):
        Upscaler(model, scale=4, device="cpu")
    with pytest.raises(ValueError, match="scale"):
        Upscaler(None, device="cpu")


def test_global_attention_spec_turns_feather_on() -> None:
    model, spec = tiny_model(2, attention="mmca")
    assert Upscaler(model, device="cpu", spec=spec).feather


def test_overlap_below_the_receptive_margin_turns_feather_on() -> None:
    """A hard cut is exact only when the overlap covers the margin (full EDSR's 68 px > the 64 px auto cap)."""
    model, _ = tiny_model(2)
    m = model.receptive_margin
    assert not Upscaler(model, device="cpu", overlap=m).feather
    assert Upscaler(model, device="cpu", overlap=m - 1).feather
    assert not Upscaler(model, device="cpu", overlap=m - 1, feather=False).feather  # explicit choice wins
