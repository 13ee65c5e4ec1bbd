"""Geometric self-ensemble x8 (the "+" rows of SR tables, EDSR's ``forward_x8``).

The model runs on the 8 dihedral transforms of the input (flips and transpose); each output is
mapped back with the inverse transform and the 8 are averaged. ``fn`` can be a tiled forward, so
ensemble and tiling compose: ``self_ensemble(lambda t: tiled_forward(model, t, ...), lr)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["dihedral", "dihedral_inverse", "self_ensemble", "N_TRANSFORMS"]

N_TRANSFORMS = 8


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Transform k in 0..7 of the last two dims: bit 2 transpose, then bit 0 h-flip, bit 1 v-flip."""
    if k & 4:
        x = x.transpose(-1, -2)
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    return x


def dihedral_inverse(x: torch.Tensor, k: int) -> torch.Tensor:
    """Undo ``dihedral(., k)``: the same steps in reverse order (each is its own inverse)."""
    if k & 2:
        x = x.flip(-2)
    if k & 1:
        x = x.flip(-1)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


@torch.inference_mode()
def self_ensemble(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Mean over the 8 dihedral transforms of ``inverse(fn(transform(x)))``; accumulated in float32."""
    acc: torch.Tensor | None = None
    for k in range(N_TRANSFORMS):
        # contiguous(): flips/transposes are views; some kernels (and tiling) want dense memory.
        y = dihedral_inverse(fn(dihedral(x, k).contiguous()), k).float()
        acc = y.clone() if acc is None else acc.add_(y.to(acc.device))
        del y
    assert acc is not None
    return acc.div_(N_TRANSFORMS)
