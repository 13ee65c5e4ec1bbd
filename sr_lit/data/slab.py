"""Decode caches that keep every image of a set in one preallocated uint8 buffer (a "slab").

Why one buffer: decoding a 2K PNG and making its LR needs about 80 MB of temporaries per image (Pillow's buffer,
float64 planes for the MATLAB bicubic). Decoded in threads, each image's kept tensors used to land in a thread's
malloc arena between those freed temporaries, so the arenas could not shrink: 40 DIV2K-sized images (396 MB of
pixels) held +2.1 GB after set-up. Here the set is laid out first from the file headers, one buffer of exactly the
decoded size is allocated, each image is decoded straight into its place, and the temporaries are handed back to
the kernel when set-up ends (``sr_lit.data.memory.release_freed_heap``). Measured: bench/README.md, "datacache".

Where the slab lives:
- ``private`` (``data.cache=memory``): this process's memory. DataLoader workers share it through fork
  (copy-on-write, never written) or torch's shared memory (spawn / forkserver).
- ``shared`` (``data.cache=shared``): a file in ``/dev/shm`` (RAM; or ``data.cache_dir``), one per node and run.
  Local rank 0 of each node decodes into it; the other ranks of the node wait for it and map it (no decoding, no
  private copy: the pages are counted once per node). The file is removed when the rank that built it exits;
  files left by a killed run are removed by the next build on that node.

Node roles (``NodeRole``): local rank 0 builds; the others pass a barrier after the builder has announced itself,
then poll for its manifest (a collective would time out on a long set-up: NCCL's default is 30 min), failing
at once if the builder's process is gone.
"""

from __future__ import annotations

import atexit
import json
import logging
import multiprocessing.util
import os
import shutil
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sr_lit.data.imresize import clear_weight_cache, make_lr_into
from sr_lit.data.io import ImageError, probe_image, read_image_into
from sr_lit.data.memory import release_freed_heap
from sr_lit.data.sources import ImagePair
from sr_lit.errors import ConfigError, DataError
from sr_lit.utils.files import file_identity, short_digest
from sr_lit.utils.owner import owner_gone, owner_record

log = logging.getLogger(__name__)

__all__ = [
    "Entry",
    "NodeRole",
    "Slab",
    "build_private",
    "build_shared",
    "once_per_node",
    "default_threads",
    "decode_count",
    "shared_dir",
]

_SLAB_VERSION = 1
_PREFIX = "sr_lit-"  # every file once_per_node makes starts with it (stale-file clean-up)
Shape = tuple[int, int, int]


@dataclass
class Entry:
    """One checked image of a store. Where its pixels are depends on the cache mode: ``hr_at``/``lr_at``
    ((offset, (C, H, W)) in the store's slab), ``npy`` (disk: two .npy files), or nowhere (none: decoded on
    access). ``hr_at is None`` with a slab: not stored (smaller than the training patch)."""

    name: str
    hr_path: Path
    lr_hw: tuple[int, int]
    hr_channels: int
    npy: tuple[str, str] | None = None
    lr_path: Path | None = None
    hr_at: tuple[int, Shape] | None = None
    lr_at: tuple[int, Shape] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hr_path": str(self.hr_path),
            "lr_path": None if self.lr_path is None else str(self.lr_path),
            "lr_hw": list(self.lr_hw),
            "hr_channels": self.hr_channels,
            "hr_at": None if self.hr_at is None else [self.hr_at[0], list(self.hr_at[1])],
            "lr_at": None if self.lr_at is None else [self.lr_at[0], list(self.lr_at[1])],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Entry:
        def at(v: list | None) -> tuple[int, Shape] | None:
            return None if v is None else (int(v[0]), tuple(int(x) for x in v[1]))  # type: ignore[return-value]

        return cls(
            d["name"], Path(d["hr_path"]), (int(d["lr_hw"][0]), int(d["lr_hw"][1])), int(d["hr_channels"]),
            lr_path=None if d["lr_path"] is None else Path(d["lr_path"]), hr_at=at(d["hr_at"]), lr_at=at(d["lr_at"]),
        )  # fmt: skip


Result = Entry | tuple[str, str]  # an entry, or (path, reason) of a bad file


def default_threads() -> int:
    """Decode threads: one per core up to 8 (each holds ~80 MB of temporaries while decoding a 2K image)."""
    return max(1, min(8, os.cpu_count() or 1))


# Images decoded in this process (tests and the benchmark check that non-building ranks decode nothing).
_DECODED = [0]


