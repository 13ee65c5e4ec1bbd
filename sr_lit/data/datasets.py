"""Datasets: random training patches and whole evaluation images, over a store (``sr_lit.data.store``) that
holds every image checked and decoded once.

Training randomness: the DataModule's sampler yields ``(epoch, index)`` keys; the patch position and
augmentation of that key come from ``item_generator(seed, epoch, index)``, so a run is reproducible from
its seed and independent of num_workers, batch size and world size. A plain int index (any other
sampler) counts as epoch 0: the same patch for that index every epoch, which is what
``Trainer(overfit_batches=n)`` needs (Lightning swaps in a SequentialSampler there). ``seed=None`` draws
from torch's global RNG instead (seeded per worker by DataLoader / ``seed_everything(workers=True)``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from sr_lit.data.io import to_float, to_rgb
from sr_lit.data.samplers import PAD_INDEX
from sr_lit.data.slab import NodeRole
from sr_lit.data.sources import ImagePair, benchmark_pairs, folder_label, folder_pairs, pairs_from_spec
from sr_lit.data.store import DataConfigError, ImageStore, build_store
from sr_lit.data.transforms import item_generator, random_dihedral, random_pair_crop

__all__ = ["TrainPatchDataset", "EvalDataset", "build_eval_datasets", "eval_min_lr_side"]

# SSIM's Gaussian window (sr_lit.metrics.sr_metrics: 11x11, 'valid' region), which must fit an evaluated HR image
# once `scale` px are shaved from each border (the DESIGN 1.5 protocol)
SSIM_WINDOW = 11


def eval_min_lr_side(scale: int) -> int:
    """Smallest LR side an evaluation image can have at this scale: HR (LR * scale) - 2 * scale >= 11."""
    return -(-(SSIM_WINDOW + 2 * scale) // scale)


# ---------------------------------------------------------------------------------------------------
# Datasets


class TrainPatchDataset(Dataset):
    """Random LR patches (patch x patch) and matching HR patches (patch*scale), optionally flipped/rotated.

    ``len = n_images * repeat``; item = dict(lr=float32 (3,p,p) in [0,1], hr=float32 (3,p*s,p*s)).
    Index: an ``(epoch, index)`` key, or an int (= epoch 0); see the module docstring.
    """

    def __init__(
        self,
        pairs: Sequence[ImagePair] | ImageStore,
        scale: int,
        patch_size: int = 48,
        repeat: int = 1,
        augment: bool = True,
        rot90: bool = True,
        lr_border: str = "symmetric",
        cache: str | bool = "memory",
        cache_dir: str | os.PathLike | None = None,
        skip_bad: bool = False,
        seed: int | None = 0,
        label: str = "training set",
        too_small: str = "error",
        node: NodeRole | None = None,
    ) -> None:
        if patch_size < 1 or repeat < 1:
            raise DataConfigError(f"patch_size and repeat must be >= 1, got {patch_size}, {repeat}")
        self.scale, self.patch_size, self.repeat = int(scale), int(patch_size), int(repeat)
        self.augment, self.rot90, self.seed = augment, rot90, seed
        hp = self.patch_size * self.scale
        self.store = (
            pairs
            if hasattr(pairs, "get")  # an ImageStore, or another store with its interface (LmdbStore)
            else build_store(
                list(pairs), self.scale, label=label, lr_border=lr_border, min_lr_size=self.patch_size,
                cache=cache, cache_dir=cache_dir, skip_bad=skip_bad,
                too_small=too_small, node=node,
                size_reason=lambda w, h: (
                    f"image is smaller than the training patch: LR {w}x{h} < patch_size {self.patch_size} "
                    f"(the HR needs at least {hp}x{hp} pixels at scale {self.scale})"
                ),
            )
        )  # fmt: skip

    @property
    def n_images(self) -> int:
        return len(self.store)

    def __len__(self) -> int:
        return len(self.store) * self.repeat

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        gen = None if self.seed is None else item_generator(self.seed, epoch, index)
        lr, hr = self.store.get(index % len(self.store))
        lr, hr = random_pair_crop(lr, hr, self.patch_size, self.scale, gen)
        if self.augment:
            lr, hr = random_dihedral(lr, hr, rot90=self.rot90, gen=gen)
        # Gray training images become 3-channel: models are RGB.
        return {"lr": to_float(to_rgb(lr)), "hr": to_float(to_rgb(hr))}


class EvalDataset(Dataset):
    """Whole images: dict(lr=float (3,h,w), hr=float (C,h*s,w*s), name=str); C = 1 for gray sources,
    so the metric can score gray values (Set14 ``bridge``) instead of Y of a replicated image."""

    def __init__(
        self,
        pairs: Sequence[ImagePair] | ImageStore,
        scale: int,
        lr_border: str = "symmetric",
        cache: str | bool = "memory",
        cache_dir: str | os.PathLike | None = None,
        skip_bad: bool = False,
        label: str = "evaluation set",
        min_lr_size: int | None = None,
        node: NodeRole | None = None,
    ) -> None:
        """``min_lr_size``: the model's smallest LR side (e.g. its reflect padding); the metric's own minimum
        (``eval_min_lr_side``) always applies. Smaller images are bad files, reported at set-up by name
        (``skip_bad`` skips them)."""
        self.scale = int(scale)
        self.label = label
        s = self.scale
        m = max(eval_min_lr_side(s), int(min_lr_size or 1))
        self.store = (
            pairs
            if isinstance(pairs, ImageStore)
            else build_store(
                list(pairs), self.scale, label=label, lr_border=lr_border, min_lr_size=m,
                cache=cache, cache_dir=cache_dir, skip_bad=skip_bad, node=node,
                size_reason=lambda w, h: (
                    f"image too small to evaluate at x{s}: LR {w}x{h} (HR {w * s}x{h * s}); the LR needs at "
                    f"least {m}x{m} pixels (HR {m * s}x{m * s}: SSIM's 11x11 window after shaving {s} px per "
                    "border, and the model's minimum input)"
                ),
            )
        )  # fmt: skip

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.store.entries]

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> dict:
        """index PAD_INDEX (-1; UnrepeatedDistributedSampler, a rank with no image): the first image flagged
        ``pad``, which evaluation skips. Any other negative index is an error, not Python's from-the-end."""
        pad = index == PAD_INDEX
        if index < 0 and not pad:
            raise IndexError(f"{index}: evaluation datasets take indices 0..{len(self) - 1} (or PAD_INDEX)")
        lr, hr = self.store.get(0 if pad else index)
        name = "(pad)" if pad else self.store.entries[index].name
        return {"lr": to_float(to_rgb(lr)), "hr": to_float(hr), "name": name, "pad": pad}


