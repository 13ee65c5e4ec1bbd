"""Paired patch cropping and the 8 dihedral augmentations (flips, rot90), driven by a torch.Generator.

Everything works on (C, H, W) tensors of any dtype (uint8 in the dataset: crop first, convert later).
"""

from __future__ import annotations

import torch

__all__ = ["random_pair_crop", "random_dihedral", "apply_dihedral", "item_generator"]


def _randint(high: int, gen: torch.Generator | None) -> int:
    return int(torch.randint(high, (1,), generator=gen).item())


def random_pair_crop(
    lr: torch.Tensor, hr: torch.Tensor, patch: int, scale: int, gen: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random LR patch (patch x patch) and the HR patch covering the same area (patch*scale).

    LR pixel (y, x) covers HR pixels [y*s, (y+1)*s): make_lr mod-crops at the top left, so the HR
    patch starts at (y*s, x*s) exactly.
    """
    lh, lw = lr.shape[-2:]
    if lh < patch or lw < patch:
        raise ValueError(f"LR image {lw}x{lh} is smaller than the patch {patch}x{patch}")
    if hr.shape[-2] < lh * scale or hr.shape[-1] < lw * scale:
        raise ValueError(f"HR {tuple(hr.shape[-2:])} smaller than LR {(lh, lw)} x {scale}")
    y = _randint(lh - patch + 1, gen)
    x = _randint(lw - patch + 1, gen)
    hp = patch * scale
    ys, xs = y * scale, x * scale
    return lr[..., y : y + patch, x : x + patch], hr[..., ys : ys + hp, xs : xs + hp]


def apply_dihedral(x: torch.Tensor, hflip: bool, vflip: bool, rot90: bool) -> torch.Tensor:
    """h-flip, then v-flip, then transpose-free 90 degree rotation (counter-clockwise) of (..., H, W)."""
    if hflip:
        x = x.flip(-1)
    if vflip:
        x = x.flip(-2)
    if rot90:
        x = x.rot90(1, (-2, -1))
    return x


def random_dihedral(
    *xs: torch.Tensor, rot90: bool = True, gen: torch.Generator | None = None
) -> tuple[torch.Tensor, ...]:
    """The same random flip/rotation applied to every tensor (LR and HR patch); contiguous outputs."""
    bits = torch.randint(2, (3,), generator=gen).tolist()
    h, v, r = bool(bits[0]), bool(bits[1]), bool(bits[2]) and rot90
    return tuple(apply_dihedral(x, h, v, r).contiguous() for x in xs)


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator that depends only on (seed, epoch, index): the same patch for an item whatever the
    number of workers, the batch size or the DDP world size."""
    # Mix with large odd constants (splitmix-like) so nearby (epoch, index) pairs give unrelated streams.
    mixed = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) % (1 << 63)
    g = torch.Generator()
    g.manual_seed(mixed)
    return g
