"""DCT bases and FcaNet frequency sets (DESIGN 1.2)."""

from __future__ import annotations

import ast

import pytest
import torch

from sr_lit.models.blocks.dct import FREQ_SETS, dct_bases, dct_basis_2d, dct_basis_all, freq_indices


def test_dct_bases_are_orthonormal_on_7x7() -> None:
    basis = dct_basis_all(7, dtype=torch.float64).flatten(1)  # (49, 49)
    torch.testing.assert_close(basis @ basis.t(), torch.eye(49, dtype=torch.float64), atol=1e-12, rtol=0)


def test_dc_basis_is_constant_and_rows_follow_u() -> None:
    torch.testing.assert_close(dct_basis_2d(0, 0, 7), torch.full((7, 7), 1 / 7))
    b = dct_basis_2d(1, 0, 7)  # u = row frequency: varies down the rows, constant along a row
    assert torch.allclose(b, b[:, :1].expand(7, 7))
    assert not torch.allclose(b, b[:1, :].expand(7, 7))
    assert dct_bases([(0, 0), (6, 6)], 14).shape == (2, 14, 14)


def test_frequency_sets_match_spec() -> None:
    # Transcribed from DESIGN 1.2, (u, v) = (row, col) on the 7x7 grid.
    spec = {
        "top16": "(0,0),(0,1),(6,0),(0,5),(0,2),(1,0),(1,2),(4,0),(5,0),(1,6),(3,0),(0,4),(0,6),(0,3),(3,5),(2,2)",
        "low16": "(0,0),(0,1),(1,0),(1,1),(0,2),(2,0),(2,1),(1,2),(2,2),(0,3),(3,0),(4,0),(0,4),(1,3),(3,1),(0,5)",
        "pre8": "(0,0),(0,1),(1,0),(1,1),(5,5),(5,6),(6,5),(6,6)",
    }
    for name, text in spec.items():
        assert FREQ_SETS[name] == ast.literal_eval(text), name
    assert FREQ_SETS["all49"] == tuple((u, v) for u in range(7) for v in range(7))


def test_freq_indices_scale_with_pool_size() -> None:
    assert freq_indices("top16", 7) == list(FREQ_SETS["top16"])
    assert freq_indices("top16", 14) == [(2 * u, 2 * v) for u, v in FREQ_SETS["top16"]]
    assert freq_indices([[0, 0], [3, 4]], 5) == [(0, 0), (3, 4)]


@pytest.mark.parametrize(
    ("freq", "pool_size", "match"),
    [
        ("top32", 7, "freq must be one of"),
        ("top16", 8, "pool_size must be a multiple of 7"),
        ("top16", 0, "pool_size must be a positive integer"),
        ([[0, 7]], 7, "freq pairs"),
        ([], 7, "freq must"),
    ],
)
def test_freq_indices_rejects_bad_options(freq: object, pool_size: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        freq_indices(freq, pool_size)  # type: ignore[arg-type]
