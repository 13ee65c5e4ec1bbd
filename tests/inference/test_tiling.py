"""Tiled inference equals the whole-image forward for local models (DESIGN P10: seams, odd sizes)."""

from __future__ import annotations

import pytest
import torch

from sr_lit.inference.tiling import auto_tile, split_1d, tiled_forward
from tests.inference._models import tiny_model, to8


@pytest.mark.parametrize("n,tile", [(37, 16), (53, 16), (16, 16), (5, 16), (100, 7), (1, 1)])
def test_split_1d_covers_axis_with_balanced_pieces(n: int, tile: int) -> None:
    parts = split_1d(n, tile)
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts[:-1], parts[1:]))
    sizes = [b - a for a, b in parts]
    assert max(sizes) <= tile and max(sizes) - min(sizes) <= 1  # no sliver tile at the end


def test_auto_tile_only_above_budget() -> None:
    assert auto_tile(100, 100, 100 * 100) is None
    assert auto_tile(100, 100, None) is None
    assert auto_tile(2160, 3840, 512 * 512) == 512


@pytest.mark.parametrize("scale", [2, 3])
def test_tiled_equals_whole_image_for_local_model(scale: int) -> None:
    model, _ = tiny_model(scale)  # edsr_tiny + dynamic HPF, no attention: purely local
    torch.manual_seed(1)
    lr = torch.rand(1, 3, 37, 53)  # odd sizes; tile 16 divides neither
    with torch.inference_mode():
        whole = model(lr)
        tiled = tiled_forward(model, lr, tile=16, overlap=model.receptive_margin, scale=scale)
    assert tiled.shape == whole.shape == (1, 3, 37 * scale, 53 * scale)
    float_diff = (tiled - whole).abs().max().item()
    q_diff = (to8(tiled) - to8(whole)).abs().max().item()
    print(f"x{scale}: tiled vs whole max |diff| float {float_diff:.2e}, 8-bit {q_diff:.0f} gray levels")
    assert float_diff < 1e-4
    assert q_diff <= 1


def test_overlap_too_small_shows_seams() -> None:
    """Guards the test above: without context the tile borders do change the output."""
    model, _ = tiny_model(2)
    lr = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        whole = model(lr)
        cut = tiled_forward(model, lr, tile=16, overlap=0, scale=2)
    assert (cut - whole).abs().max().item() > 1e-3


def test_tile_larger_than_image_and_batched_3d_input() -> None:
    model, _ = tiny_model(2)
    lr = torch.rand(2, 3, 11, 9, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        whole = model(lr)
        big = tiled_forward(model, lr, tile=64, overlap=8, scale=2)
        single = tiled_forward(model, lr[1], tile=5, overlap=model.receptive_margin, scale=2)
    torch.testing.assert_close(big, whole)
    assert single.shape == (3, 22, 18)
    torch.testing.assert_close(single, whole[1], atol=1e-4, rtol=0)


def test_feather_blend_is_a_partition_of_unity() -> None:
    """A cross-fade between exact tiles is exact: the weights sum to one everywhere."""
    model, _ = tiny_model(2)
    m = model.receptive_margin
    lr = torch.rand(1, 3, 19, 22, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        whole = model(lr)
        blended = tiled_forward(model, lr, tile=11, overlap=m + 4, scale=2, feather=8)
    assert (blended - whole).abs().max().item() < 1e-4


def test_feather_weights_sum_to_one_for_any_layout() -> None:
    lr = torch.rand(1, 3, 23, 17, generator=torch.Generator().manual_seed(6))

    def up(x: torch.Tensor) -> torch.Tensor:  # pointwise op: every tile is exact wherever it is used
        return torch.nn.functional.interpolate(x, scale_factor=3, mode="nearest")

    for tile, overlap, feather in [(5, 2, 4), (4, 3, 3), (30, 2, 4), (3, 6, 12)]:
        out = tiled_forward(up, lr, tile=tile, overlap=overlap, scale=3, feather=feather)
        torch.testing.assert_close(out, up(lr), atol=1e-6, rtol=0)


def test_global_attention_model_tiles_without_error() -> None:
    model, _ = tiny_model(2, attention="mmca")  # global pooling: not exact, but must run and stay close
    lr = torch.rand(1, 3, 16, 30, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        out = tiled_forward(model, lr, tile=16, overlap=8, scale=2, feather=8)
    assert out.shape == (1, 3, 32, 60) and torch.isfinite(out).all()
