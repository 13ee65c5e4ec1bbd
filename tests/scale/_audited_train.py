"""Test driver: run `python -m sr_lit.cli.train ARGS` while recording every file this process writes under RUN_DIR.

    python tests/scale/_audited_train.py AUDIT_JSON RUN_DIR [sr-train overrides...]

Python audit hooks see each open() for writing, mkdir, rename/replace and remove, whoever calls them (Hydra,
Lightning, the CSV logger, torch.save), so the test can tell which rank wrote what into the shared run folder.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import sys
from pathlib import Path

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def main() -> None:
    audit_file, run_dir = Path(sys.argv[1]), os.path.realpath(sys.argv[2])
    written: list[str] = []

    def under_run_dir(path: object) -> str | None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str | os.PathLike):
            return None  # a file descriptor
        real = os.path.realpath(os.fspath(path))
        return real if real == run_dir or real.startswith(run_dir + os.sep) else None

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writes = (
                any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
            )
            targets = [path] if writes else []
        elif event in ("os.mkdir", "os.remove", "os.rmdir", "os.truncate"):
            targets = [args[0]]
        elif event in ("os.rename", "shutil.copyfile", "shutil.move"):
            targets = [args[0], args[1]]
        else:
            return
        for target in targets:
            hit = under_run_dir(target)
            if hit is not None:
                written.append(f"{event} {os.path.relpath(hit, run_dir)}")

    def dump() -> None:
        audit_file.write_text(json.dumps(sorted(set(written)), indent=1))

    atexit.register(dump)
    sys.addaudithook(hook)
    sys.argv = ["sr-train", *sys.argv[3:]]
    runpy.run_module("sr_lit.cli.train", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