def decode_count() -> int:
    return _DECODED[0]


def _numel(shape: Shape) -> int:
    return shape[0] * shape[1] * shape[2]


# ---------------------------------------------------------------------------------------------------
# 1. lay out from the headers, 2. decode into place


def _probe(pair: ImagePair, scale: int, min_lr_size: int) -> tuple[Shape, Shape, bool] | tuple[str, str]:
    """(HR shape after mod-crop, LR shape, stored?) from the headers, or the fault (ImagePair's checks)."""
    try:
        c, h, w = probe_image(pair.hr_path)
        lh, lw = pair.lr_size(scale, (h, w))
        lc = c
        lr_path = pair.official_lr()
        if lr_path is not None:
            lc, llh, llw = probe_image(lr_path)
            pair.check_lr_size(scale, (h, w), (llh, llw))
    except ImageError as e:
        return (e.path, e.reason)
    return (c, lh * scale, lw * scale), (lc, lh, lw), min(lh, lw) >= min_lr_size


def _layout(
    pairs: Sequence[ImagePair], scale: int, min_lr_size: int, pool: ThreadPoolExecutor
) -> tuple[list[Result], int]:
    """Entries with their places in the slab (images smaller than min_lr_size get none), and its size."""
    out: list[Result] = []
    offset = 0
    for pair, probed in zip(pairs, pool.map(lambda p: _probe(p, scale, min_lr_size), pairs)):
        if isinstance(probed[0], str):
            out.append(probed)  # type: ignore[arg-type]
            continue
        hr_shape, lr_shape, stored = probed  # type: ignore[misc]
        e = Entry(pair.name, Path(pair.hr_path), lr_shape[1:], hr_shape[0], lr_path=pair.lr_path)
        if stored:
            e.hr_at, e.lr_at = (offset, hr_shape), (offset + _numel(hr_shape), lr_shape)
            offset += _numel(hr_shape) + _numel(lr_shape)
        out.append(e)
    return out, offset


def view(slab: torch.Tensor, at: tuple[int, Shape]) -> torch.Tensor:
    offset, shape = at
    return slab[offset : offset + _numel(shape)].view(shape)


def _decode_into(slab: torch.Tensor, e: Entry, scale: int, lr_border: str) -> tuple[str, str] | None:
    """Decode one stored entry into its place; the fault (path, reason) or None."""
    assert e.hr_at is not None and e.lr_at is not None
    hr, lr = view(slab, e.hr_at), view(slab, e.lr_at)
    try:
        read_image_into(e.hr_path, hr)
        if e.lr_path is not None:
            read_image_into(e.lr_path, lr)
        else:
            make_lr_into(hr, lr, scale, lr_border)  # make_lr's result in strips: bounded temporaries
    except ImageError as ex:
        return (ex.path, ex.reason)
    finally:
        # hand this image's freed temporaries back now: left in the thread's arena they pile up image after image
        # (+10 MB per 2K image measured, with the Makefile's MALLOC_TRIM_THRESHOLD_), whatever the final trim does
        release_freed_heap()
    _DECODED[0] += 1
    return None


def _fill(
    slab: torch.Tensor, results: list[Result], scale: int, lr_border: str, pool: ThreadPoolExecutor
) -> list[Result]:
    todo = [(i, r) for i, r in enumerate(results) if isinstance(r, Entry) and r.hr_at is not None]
    faults = pool.map(lambda ir: _decode_into(slab, ir[1], scale, lr_border), todo)
    out = list(results)
    for (i, _), fault in zip(todo, faults):
        if fault is not None:
            out[i] = fault  # its place in the slab stays unused
    return out


def _release_decode_memory() -> None:
    clear_weight_cache()
    release_freed_heap()


# ---------------------------------------------------------------------------------------------------
# Backends


@dataclass
class Slab:
    """The decoded set: per-pair results and the buffer. ``path``: the file it maps (shared), else None."""

    results: list[Result]
    data: torch.Tensor
    path: str | None = None
    decoded: int = 0

    @property
    def nbytes(self) -> int:
        return int(self.data.numel())


def build_private(
    pairs: Sequence[ImagePair], scale: int, lr_border: str, min_lr_size: int, threads: int | None = None
) -> Slab:
    """``data.cache=memory``: one buffer in this process's memory."""
    n0 = decode_count()
    with ThreadPoolExecutor(max_workers=threads or default_threads()) as pool:
        results, size = _layout(pairs, scale, min_lr_size, pool)
        # allocated after the probing, before any decoding: nothing the decoders free can sit above it
        data = torch.empty(size, dtype=torch.uint8)
        results = _fill(data, results, scale, lr_border, pool)
    _release_decode_memory()
    return Slab(results, data, None, decode_count() - n0)


