"""Process memory: what the kernel says this process holds, and handing freed heap memory back to it.

``status_mb()`` reads ``/proc/self/status`` (Linux; empty elsewhere): ``VmRSS`` (resident now), ``VmHWM`` (peak
resident), ``RssAnon`` (private memory: heap, Python objects, tensors), ``RssFile`` / ``RssShmem`` (pages of
mapped files and of shared memory, which other processes may hold too). A node-shared decode cache shows up in
``RssShmem``/``RssFile`` of every rank that reads it and in no rank's ``RssAnon``.

``release_freed_heap()`` calls glibc's ``malloc_trim(0)``: decode threads leave their freed buffers in per-thread
malloc arenas, which glibc only returns to the kernel from the top of each heap, and never when
``MALLOC_TRIM_THRESHOLD_`` is large (the Makefile sets 4 GB to keep training's big tensors resident);
``malloc_trim`` returns every free page of every arena. A no-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import lru_cache

__all__ = ["status_mb", "release_freed_heap"]

_FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")


def status_mb(pid: int | str = "self") -> dict[str, float]:
    """{VmRSS, VmHWM, RssAnon, RssFile, RssShmem} in MiB for a process (default this one); {} off Linux."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in _FIELDS:
                    out[key] = int(value.split()[0]) / 1024.0  # kB
    except OSError:
        return {}
    return out


@lru_cache(maxsize=1)
def _libc_malloc_trim():
    if os.name != "posix":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl, macOS: no malloc_trim
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_heap() -> bool:
    """Return freed malloc memory of all arenas to the kernel (glibc ``malloc_trim(0)``); False when unavailable."""
    trim = _libc_malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
