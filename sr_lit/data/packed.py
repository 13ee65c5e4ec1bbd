"""Training sets larger than RAM: LMDB databases read by random access, one image per key.

Two layouts are read (``data.train: {kind: lmdb, root: DIR}``):

- **sr_lit packs** (``sr-data pack SRC --out DIR``; key ``__sr_lit_pack__`` holds the metadata): every HR image
  and its LR at each packed scale stored as raw uint8 (H, W, C) values. A patch is sliced straight out of LMDB's
  memory map (zero-copy read transaction), so only the pages under the patch are read: no decoding, no LR
  resize, no copy of the whole image. Rows are contiguous in (H, W, C), so a 96-px HR patch touches ~96 pages.
- **BasicSR folders** (``meta_info.txt`` with lines ``<name>.png (h,w,c) <compression>``, keys ``<name>``,
  PNG-encoded values): what ``basicsr/scripts/data_preparation/create_lmdb.py`` writes (e.g.
  ``DIV2K_train_HR_sub.lmdb`` + ``DIV2K_train_LR_bicubic_X2_sub.lmdb``). Each access decodes the PNG; the LR
  comes from ``lr_root`` (same keys) or, without it, is made from the HR with MATLAB bicubic on every access.

Why LMDB (not LitData's optimized shards): measured in bench/README.md, "loader"; in short, random access by index
keeps the (seed, epoch, index) patch contract with our own sampler, and the package is one small C extension,
where litdata 0.2.76 requires torchvision, boto3 and obstore.

Set ordering: the order of the pack's metadata list (= the source folder's sorted order), so a pack and its
folder give the same patch for the same key. Open environments never cross a fork: each process opens its own.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sr_lit.data.imresize import make_lr
from sr_lit.data.io import ImageError, decode_image_bytes, read_image
from sr_lit.data.memory import release_freed_heap
from sr_lit.data.slab import Entry, default_threads
from sr_lit.data.sources import ImagePair, div2k_pairs, folder_pairs
from sr_lit.errors import ConfigError, DataError

__all__ = ["META_KEY", "LmdbStore", "open_lmdb", "pack", "pack_sources"]

META_KEY = b"__sr_lit_pack__"
_PACK_VERSION = 1
_META_LINE = re.compile(r"^(?P<name>\S+?)(?:\.\w+)?\s+\((?P<h>\d+),\s*(?P<w>\d+),\s*(?P<c>\d+)\)")


def _lmdb():
    try:
        import lmdb
    except ImportError as e:  # pragma: no cover - a dependency of sr_lit
        raise ConfigError("data.train.kind=lmdb needs the lmdb package (pip install lmdb)") from e
    return lmdb


_ENVS: dict[str, tuple[int, Any]] = {}  # realpath -> (pid, env): LMDB allows one env per file and process


def _open_env(path: Path):
    key = os.path.realpath(path)
    hit = _ENVS.get(key)
    if hit is None or hit[0] != os.getpid():  # never reuse an env across a fork
        if hit is not None:
            # inherited through fork (a DataLoader worker): close this process's copy of it, then open anew (the
            # binding refuses a second open of one path per process); read-only and lock-free, so the parent's
            # environment is not affected
            hit[1].close()
        env = _lmdb().open(
            key, readonly=True, lock=False, readahead=False, meminit=False, max_readers=4096, subdir=True
        )
        _ENVS[key] = hit = (os.getpid(), env)
    return hit[1]


def _hwc_tensor(buf: Any, shape: tuple[int, int, int]) -> torch.Tensor:
    """(C, H, W) view of a raw (H, W, C) value; zero-copy over LMDB's read-only map (never written: crops,
    flips and the float conversion all make new tensors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "non-writable buffer": by design, see above
        flat = torch.frombuffer(buf, dtype=torch.uint8)
    return flat.view(shape).permute(2, 0, 1)