def shared_dir(cache_dir: str | os.PathLike | None) -> Path:
    """Where shared slabs go: ``cache_dir`` when given (must be node-local), else /dev/shm (RAM)."""
    if cache_dir:
        return Path(cache_dir)
    return Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(os.environ.get("TMPDIR", "/tmp"))


def _pair_key(pair: ImagePair) -> tuple:
    def stat(p: Path | None) -> tuple | None:
        if p is None:
            return None
        try:
            return file_identity(p)
        except OSError:
            return (str(p),)

    return (pair.name, stat(Path(pair.hr_path)), stat(None if pair.lr_path is None else Path(pair.lr_path)))


def set_digest(pairs: Sequence[ImagePair], *params: Any) -> str:
    """Names a decoded set: its files (path, mtime, size) and the parameters that change the pixels."""
    return short_digest((_SLAB_VERSION, [_pair_key(p) for p in pairs], params), 16)


def _allocate_file(path: Path, size: int) -> None:
    """Create ``path`` with ``size`` bytes really reserved: a sparse file on a full tmpfs would SIGBUS on write."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if size:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as e:
                raise ConfigError(
                    f"data.cache=shared: cannot reserve {size / 2**30:.2f} GiB in {path.parent} ({e.strerror}); "
                    "enlarge it (docker: --shm-size), set data.cache_dir to a node-local folder with room, or "
                    "use data.cache=disk"
                ) from None
    finally:
        os.close(fd)


def build_shared(
    pairs: Sequence[ImagePair],
    scale: int,
    lr_border: str,
    min_lr_size: int,
    role: NodeRole,
    cache_dir: str | os.PathLike | None = None,
    threads: int | None = None,
) -> Slab:
    """``data.cache=shared``: one file per node, built by the node's local rank 0, mapped by every rank."""
    directory = shared_dir(cache_dir)
    name = f"{_PREFIX}slab-{set_digest(pairs, scale, lr_border, min_lr_size)}-{role.token}-{socket.gethostname()}"
    slab_path = directory / f"{name}.slab"
    n0 = decode_count()

    def build() -> tuple[Slab, dict[str, Any]]:
        with ThreadPoolExecutor(max_workers=threads or default_threads()) as pool:
            results, size = _layout(pairs, scale, min_lr_size, pool)
            free = shutil.disk_usage(directory).free
            if size > free:
                raise ConfigError(
                    f"data.cache=shared needs {size / 2**30:.2f} GiB in {directory}, {free / 2**30:.2f} GiB free: "
                    "enlarge it (docker: --shm-size), set data.cache_dir to a node-local folder with room, or use "
                    "data.cache=disk"
                )
            tmp = slab_path.with_name(f".{slab_path.name}.tmp-{os.getpid()}")
            tmp.unlink(
                missing_ok=True
            )  # ours by name (host + PID): what a killed process of the same PID left
            _allocate_file(tmp, size)
            try:
                data = _map(tmp, size, writable=True)
                results = _fill(data, results, scale, lr_border, pool)
                os.replace(tmp, slab_path)
            finally:
                tmp.unlink(missing_ok=True)
        _release_decode_memory()
        slab = Slab(results, data, str(slab_path), decode_count() - n0)
        manifest = {
            "slab": slab_path.name,
            "size": size,
            "results": [r.to_json() if isinstance(r, Entry) else {"fault": list(r)} for r in results],
        }
        return slab, manifest

    def load(manifest: dict[str, Any]) -> Slab:
        results: list[Result] = [
            (r["fault"][0], r["fault"][1]) if "fault" in r else Entry.from_json(r)
            for r in manifest["results"]
        ]
        data = _map(directory / manifest["slab"], int(manifest["size"]), writable=False)
        return Slab(results, data, str(directory / manifest["slab"]), 0)

    return once_per_node(directory, name, role, build, load, temporary=[slab_path.name])


def _map(path: Path, size: int, writable: bool) -> torch.Tensor:
    """The file as a 1-D uint8 tensor: MAP_SHARED for the builder, copy-on-write (never written) for readers."""
    if size == 0:
        return torch.empty(0, dtype=torch.uint8)
    return torch.from_file(str(path), shared=writable, size=size, dtype=torch.uint8)


