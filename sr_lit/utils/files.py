"""File helpers: atomic writes with the permissions a plain ``open()`` gives (exports, decode caches), and the file
identity and digest that name decode-cache entries."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path


def file_identity(path: str | os.PathLike) -> tuple[str, int, int]:
    """(resolved path, modification time in ns, size): changes when the file is edited or replaced, the basis of
    the decode caches' keys. OSError when the file cannot be reached."""
    p = Path(path)
    st = p.stat()
    return (str(p.resolve()), st.st_mtime_ns, st.st_size)


def short_digest(key: object, n: int) -> str:
    """The first ``n`` hex digits of SHA-1(repr(key)): a file-name-safe name for a cache entry (not security)."""
    return hashlib.sha1(repr(key).encode()).hexdigest()[:n]


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
