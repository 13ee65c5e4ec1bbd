"""The checked, decoded-once image store behind the datasets: one pass over a set's files at set-up.

Set-up (``build_store``) decodes every image once, makes its LR (``make_lr``) or reads the official LR,
and checks it: readable and fully decodable, LR partner present when expected, LR size == HR // scale,
large enough for a training patch. All faults are collected and raised together (``DataFaultError``,
one line per file: ``<path>: <reason>``); with ``skip_bad=True`` each bad file is warned about
(``BadImageWarning``) and skipped, and a count is reported at the end.

Cache modes (``cache``):
- ``memory`` (default): uint8 HR (mod-cropped) and LR of every image in one preallocated buffer of this
  process, each image decoded straight into its place (``sr_lit.data.slab``: set-up memory = the pixels).
  DataLoader workers get it through fork (copy-on-write, nothing copied) or, with spawn/forkserver, through
  torch's shared memory. Cost = raw pixels: DIV2K 1-800 at x2 is about 8.6 GB per process (HR 6.9 + LR 1.7).
- ``shared``: the same buffer as one file in /dev/shm (RAM; or ``cache_dir``), built once per node by local
  rank 0 while the other ranks wait, then mapped by every rank and worker: 8.6 GB per node, not per rank.
  Removed when the run ends. ``auto`` (datamodule only) picks it when a node runs several ranks.
- ``disk``: the same arrays written once as .npy files under ``cache_dir`` (key = path, mtime, size,
  scale, LR border) and memory-mapped on access; the OS page cache is then shared by every worker and
  DDP rank of a node, and later runs skip decoding. Writes are atomic (tmp file + rename). Under DDP only
  local rank 0 decodes; the other ranks wait for it and map its files.
- ``none``: only the check runs at set-up (its outcome memoised per process, keyed by path + mtime +
  size); every access decodes the file again and makes the LR again (slow; for huge sets only).
"""

from __future__ import annotations

import io
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sr_lit.data.imresize import make_lr
from sr_lit.data.io import ImageError, inaccessible_reason, read_image
from sr_lit.data.memory import release_freed_heap
from sr_lit.data.slab import Entry as _Entry
from sr_lit.data.slab import (
    NodeRole,
    build_private,
    build_shared,
    default_threads,
    map_slab,
    once_per_node,
    set_digest,
    view,
)
from sr_lit.data.sources import ImagePair
from sr_lit.errors import ConfigError, DataError
from sr_lit.utils.files import file_identity, short_digest, write_atomic

__all__ = [
    "CACHE_MODES",
    "BadImageWarning",
    "DataConfigError",
    "DataFaultError",
    "ImageStore",
    "build_store",
    "default_cache_dir",
    "normalize_cache",
]

CACHE_MODES = ("memory", "shared", "disk", "none")
# Bump when what is stored changes (decoding, make_lr): old .npy files are then simply not found.
_DISK_CACHE_VERSION = 2  # 2: EXIF orientation applied on read


class DataFaultError(DataError):
    """Bad files found at set-up; ``faults`` is the list of (path, reason)."""

    def __init__(self, label: str, faults: list[tuple[str, str]], total: int) -> None:
        self.faults = faults
        lines = "\n".join(f"  {p}: {r}" for p, r in faults)
        super().__init__(
            f"{len(faults)} bad image file(s) out of {total} in {label}:\n{lines}\n"
            "Fix or remove these files, or set data.skip_bad=true to skip them with a warning."
        )
        self._args = (label, faults, total)

    def __reduce__(self):
        return (type(self), self._args)


class DataConfigError(DataError, ConfigError):
    """A data setting that cannot work with these files (no images left, patch or batch too large ...)."""


class BadImageWarning(UserWarning):
    """A file skipped at set-up because of ``skip_bad=True``."""


def normalize_cache(cache: str | bool | None) -> str:
    if cache is True or cache is None:
        return "memory"
    if cache is False:
        return "none"
    if cache not in (*CACHE_MODES, "auto"):
        raise ConfigError(f"data.cache must be one of {', '.join(CACHE_MODES)}, auto, got {cache!r}")
    return cache


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sr_lit" / "decoded"


# ---------------------------------------------------------------------------------------------------
# Decoding and checking one pair