def _pages(nbytes: int, page: int = 4096) -> int:
    """Bytes an LMDB value of ``nbytes`` occupies: its own whole pages (overflow pages) plus a header."""
    return -(-(nbytes + 64) // page) * page


class LmdbStore:
    """A training set in an LMDB folder; the ``ImageStore`` interface (``get(i)`` -> (lr, hr) uint8 (C, h, w),
    ``entries``, ``n_skipped``)."""

    mode = "lmdb"

    def __init__(
        self,
        root: Path,
        scale: int,
        entries: list[Entry],
        keys: list[tuple[bytes, bytes | None]],
        shapes: list[tuple[tuple[int, int, int], tuple[int, int, int]]],  # stored (H, W, C): HR, LR
        raw: bool,
        lr_root: Path | None = None,
        lr_border: str = "symmetric",
        label: str = "",
        n_skipped: int = 0,
    ) -> None:
        self.root, self.scale, self.entries, self.keys, self.shapes = root, scale, entries, keys, shapes
        self.raw, self.lr_root, self.lr_border = raw, lr_root, lr_border
        self.label, self.n_skipped = label or str(root), n_skipped
        self.seconds, self.decoded, self.nbytes = 0.0, 0, 0
        self._opened: tuple[int, Any, Any, Any] | None = None  # (pid, env, txn, lr txn)

    def __len__(self) -> int:
        return len(self.entries)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_opened"] = None  # an LMDB environment must not cross a fork or a pickle
        return state

    def _txns(self) -> tuple[Any, Any]:
        if self._opened is None or self._opened[0] != os.getpid():
            env = _open_env(self.root)
            lr_env = _open_env(self.lr_root) if self.lr_root is not None else None
            # read transactions live as long as the store: values are views into the map (buffers=True)
            self._opened = (
                os.getpid(), (env, lr_env), env.begin(buffers=True), lr_env.begin(buffers=True) if lr_env else None
            )  # fmt: skip
        return self._opened[2], self._opened[3]

    def get(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        txn, lr_txn = self._txns()
        hr_key, lr_key = self.keys[i]
        hr_shape, lr_shape = self.shapes[i]
        where = f"{self.root}:{hr_key.decode()}"
        hr_buf = txn.get(hr_key)
        if hr_buf is None:
            raise ImageError(where, "key missing from the database")
        s = self.scale
        if self.raw:
            hr = _hwc_tensor(hr_buf, hr_shape)
            lr_buf = txn.get(lr_key)
            if lr_buf is None:
                raise ImageError(f"{self.root}:{lr_key!r}", "key missing from the database")
            lr = _hwc_tensor(lr_buf, lr_shape)
        else:
            hr = decode_image_bytes(hr_buf, where)
            if lr_txn is not None and lr_key is not None:
                lr_buf = lr_txn.get(lr_key)
                if lr_buf is None:
                    raise ImageError(f"{self.lr_root}:{lr_key.decode()}", "key missing from the LR database")
                lr = decode_image_bytes(lr_buf, f"{self.lr_root}:{lr_key.decode()}")
            else:
                lr = make_lr(hr, s, border=self.lr_border)
        lh, lw = lr.shape[-2:]
        return lr, hr[:, : lh * s, : lw * s]


def _read_meta_info(folder: Path) -> list[tuple[str, tuple[int, int, int]]]:
    """BasicSR's meta_info.txt: [(key, (h, w, c))]."""
    path = folder / "meta_info.txt"
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        m = _META_LINE.match(line.strip())
        if not m:
            raise DataError(f"{path}:{n}: expected '<name>.png (h,w,c) <compression>', got {line.strip()!r}")
        out.append((m["name"], (int(m["h"]), int(m["w"]), int(m["c"]))))
    return out


def open_lmdb(
    root: str | os.PathLike,
    scale: int,
    lr_root: str | os.PathLike | None = None,
    *,
    lr_border: str = "symmetric",
    min_lr_size: int = 1,
    too_small: str = "error",
    label: str | None = None,
    size_reason: Callable[[int, int], str] | None = None,
) -> LmdbStore:
    """Open an sr_lit pack or a BasicSR LMDB folder as a training store (see the module docstring)."""
    from sr_lit.data.store import BadImageWarning, DataConfigError, DataFaultError

    t0 = time.perf_counter()
    root = Path(root)
    if not (root / "data.mdb").is_file():
        raise DataConfigError(f"data.train.root={root}: not an LMDB folder (no data.mdb)")
    with _open_env(root).begin() as txn:
        meta_raw = txn.get(META_KEY)
    items: list[tuple[str, tuple[int, int, int], tuple[int, int, int], bytes, bytes | None]] = []
    if meta_raw is not None:
        meta = json.loads(meta_raw)
        if meta.get("version") != _PACK_VERSION:
            raise DataConfigError(
                f"{root}: sr_lit pack version {meta.get('version')}, this sr_lit reads {_PACK_VERSION}"
            )
        if scale not in meta["scales"]:
            raise DataConfigError(
                f"{root} holds LR for scales {meta['scales']}, not {scale}: pack again with --scales"
            )
        if meta["lr_border"] != lr_border and not meta.get("official_lr"):
            warnings.warn(
                f"{root}: packed with lr_border={meta['lr_border']}, data.lr_border={lr_border}", stacklevel=2
            )
        for im in meta["images"]:
            h, w, c = im["hr"]
            lh, lw = h // scale, w // scale
            items.append((im["name"], (h, w, c), (lh, lw, im["lr_c"]), f"hr/{im['name']}".encode(),
                          f"x{scale}/{im['name']}".encode()))  # fmt: skip
        raw = True
    elif (root / "meta_info.txt").is_file():
        lr_meta = dict(_read_meta_info(Path(lr_root))) if lr_root is not None else {}
        for name, (h, w, c) in _read_meta_info(root):
            lh, lw = h // scale, w // scale
            if lr_root is not None:
                if name not in lr_meta:
                    raise DataConfigError(
                        f"data.train.lr_root={lr_root}: no key {name!r} (listed in {root}/meta_info.txt)"
                    )
                if lr_meta[name][:2] != (lh, lw):
                    raise DataConfigError(
                        f"data.train.lr_root={lr_root}: {name} is {lr_meta[name][1]}x{lr_meta[name][0]}, expected "
                        f"{lw}x{lh} (HR {w}x{h} // {scale})"
                    )
            items.append((name, (h, w, c), (lh, lw, c), name.encode(), name.encode()))
        raw = False
    else:
        raise DataConfigError(
            f"data.train.root={root}: neither an sr_lit pack nor a BasicSR folder (no meta_info.txt)"
        )
    entries, keys, shapes, small, faults = [], [], [], [], []
    for name, hr_shape, lr_shape, hk, lk in items:
        lh, lw = lr_shape[:2]
        if min(lh, lw) < min_lr_size:
            if too_small == "skip":
                small.append(f"{name} (LR {lw}x{lh})")
            else:
                reason = size_reason(lw, lh) if size_reason else f"image too small (LR {lw}x{lh})"
                faults.append((f"{root}:{name}", reason))
            continue
        entries.append(Entry(name, root / name, (lh, lw), hr_shape[2]))
        keys.append((hk, lk))
        shapes.append((hr_shape, lr_shape))
    label = label or f"training set {root.name}"
    if faults:
        raise DataFaultError(label, faults, len(items))
    if small:
        warnings.warn(f"{label}: skipped {len(small)} of {len(items)} images smaller than the training patch "
                      f"(too_small=skip): {', '.join(small)}", BadImageWarning, stacklevel=2)  # fmt: skip
    if not entries:
        raise DataConfigError(f"no usable images left in {label}")
    store = LmdbStore(root, scale, entries, keys, shapes, raw, Path(lr_root) if lr_root else None, lr_border, label,
                      n_skipped=len(small))  # fmt: skip
    store.seconds = time.perf_counter() - t0
    return store


# ---------------------------------------------------------------------------------------------------
# Packing


def pack_sources(
    src: str | os.PathLike, scales: Sequence[int], index_range: str | None = None
) -> list[list[ImagePair]]:
    """The pairs to pack, one list per scale (same images, in the same order): a DIV2K root (``DIV2K_train_HR``
    inside; ``index_range`` default 1-800, official LR folders used when present) or any folder of images."""
    src = Path(src)
    if (src / "DIV2K_train_HR").is_dir() or (src / "DIV2K_valid_HR").is_dir():
        return [div2k_pairs(src, s, index_range or "1-800") for s in scales]
    if index_range is not None:
        raise ConfigError(f"--range applies to a DIV2K folder; {src} has no DIV2K_train_HR")
    pairs = folder_pairs(src)
    return [pairs for _ in scales]


def _load_for_pack(
    group: Sequence[ImagePair], scales: Sequence[int], lr_border: str
) -> tuple[np.ndarray, list]:
    """HR (H, W, C) and one LR (h, w, C) per scale, each from its official file or made with make_lr."""
    hr = read_image(group[0].hr_path)
    lrs = []
    for pair, s in zip(group, scales):
        pair.lr_size(s, hr.shape[-2:])
        lr_path = pair.official_lr()
        if lr_path is not None:
            lr = read_image(lr_path)
            pair.check_lr_size(s, hr.shape[-2:], lr.shape[-2:])
        else:
            lr = torch.cat([make_lr(hr[c : c + 1], s, border=lr_border) for c in range(hr.shape[0])])
        lrs.append(np.ascontiguousarray(lr.permute(1, 2, 0).numpy()))
    return np.ascontiguousarray(hr.permute(1, 2, 0).numpy()), lrs


def pack(
    src: str | os.PathLike,
    out: str | os.PathLike,
    scales: Sequence[int] = (2, 3, 4),
    lr_border: str = "symmetric",
    index_range: str | None = None,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write an sr_lit pack of ``src`` into the new LMDB folder ``out``; returns its metadata (+ bytes, seconds).

    Every file is checked as the decode cache checks it; bad files stop the pack with one line each (nothing is
    left at ``out``: the pack is written to ``out.tmp-<pid>`` and renamed when complete).
    """
    from sr_lit.data.store import DataFaultError

    lmdb = _lmdb()
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists():
        raise ConfigError(
            f"--out {out}: already exists (sr-data never overwrites; remove it or pick another name)"
        )
    scales = sorted({int(s) for s in scales})
    groups = list(zip(*pack_sources(src, scales, index_range)))
    if not groups:
        raise DataError(f"no images in {src}")
    from sr_lit.data.io import probe_image

    size = 0
    for g in groups:  # map size from the headers: HR + every LR, plus B-tree overhead
        try:
            c, h, w = probe_image(g[0].hr_path)
        except ImageError:
            continue  # reported when decoded
        size += sum(_pages(c * (h // s) * (w // s)) for s in (1, *scales)) + 512
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    # LMDB stores a value over ~2 KiB on its own whole 4 KiB pages: round each up, plus the keys' B-tree. The map
    # is only an upper bound (the file grows as written), so err on the large side rather than fail at the end.
    env = lmdb.open(str(tmp), map_size=2 * size + (256 << 20), subdir=True, meminit=False, map_async=True)
    images, faults, written, pending = [], [], 0, 0
    try:
        txn = env.begin(write=True)
        for i, (g, res) in enumerate(
            zip(groups, _bounded_map(lambda g: _try_load(g, scales, lr_border), groups, threads))
        ):
            if isinstance(res, tuple) and isinstance(res[0], str):
                faults.append(res)
                continue
            hr, lrs = res
            name = g[0].name
            txn.put(f"hr/{name}".encode(), memoryview(hr))
            for s, lr in zip(scales, lrs):
                txn.put(f"x{s}/{name}".encode(), memoryview(lr))
            images.append({"name": name, "hr": list(hr.shape), "lr_c": int(lrs[0].shape[2])})
            n = hr.nbytes + sum(lr.nbytes for lr in lrs)
            written, pending = written + n, pending + n
            if pending > (512 << 20):  # bounded transactions
                txn.commit()
                txn, pending = env.begin(write=True), 0
            if progress:
                progress(i + 1, len(groups))
        if faults:
            txn.abort()
            raise DataFaultError(f"{src}", faults, len(groups))
        official = all(p.lr_path is not None for g in groups for p in g)
        meta = {"version": _PACK_VERSION, "scales": scales, "lr_border": lr_border, "official_lr": official,
                "source": str(Path(src).resolve()), "images": images}  # fmt: skip
        txn.put(META_KEY, json.dumps(meta).encode())
        txn.commit()
        env.sync(True)
        env.close()
        os.replace(tmp, out)
    except BaseException:
        env.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    release_freed_heap()
    return {**meta, "bytes": written, "seconds": time.perf_counter() - t0}


def _bounded_map(fn: Callable[[Any], Any], items: Sequence[Any], threads: int | None) -> Iterator[Any]:
    """``fn`` over ``items`` in threads, in order, with at most 2 x threads results held (memory stays bounded)."""
    from collections import deque

    n = threads or default_threads()
    with ThreadPoolExecutor(max_workers=n) as pool:
        queue: deque = deque()
        for item in items:
            queue.append(pool.submit(fn, item))
            if len(queue) >= 2 * n:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def _try_load(group: Sequence[ImagePair], scales: Sequence[int], lr_border: str):
    try:
        return _load_for_pack(group, scales, lr_border)
    except ImageError as e:
        return (e.path, e.reason)
