"""Who owns a file left by a process (a run folder's lock, a node-shared decode cache), and whether that owner is
provably gone.

A PID alone does not say it: containers started with ``--network=host --ipc=host`` share the host name and
``/dev/shm`` but each has its own PID namespace (a live PID of one is "no such process" in the other), and a
restarted pod can reuse the dead run's PID (often 1). So the record holds the host name, the kernel's boot id,
the PID namespace, the PID and that process's start time, and an owner counts as gone only when all of these say
so: same host, same boot, same PID namespace, and that PID no longer runs the process that wrote the record. A
record written before this machine last booted is gone too. Anything else (another host, another container, an
unreadable record) counts as alive: the caller then refuses rather than deletes.

Linux only for the finer checks (``/proc``); elsewhere a record is judged by host and PID alone.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["owner_gone", "owner_record"]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


@cache
def _boot_id() -> str | None:
    text = _read("/proc/sys/kernel/random/boot_id")
    return text.strip() if text else None


@cache
def _boot_time() -> float | None:
    """Seconds since the epoch at which this machine booted (``btime`` in /proc/stat)."""
    for line in (_read("/proc/stat") or "").splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return None


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); None if unknown."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # the command name (in parentheses) may hold spaces


def owner_record(**extra: Any) -> dict[str, Any]:
    """This process as an owner record (JSON-serialisable); ``extra`` is stored beside it."""
    pid = os.getpid()
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "boot_id": _boot_id(),
        "pid_ns": _pid_namespace(),
        "proc_start": process_start(pid),
        "written": time.time(),
        **extra,
    }


def _pid_runs(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        pass
    except (OSError, OverflowError):
        return True
    now = process_start(pid)  # a different start time: the PID now belongs to another process
    return start is None or now is None or now == start


def owner_gone(owner: Mapping[str, Any]) -> bool:
    """True only when the owner is provably no longer running (see the module doc); False when unsure."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or owner.get("host") != socket.gethostname():
        return False
    boot, written, boot_time = owner.get("boot_id"), owner.get("written"), _boot_time()
    if boot is not None and _boot_id() is not None and boot != _boot_id():
        # another boot: gone if written before this boot; otherwise another machine with the same host name
        return isinstance(written, (int, float)) and boot_time is not None and written < boot_time
    ns = owner.get("pid_ns")
    if ns is not None and _pid_namespace() is not None and ns != _pid_namespace():
        return False  # another container sharing this host name: its PIDs are not visible from here
    return not _pid_runs(pid, owner.get("proc_start"))