def _load_pair(pair: ImagePair, scale: int, lr_border: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode HR (cropped top-left to LR*scale) and its LR; raises ImageError naming the bad file."""
    hr = read_image(pair.hr_path)
    lh, lw = pair.lr_size(scale, hr.shape[-2:])
    lr_path = pair.official_lr()
    if lr_path is None:
        lr = make_lr(hr, scale, border=lr_border)
    else:
        lr = read_image(lr_path)
        pair.check_lr_size(scale, hr.shape[-2:], lr.shape[-2:])
    return hr[:, : lh * scale, : lw * scale].contiguous(), lr


# Check memo for cache="none": (hr key, lr key, scale, border) -> (lr_hw, channels) or the fault.
_CHECKED: dict[tuple, tuple[tuple[int, int], int] | tuple[str, str]] = {}


def _pair_key(pair: ImagePair, scale: int, lr_border: str) -> tuple:
    hr = file_identity(pair.hr_path)
    lr = file_identity(pair.lr_path) if pair.lr_path is not None and Path(pair.lr_path).is_file() else None
    return (hr, lr, str(pair.lr_path), scale, lr_border)


def _save_npy_atomic(arr: torch.Tensor, dest: Path) -> None:
    """Atomic (concurrent ranks never see a half-written file), readable as open() would make it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, arr.numpy())
    write_atomic(dest, buf.getvalue())


def _check_one(
    pair: ImagePair, scale: int, lr_border: str, mode: str, cache_dir: Path | None
) -> _Entry | tuple[str, str]:
    """Decode/check one pair for the given cache mode; returns an _Entry or (path, reason)."""
    try:
        key = _pair_key(pair, scale, lr_border)
    except OSError as e:  # missing, a broken or looping symbolic link, unreadable metadata
        return (str(pair.hr_path), inaccessible_reason(Path(pair.hr_path), e))
    if mode == "none" and key in _CHECKED:
        hit = _CHECKED[key]
        if isinstance(hit[0], str):
            return hit  # type: ignore[return-value]
        return _Entry(pair.name, Path(pair.hr_path), hit[0], hit[1], lr_path=pair.lr_path)  # type: ignore[arg-type]
    if mode == "disk":
        assert cache_dir is not None
        digest = short_digest((_DISK_CACHE_VERSION, key), 24)
        hr_npy, lr_npy = cache_dir / f"{digest}_hr.npy", cache_dir / f"{digest}_lr.npy"
        if hr_npy.is_file() and lr_npy.is_file():
            try:
                hr_m, lr_m = np.load(hr_npy, mmap_mode="r"), np.load(lr_npy, mmap_mode="r")
                return _Entry(
                    pair.name, Path(pair.hr_path), tuple(lr_m.shape[-2:]), hr_m.shape[0],
                    npy=(str(hr_npy), str(lr_npy)), lr_path=pair.lr_path,
                )  # fmt: skip
            except (OSError, ValueError):
                pass  # broken cache file: decode again below
    try:
        hr, lr = _load_pair(pair, scale, lr_border)
    except ImageError as e:
        if mode == "none":
            _CHECKED[key] = (e.path, e.reason)
        return (e.path, e.reason)
    entry = _Entry(pair.name, Path(pair.hr_path), tuple(lr.shape[-2:]), hr.shape[0], lr_path=pair.lr_path)
    if mode == "disk":
        _save_npy_atomic(hr, hr_npy)
        _save_npy_atomic(lr, lr_npy)
        entry.npy = (str(hr_npy), str(lr_npy))
    else:
        _CHECKED[key] = (entry.lr_hw, entry.hr_channels)
    return entry


