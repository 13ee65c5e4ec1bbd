"""Where (HR, LR) image pairs come from: file layouts resolved into lists of ``ImagePair``.

A source only lists files; decoding and checking happen in ``datasets`` (one validation pass).
``lr_path`` is the official LR file when the layout has one for this scale, else None (the LR is then
made from the HR with ``make_lr``). When an official ``X<s>`` LR folder exists, every HR is expected
to have its partner there (a missing one is a fault, reported at set-up).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sr_lit.data.io import IMAGE_EXTENSIONS, list_images
from sr_lit.errors import ImageError

__all__ = [
    "ImagePair",
    "benchmark_pairs",
    "div2k_pairs",
    "folder_pairs",
    "sample_pairs",
    "parse_range",
    "pairs_from_spec",
    "SAMPLE_TRAIN",
    "SAMPLE_VAL",
]


@dataclass(frozen=True)
class ImagePair:
    """One image: a name, its HR file and its official LR file (None: generate the LR)."""

    name: str
    hr_path: Path
    lr_path: Path | None = None

    # The checks every reader of a pair makes (decode cache, shared slab, sr-data pack), so that their messages
    # are one and the same; each raises ImageError naming the file at fault.

    def lr_size(self, scale: int, hr_hw: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the LR this HR gives at ``scale`` (the HR is cropped to a multiple of it)."""
        h, w = hr_hw
        if h < scale or w < scale:
            raise ImageError(self.hr_path, f"image {w}x{h} is smaller than the scale factor {scale}")
        return h // scale, w // scale

    def official_lr(self) -> Path | None:
        """The official LR file, None when the LR is to be made; a partner that should exist but does not is a
        fault of the HR image."""
        if self.lr_path is not None and not Path(self.lr_path).is_file():
            raise ImageError(self.hr_path, f"LR partner missing: expected {self.lr_path}")
        return self.lr_path

    def check_lr_size(self, scale: int, hr_hw: tuple[int, int], lr_hw: tuple[int, int]) -> None:
        """The official LR is the HR's size // scale."""
        (h, w), (lh, lw) = hr_hw, self.lr_size(scale, hr_hw)
        if tuple(lr_hw) != (lh, lw):
            raise ImageError(
                self.lr_path,
                f"LR size {lr_hw[1]}x{lr_hw[0]} does not match HR {w}x{h} // {scale} = {lw}x{lh} "
                f"(HR {self.hr_path})",
            )


def _find_with_ext(folder: Path, stem: str) -> Path | None:
    for ext in IMAGE_EXTENSIONS:
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def _official_lr(lr_dir: Path, stem: str, scale: int, hr_suffix: str) -> Path:
    """The expected LR partner ``<stem>x<s><ext>``; when missing, the expected path is returned anyway
    so that the set-up check can report where it was looked for."""
    found = _find_with_ext(lr_dir, f"{stem}x{scale}")
    return found if found is not None else lr_dir / f"{stem}x{scale}{hr_suffix}"


def benchmark_pairs(
    root: str | os.PathLike, set_name: str, scale: int, use_official_lr: bool = True
) -> list[ImagePair]:
    """EDSR benchmark layout ``<root>/<set>/HR/<name>.png`` + ``<root>/<set>/LR_bicubic/X<s>/<name>x<s>.png``."""
    set_dir = Path(root) / set_name
    hr_dir = set_dir / "HR"
    if not hr_dir.is_dir():
        raise FileNotFoundError(f"benchmark set {set_name!r} not found: no folder {hr_dir}")
    lr_dir = set_dir / "LR_bicubic" / f"X{scale}"
    official = use_official_lr and lr_dir.is_dir()
    return [
        ImagePair(f.stem, f, _official_lr(lr_dir, f.stem, scale, f.suffix) if official else None)
        for f in list_images(hr_dir)
    ]


def parse_range(spec: str | int | Sequence[int | str]) -> list[int]:
    """'1-800' -> 1..800; '801-810,815' -> 801..810 and 815; also an int or a list of ints/ranges."""
    if isinstance(spec, bool):
        raise ValueError(f"bad index range {spec!r}")
    if isinstance(spec, int):
        return [spec]
    if not isinstance(spec, str):
        out: list[int] = []
        for part in spec:
            out.extend(parse_range(part))
        return out
    out = []
    for part in spec.replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"bad index range {spec!r}: expected e.g. '1-800' or '801-810,820'")
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if hi < lo:
            raise ValueError(f"bad index range {spec!r}: {hi} < {lo}")
        out.extend(range(lo, hi + 1))
    return out


def div2k_pairs(
    root: str | os.PathLike,
    scale: int,
    index_range: str | Sequence[int] = "1-800",
    use_official_lr: bool = True,
) -> list[ImagePair]:
    """DIV2K: ``DIV2K_train_HR/0001.png`` (1-800) or ``DIV2K_valid_HR/0801.png`` (801-900), with
    ``DIV2K_{train,valid}_LR_bicubic/X<s>/0001x<s>.png`` used when that folder exists."""
    root = Path(root)
    pairs = []
    for i in parse_range(index_range):
        split = "train" if i <= 800 else "valid"
        hr_dir = root / f"DIV2K_{split}_HR"
        if not hr_dir.is_dir():
            raise FileNotFoundError(f"DIV2K image {i:04d} needs folder {hr_dir}, which does not exist")
        stem = f"{i:04d}"
        hr = _find_with_ext(hr_dir, stem) or hr_dir / f"{stem}.png"  # missing HR: reported at set-up
        lr_dir = root / f"DIV2K_{split}_LR_bicubic" / f"X{scale}"
        lr = _official_lr(lr_dir, stem, scale, hr.suffix) if use_official_lr and lr_dir.is_dir() else None
        pairs.append(ImagePair(stem, hr, lr))
    if not pairs:
        raise ValueError(f"DIV2K index range {index_range!r} is empty")
    return pairs


