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


def test_bf16_runs_the_network_under_autocast_and_stays_close_to_fp32() -> None:
    model, spec = tiny_model(2, attention="mmca")
    lr = torch.rand(3, 30, 37, generator=torch.Generator().manual_seed(3))
    seen: list[bool] = []
    handle = model.register_forward_pre_hook(lambda *_: seen.append(torch.is_autocast_enabled("cpu")))
    fp32 = Upscaler(model, device="cpu", spec=spec)(lr)
    bf16 = Upscaler(model, device="cpu", spec=spec, precision="bf16")(lr)
    tiled = Upscaler(model, device="cpu", spec=spec, precision="bf16", tile=16)(
        lr
    )  # tiles under autocast too
    handle.remove()
    assert seen[0] is False and all(seen[1:]) and len(seen) > 2
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    # bf16 keeps 8 significant bits: a random-weight network's output moves by at most a few grey levels
    diff = (to8(bf16) - to8(fp32)).abs()
    assert 0 < diff.max().item() <= 4 and diff.mean().item() < 0.5, (diff.max(), diff.mean())
    assert (to8(tiled) - to8(bf16)).abs().mean().item() < 0.5


def test_precision_is_checked() -> None:
    model, _ = tiny_model(2)
    with pytest.raises(ValueError, match="precision"):
        Upscaler(model, device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="bicubic"):
        Upscaler.bicubic(2, device="cpu", precision="bf16")


@pytest.mark.parametrize("hpf", ["none", "dynamic"])
def test_the_model_declares_its_smallest_input(hpf: str) -> None:
    """min_input_side comes from the model itself (no spec needed): 1 for zero-padded convs, k // 2 + 1 where the
    HPF reflect-pads by k // 2; an input of that side runs, one pixel less fails inside the network."""
    from sr_lit.inference.predictor import min_input_side

    model, spec = tiny_model(hpf=hpf)
    side = min_input_side(model)  # no spec: what a library user who builds the model gets
    assert side == (spec["hpf"]["kernel_size"] // 2 + 1 if hpf == "dynamic" else 1)
    assert Upscaler(model).min_input_side == side
    with torch.no_grad():
        assert model(torch.rand(1, 3, side, side)).shape[-1] == 2 * side
        if side > 1:
            with pytest.raises(RuntimeError):
                model(torch.rand(1, 3, side - 1, side - 1))


def test_a_wrapper_that_hides_the_models_attributes_still_gets_its_minimum() -> None:
    from torch import nn

    from sr_lit.inference.predictor import min_input_side

    model, spec = tiny_model(hpf="dynamic")
    assert min_input_side(nn.DataParallel(model)) == spec["hpf"]["kernel_size"] // 2 + 1
