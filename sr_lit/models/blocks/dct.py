"""Orthonormal 2-D DCT-II bases and FcaNet's frequency sets (DESIGN 1.2).

Frequencies are (u, v) = (row, col) pairs. The named sets are defined on a 7x7 grid and are scaled by
pool_size // 7, as in FcaNet, so a named set needs pool_size to be a multiple of 7. `freq` may instead be an
explicit list of (u, v) pairs on the pool_size grid (used unscaled), e.g. [[0, 0]] for an SE-like K=1 unit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from sr_lit.errors import ConfigError

BASE_GRID = 7

# fmt: off
FREQ_SETS: dict[str, tuple[tuple[int, int], ...]] = {
    # FcaNet's top-16 frequencies by single-frequency ImageNet accuracy.
    "top16": (
        (0, 0), (0, 1), (6, 0), (0, 5), (0, 2), (1, 0), (1, 2), (4, 0),
        (5, 0), (1, 6), (3, 0), (0, 4), (0, 6), (0, 3), (3, 5), (2, 2),
    ),
    # FcaNet's 16 lowest frequencies.
    "low16": (
        (0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (2, 1), (1, 2),
        (2, 2), (0, 3), (3, 0), (4, 0), (0, 4), (1, 3), (3, 1), (0, 5),
    ),
    # 4 lowest + 4 highest.
    "pre8": ((0, 0), (0, 1), (1, 0), (1, 1), (5, 5), (5, 6), (6, 5), (6, 6)),
    # Every basis of the 7x7 grid, row-major.
    "all49": tuple((u, v) for u in range(BASE_GRID) for v in range(BASE_GRID)),
}
# fmt: on

FreqSpec = str | Sequence[Sequence[int]]


def dct_basis_1d(u: int, size: int) -> torch.Tensor:
    """Orthonormal DCT-II basis vector u of length `size` (float64)."""
    n = torch.arange(size, dtype=torch.float64)
    norm = math.sqrt(1.0 / size) if u == 0 else math.sqrt(2.0 / size)
    return norm * torch.cos(math.pi * (2 * n + 1) * u / (2 * size))


def dct_basis_2d(u: int, v: int, size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Orthonormal 2-D DCT-II basis B_{u,v} on a size x size grid: (size, size), rows indexed by u."""
    return torch.outer(dct_basis_1d(u, size), dct_basis_1d(v, size)).to(dtype)


def dct_bases(
    freqs: Sequence[tuple[int, int]], size: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Stack of the bases for `freqs`: (K, size, size)."""
    return torch.stack([dct_basis_2d(u, v, size, dtype) for u, v in freqs])


def dct_basis_all(size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """All size*size bases, row-major in (u, v): (size*size, size, size)."""
    return dct_bases([(u, v) for u in range(size) for v in range(size)], size, dtype)


def freq_indices(freq: FreqSpec, pool_size: int) -> list[tuple[int, int]]:
    """Resolve `freq` (a FREQ_SETS name or explicit (u, v) pairs) to (u, v) pairs on the pool_size grid."""
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
        raise ConfigError(f"pool_size must be a positive integer; got {pool_size!r}")
    if isinstance(freq, str):
        if freq not in FREQ_SETS:
            raise ConfigError(
                f"freq must be one of {', '.join(FREQ_SETS)} or a list of [u, v] pairs; got {freq!r}"
            )
        if pool_size % BASE_GRID:
            raise ConfigError(
                f"pool_size must be a multiple of {BASE_GRID} for freq={freq!r} (its 7x7 indices are scaled by "
                f"pool_size // {BASE_GRID}); got pool_size={pool_size}"
            )
        step = pool_size // BASE_GRID
        return [(u * step, v * step) for u, v in FREQ_SETS[freq]]
    pairs = [tuple(pair) for pair in freq]
    if not pairs:
        raise ConfigError("freq must name a set or list at least one [u, v] pair; got an empty list")
    for pair in pairs:
        valid = len(pair) == 2 and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < pool_size for i in pair
        )
        if not valid:
            raise ConfigError(
                f"freq pairs must be [u, v] with 0 <= u, v < pool_size={pool_size}; got {list(pair)!r}"
            )
    return pairs  # type: ignore[return-value]