def folder_pairs(roots: str | os.PathLike | Sequence[str | os.PathLike]) -> list[ImagePair]:
    """Any folder(s) of HR images; LR always generated. Several roots are concatenated in order."""
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    if not roots:
        raise ValueError("folder source needs at least one root folder")
    return [ImagePair(f.stem, f) for r in roots for f in list_images(r)]


# --- sample: real photographs shipped inside scikit-image's wheel ---------------------------------
# Read straight from the package folder (never through skimage.data's fetchers, which may call pooch).
# All of these are bundled in the wheel (checked: skimage 0.22-0.26). The split is fixed, so training
# data never depends on whether a benchmark set happens to exist on the machine.
SAMPLE_FILES = {
    "astronaut": "astronaut.png",  # 512x512 RGB
    "rocket": "rocket.jpg",  # 427x640 RGB
    "motorcycle_left": "motorcycle_left.png",  # 741x500 RGB (skimage.data.stereo_motorcycle)
    "motorcycle_right": "motorcycle_right.png",  # 741x500 RGB
    "immunohistochemistry": "ihc.png",  # 512x512 RGB microscopy
    "hubble_deep_field": "hubble_deep_field.jpg",  # 1000x872 RGB
    "camera": "camera.png",  # 512x512 gray
    "coins": "coins.png",  # 384x303 gray
    "moon": "moon.png",  # 512x512 gray
    "brick": "brick.png",  # 512x512 gray texture
    "grass": "grass.png",  # 512x512 gray texture
    "gravel": "gravel.png",  # 512x512 gray texture
    "chelsea": "chelsea.png",  # 451x300 RGB  (held out)
    "coffee": "coffee.png",  # 600x400 RGB   (held out)
}
SAMPLE_VAL = ("chelsea", "coffee")
SAMPLE_TRAIN = tuple(n for n in SAMPLE_FILES if n not in SAMPLE_VAL)


def sample_dir() -> Path:
    import skimage.data  # local import: skimage is only needed for the sample source

    return Path(skimage.data.__file__).parent


def sample_pairs(split: str = "train", names: Sequence[str] | None = None) -> list[ImagePair]:
    """scikit-image's bundled photographs: ``split`` 'train' (12 images), 'val' (2) or 'all'."""
    if names is None:
        names = {"train": SAMPLE_TRAIN, "val": SAMPLE_VAL, "all": tuple(SAMPLE_FILES)}.get(split)
        if names is None:
            raise ValueError(f"sample split must be train|val|all, got {split!r}")
    unknown = [n for n in names if n not in SAMPLE_FILES]
    if unknown:
        raise ValueError(f"unknown sample image(s) {unknown}; available: {sorted(SAMPLE_FILES)}")
    d = sample_dir()
    return [ImagePair(n, d / SAMPLE_FILES[n]) for n in names]


def folder_label(folder: str | os.PathLike) -> str:
    """Display name of a folder: its name, or its parent's for the usual ``<Set>/HR`` layout."""
    p = Path(folder)
    return p.parent.name if p.name == "HR" and p.parent.name else p.name or str(p)


def pairs_from_spec(
    spec: Mapping, data_dir: str | os.PathLike | None, scale: int
) -> tuple[str, list[ImagePair]]:
    """Resolve a source mapping (the ``data.train`` config node or a ``val_sets`` entry) to pairs.

    Keys: ``kind`` = sample | div2k | folder | benchmark; ``root`` (folder/div2k/benchmark; for folder a
    path or a list of paths; benchmark defaults to data_dir); ``sets`` (benchmark: list of set names,
    concatenated), ``set`` (one name); ``range`` (div2k, default '1-800'); ``split``/``names`` (sample);
    ``use_official_lr`` (default True); ``name`` (display name). Returns (name, pairs).
    """
    kind = spec.get("kind", "folder")
    official = bool(spec.get("use_official_lr", True))
    root = spec.get("root")
    if kind == "sample":
        names = spec.get("names")
        return spec.get("name", "sample"), sample_pairs(
            spec.get("split", "train"), list(names) if names else None
        )
    if kind == "div2k":
        if root is None:
            raise ValueError("data source kind=div2k needs root (the folder holding DIV2K_train_HR)")
        rng = spec.get("range", "1-800")
        return spec.get("name", f"DIV2K_{rng}"), div2k_pairs(root, scale, rng, official)
    if kind == "folder":
        roots = spec.get("roots", root)
        if roots is None:
            raise ValueError(
                "data source kind=folder needs root (a folder or a list of folders of HR images)"
            )
        if isinstance(roots, (str, os.PathLike)):
            roots = [roots]
        roots = list(roots)
        return spec.get("name", "+".join(folder_label(r) for r in roots)), folder_pairs(roots)
    if kind == "benchmark":
        sets = spec.get("sets") or ([spec["set"]] if spec.get("set") else None)
        if not sets:
            raise ValueError("data source kind=benchmark needs sets (e.g. [Set5, Set14])")
        base = root if root is not None else data_dir
        if base is None:
            raise ValueError("data source kind=benchmark needs root or data_dir")
        pairs = [p for s in sets for p in benchmark_pairs(base, s, scale, official)]
        return spec.get("name", "+".join(sets)), pairs
    raise ValueError(f"unknown data source kind {kind!r}; expected sample | div2k | folder | benchmark")
