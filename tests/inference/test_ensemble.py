"""x8 self-ensemble: transforms invert exactly; an equivariant op is unchanged by the ensemble."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sr_lit.inference.ensemble import dihedral, dihedral_inverse, self_ensemble
from sr_lit.inference.tiling import tiled_forward
from tests.inference._models import tiny_model


def test_dihedral_round_trip_and_eight_distinct_transforms() -> None:
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    seen = set()
    for k in range(8):
        y = dihedral(x, k)
        torch.testing.assert_close(dihedral_inverse(y, k), x, rtol=0, atol=0)
        seen.add(tuple(y.flatten().tolist()))
    assert len(seen) == 8


def test_equivariant_op_is_unchanged_by_ensemble() -> None:
    x = torch.rand(1, 3, 7, 10, generator=torch.Generator().manual_seed(0))

    def nearest(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=2, mode="nearest")

    torch.testing.assert_close(self_ensemble(nearest, x), nearest(x), rtol=0, atol=1e-6)


def test_float_bicubic_is_equivariant() -> None:
    from sr_lit.data.imresize import bicubic_upscale

    x = torch.rand(1, 3, 9, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def bic(t: torch.Tensor) -> torch.Tensor:
        return bicubic_upscale(t, 3)

    torch.testing.assert_close(self_ensemble(bic, x), bic(x).float(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("tile", [8])
def test_ensemble_composes_with_tiling(tile: int) -> None:
    model, _ = tiny_model(2)
    x = torch.rand(1, 3, 12, 14, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        plain = self_ensemble(model, x)
        tiled = self_ensemble(lambda t: tiled_forward(model, t, tile, model.receptive_margin, 2), x)
        single = model(x)
    assert (tiled - plain).abs().max().item() < 1e-4
    assert (plain - single).abs().max().item() > 1e-4  # a random model is not equivariant: the 8 differ
