"""Atomic file writes with the permissions a plain ``open()`` gives (shared by exports and the decode cache)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``path`` through a temp file + rename (no reader sees half a file) with the mode ``open()`` gives.

    ``tempfile.mkstemp`` (and safetensors' ``save_file``) leave 0600 files, unreadable to other users sharing a
    cache or an export folder; here a new file gets 0666 minus the umask, an existing one keeps its mode, and a
    symlink is written through, as ``open(path, "wb")`` does. The temp name is unique per process and thread.
    """
    target = Path(os.path.realpath(path))
    try:
        mode: int | None = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