def build_eval_datasets(
    sets: Sequence[str | Mapping] | str | None,
    scale: int,
    data_dir: str | os.PathLike | None,
    lr_border: str = "symmetric",
    kind: str = "benchmark",
    root: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    cache: str | bool = "memory",
    cache_dir: str | os.PathLike | None = None,
    skip_bad: bool = False,
    use_official_lr: bool = True,
    min_lr_size: int | None = None,
    node: NodeRole | None = None,
) -> dict[str, EvalDataset]:
    """Evaluation datasets by name, in the order given.

    kind="benchmark": each str in ``sets`` is an EDSR-layout set under ``root`` (default ``data_dir``),
    official LR used when present. A mapping entry is a full source spec (see ``pairs_from_spec``),
    e.g. ``{name: DIV2K_val10, kind: div2k, root: ..., range: 801-810}``.
    kind="folder": ``root`` is a folder (or list) of HR images, LR generated; if ``sets`` is given,
    each name is a sub-folder of ``root`` evaluated as its own set.
    ``min_lr_size``: the model's smallest LR side, see ``EvalDataset``.
    """
    if isinstance(sets, str):
        sets = [sets]
    out: dict[str, EvalDataset] = {}

    def add(name: str, pairs: list[ImagePair], where: str) -> None:
        if name in out:
            raise ValueError(f"evaluation set {name!r} given twice")
        out[name] = EvalDataset(
            pairs,
            scale,
            lr_border,
            cache=cache,
            cache_dir=cache_dir,
            skip_bad=skip_bad,
            label=f"{name} ({where})",
            min_lr_size=min_lr_size,
            node=node,
        )

    if kind == "folder":
        if root is None:
            raise ValueError("kind='folder' needs root: a folder of HR images")
        roots = [root] if isinstance(root, (str, os.PathLike)) else list(root)
        if sets:
            for s in sets:
                add(str(s), folder_pairs(Path(roots[0]) / str(s)), str(Path(roots[0]) / str(s)))
        else:
            for r in roots:
                add(folder_label(r), folder_pairs(r), str(r))
        return out
    if kind != "benchmark":
        raise ValueError(f"kind must be 'benchmark' or 'folder', got {kind!r}")
    if not sets:
        raise ValueError("no evaluation sets given (e.g. sets=[Set5, Set14])")
    base = root if root is not None else data_dir
    for s in sets:
        if isinstance(s, Mapping):
            name, pairs = pairs_from_spec({"use_official_lr": use_official_lr, **s}, base, scale)
            add(name, pairs, str(s.get("root", s.get("kind"))))
        else:
            if base is None:
                raise ValueError("benchmark sets need data_dir (or root)")
            add(str(s), benchmark_pairs(base, str(s), scale, use_official_lr), str(Path(base) / str(s)))
    return out