def map_slab(path: str, size: int) -> torch.Tensor:
    """Map a shared slab again (a DataLoader worker started by spawn/forkserver)."""
    return _map(Path(path), size, writable=False)


# ---------------------------------------------------------------------------------------------------
# Once per node


@dataclass(frozen=True)
class NodeRole:
    """This process's part in a node-shared build: local rank 0 ``builds``; the other ranks of the node wait
    for it. ``token`` is the same on every rank of one run (it names the run's files); ``barrier`` is the
    job-wide barrier (None: one process). ``single()``: one process, which builds."""

    builds: bool = True
    token: str = "local"
    barrier: Callable[[], None] | None = None
    wait_s: float = 4 * 3600.0

    @classmethod
    def single(cls) -> NodeRole:
        return cls(True, f"p{os.getpid()}", None)


def _remove_stale(directory: Path) -> None:
    """Files of runs on this host whose builder is gone (killed runs never reach their clean-up)."""
    for marker in [*directory.glob(f"{_PREFIX}*.json"), *directory.glob(f"{_PREFIX}*.building")]:
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        owner = info.get("owner", info)
        if owner_gone(owner):
            stem = marker.name.rsplit(".", 1)[0]
            for f in directory.glob(f"{stem}.*"):
                f.unlink(missing_ok=True)
            for f in directory.glob(f".{stem}.*"):
                f.unlink(missing_ok=True)
            log.info("removed the shared decode cache of a finished run: %s", stem)


def _remove_at_exit(paths: list[Path]) -> None:
    """Remove ``paths`` when this process ends (not when a forked DataLoader worker of it does)."""
    pid = os.getpid()

    def remove() -> None:
        if os.getpid() == pid:
            for p in paths:
                p.unlink(missing_ok=True)

    # atexit for the main process, multiprocessing's exit hook for spawned ranks (ddp_spawn)
    atexit.register(remove)
    multiprocessing.util.Finalize(None, remove, exitpriority=10)


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    from sr_lit.utils.files import write_atomic

    write_atomic(path, json.dumps(obj).encode())


def once_per_node(
    directory: Path,
    name: str,
    role: NodeRole,
    build: Callable[[], tuple[Any, dict[str, Any]]],
    load: Callable[[dict[str, Any]], Any],
    temporary: Sequence[str] = (),
) -> Any:
    """Run ``build`` on the node's builder and ``load(manifest)`` on the other ranks once it is done.

    ``build`` returns (value, manifest); the manifest (JSON) is what the other ranks get. An exception in the
    builder reaches the others as a DataError naming it. ``temporary``: files of the run (besides the manifest)
    removed when the builder exits.
    """
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path, marker = directory / f"{name}.json", directory / f"{name}.building"
    if role.builds:
        _remove_stale(directory)
        _write_json(marker, owner_record())
        _remove_at_exit([manifest_path, marker, *(directory / t for t in temporary)])
        if role.barrier is not None:
            role.barrier()  # the marker exists before any other rank looks for it
        try:
            value, manifest = build()
        except BaseException as e:
            _write_json(manifest_path, {"owner": owner_record(), "error": f"{type(e).__name__}: {e}"})
            raise
        _write_json(manifest_path, {"owner": owner_record(), **manifest})
        marker.unlink(missing_ok=True)
        return value
    if role.barrier is not None:
        role.barrier()
    start = time.monotonic()
    while not manifest_path.is_file():
        try:
            owner = json.loads(marker.read_text())
        except (OSError, ValueError):
            owner = None
        if manifest_path.is_file():  # written (then the marker removed) between the two looks
            break
        if owner is None and role.barrier is not None:
            # the builder wrote its marker before the barrier; both gone: it has exited (and cleaned up)
            raise DataError(
                f"the process building the decode cache {directory / name} ended before it was done"
            )
        if owner is not None and owner_gone(owner):
            raise DataError(
                f"the process building the decode cache {directory / name} (pid {owner['pid']}) ended"
            )
        if time.monotonic() - start > role.wait_s:
            raise DataError(
                f"waited {role.wait_s:.0f} s for local rank 0 to build the decode cache {directory / name}"
            )
        time.sleep(0.2)
    manifest = json.loads(manifest_path.read_text())
    if "error" in manifest:
        raise DataError(f"local rank 0 failed to build the decode cache: {manifest['error']}")
    return load(manifest)