@dataclass
class ImageStore:
    """Checked images of one set; ``get(i)`` -> (lr uint8 (C,h,w), hr uint8 (C,h*s,w*s)).

    ``slab``: the memory/shared modes' buffer holding every image (``slab_path``: the file it maps, shared
    mode); ``seconds`` / ``decoded``: set-up time and images decoded by this process.
    """

    label: str
    scale: int
    lr_border: str
    mode: str
    entries: list[_Entry]
    n_skipped: int = 0
    slab: torch.Tensor | None = field(default=None, repr=False)
    slab_path: str | None = None
    slab_size: int = 0
    seconds: float = 0.0
    decoded: int = 0
    _mmaps: dict = field(default_factory=dict, repr=False)  # per process, opened lazily

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def nbytes(self) -> int:
        """Bytes of decoded pixels kept (memory/shared modes)."""
        return sum(
            int(np.prod(e.hr_at[1])) + int(np.prod(e.lr_at[1]))
            for e in self.entries
            if e.hr_at is not None and e.lr_at is not None
        )

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_mmaps"] = {}  # never pickle memory maps into workers (they would be copied in full)
        if self.slab_path is not None:
            state["slab"] = None  # a file: workers map it again (see get)
        return state

    def get(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.entries[i]
        if e.hr_at is not None and e.lr_at is not None:
            if self.slab is None:
                assert self.slab_path is not None
                self.slab = map_slab(self.slab_path, self.slab_size)
            return view(self.slab, e.lr_at), view(self.slab, e.hr_at)
        if e.npy is not None:
            if i not in self._mmaps:
                # copy-on-write maps: writable arrays for torch.from_numpy, the file is never written
                self._mmaps[i] = tuple(np.load(p, mmap_mode="c") for p in e.npy)
            hr_m, lr_m = self._mmaps[i]
            return torch.from_numpy(np.asarray(lr_m)), torch.from_numpy(np.asarray(hr_m))
        hr, lr = _load_pair(ImagePair(e.name, e.hr_path, e.lr_path), self.scale, self.lr_border)
        return lr, hr


def build_store(
    pairs: Sequence[ImagePair],
    scale: int,
    *,
    label: str,
    lr_border: str = "symmetric",
    min_lr_size: int = 1,
    cache: str | bool = "memory",
    cache_dir: str | os.PathLike | None = None,
    skip_bad: bool = False,
    threads: int | None = None,
    size_reason: Callable[[int, int], str] | None = None,  # (lr_w, lr_h) -> reason
    too_small: str = "error",
    node: NodeRole | None = None,
) -> ImageStore:
    """Decode + check every pair once (threaded: Pillow and torch release the GIL).

    ``node``: this process's role when several ranks build the same set (shared and disk modes: only the
    node's local rank 0 decodes); None = one process.
    """
    mode = normalize_cache(cache)
    if mode == "auto":  # the datamodule resolves auto from the trainer; one process on its own: memory
        mode = "memory"
    if too_small not in ("error", "skip"):
        raise DataConfigError(f"too_small must be 'error' or 'skip', got {too_small!r}")
    cdir = Path(cache_dir) if cache_dir else default_cache_dir() if mode == "disk" else None
    if not pairs:
        raise DataConfigError(f"no images in {label}")
    node = node or NodeRole.single()
    n_threads = threads or default_threads()
    t0, slab = time.perf_counter(), None
    if mode == "memory":
        slab = build_private(pairs, scale, lr_border, min_lr_size, n_threads)
    elif mode == "shared":
        slab = build_shared(pairs, scale, lr_border, min_lr_size, node, cache_dir, n_threads)
    if slab is not None:
        results: list = slab.results
    elif mode == "disk" and not (node.builds and node.barrier is None):
        # local rank 0 decodes into the cache; the others then find every file there (bad files excepted)
        assert cdir is not None

        def decode_into_cache() -> tuple[list, dict]:
            return _check_all(pairs, scale, lr_border, mode, cdir, n_threads), {"done": True}

        built = once_per_node(
            cdir, f"sr_lit-disk-{set_digest(pairs, scale, lr_border)}-{node.token}-{socket.gethostname()}", node,
            decode_into_cache, lambda _: None,
        )  # fmt: skip
        # the builder has its results; the other ranks check the same files, each one now a cache hit
        results = built if built is not None else _check_all(pairs, scale, lr_border, mode, cdir, n_threads)
    else:
        results = _check_all(pairs, scale, lr_border, mode, cdir, n_threads)
    entries: list[_Entry] = []
    faults: list[tuple[str, str]] = []
    small: list[str] = []
    for pair, res in zip(pairs, results):
        if isinstance(res, tuple):
            faults.append(res)
        elif min(res.lr_hw) < min_lr_size:
            h, w = res.lr_hw
            reason = size_reason(w, h) if size_reason else f"image too small (LR {w}x{h})"
            if too_small == "skip":
                small.append(f"{Path(pair.hr_path).name} (LR {w}x{h})")
            else:
                faults.append((str(pair.hr_path), reason))
        else:
            entries.append(res)
    if small:
        # Valid images, just smaller than the patch (T91 at x3/x4): one summary, not a fault.
        warnings.warn(
            f"{label}: skipped {len(small)} of {len(pairs)} images smaller than the training patch "
            f"(too_small=skip): {', '.join(small)}",
            BadImageWarning,
            stacklevel=2,
        )
    if faults and not skip_bad:
        raise DataFaultError(label, faults, len(pairs))
    for p, r in faults:
        warnings.warn(f"skipping {p}: {r}", BadImageWarning, stacklevel=2)
    if faults:
        warnings.warn(
            f"{label}: skipped {len(faults)} of {len(pairs)} images (skip_bad=true)",
            BadImageWarning,
            stacklevel=2,
        )
    if not entries:
        folders = sorted({str(Path(p.hr_path).parent) for p in pairs})
        raise DataConfigError(f"no usable images left in {label} (folder(s): {', '.join(folders)})")
    store = ImageStore(label, scale, lr_border, mode, entries, n_skipped=len(faults) + len(small))
    store.seconds = time.perf_counter() - t0
    if slab is not None:
        store.slab, store.slab_path, store.slab_size = slab.data, slab.path, slab.nbytes
        store.decoded = slab.decoded
    return store


def _check_all(
    pairs: Sequence[ImagePair], scale: int, lr_border: str, mode: str, cdir: Path | None, n_threads: int
) -> list:
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        results = list(pool.map(lambda p: _check_one(p, scale, lr_border, mode, cdir), pairs))
    release_freed_heap()  # the decoders' temporaries (sr_lit.data.memory)
    return results
