"""A run folder belongs to one run: `sr-train` never trains over another run's results, and never shares a folder
with a live run.

- Results of another run (a checkpoint, `metrics.json`) in the folder stop `sr-train` before any work unless it
  resumes that run (`ckpt_path=last`, or a checkpoint inside the folder) or the user said `overwrite=true`
  (the previous run's checkpoints, metrics.json and W&B run id are then deleted first).
- A live run holds `sr-train.lock` (PID, host, start time). A second process on the folder is refused; a lock
  whose process is dead (same host) is taken over with a warning: what a SIGKILLed or crashed run leaves.
- Only the launching process (rank 0) checks and locks. Lightning's DDP launcher re-runs the command for the
  other ranks with the same folder (`trainer=ddp`), torchrun/SLURM start every rank with it: those ranks must
  not be refused by rank 0's lock, and write nothing there anyway.

`RunFolderGuard` runs the same checks as a Hydra callback before Hydra writes `.hydra/` and the log file into the
folder (and before it creates the folder, which fails with a traceback when `hydra.run.dir` is a file).
Torch-free: `preflight` and the Hydra callback import this module before anything heavy.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from sr_lit.errors import EXIT_USER_ERROR, ConfigError
from sr_lit.lit.loggers import WANDB_ID_FILE
from sr_lit.utils.launch import launch_rank
from sr_lit.utils.owner import owner_gone, owner_record

__all__ = [
    "LOCK_FILE",
    "RunFolderError",
    "RunFolderGuard",
    "RunLock",
    "check_run_folder",
    "claim_run_folder",
    "previous_run_files",
]

log = logging.getLogger("sr_lit.train")

LOCK_FILE = "sr-train.lock"
METRICS_FILE = "metrics.json"


class RunFolderError(ConfigError):
    """The run folder holds another run or is in use: nothing is written into it (not even error.txt)."""


# ------------------------------------------------------------------------------------------------- the folder
def _checkpoint_dir(cfg: Mapping[str, Any], run_dir: Path) -> Path:
    node = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    dirpath = node.get("dirpath") if "_target_" in node else None
    return Path(str(dirpath)) if dirpath else run_dir / "checkpoints"


def previous_run_files(run_dir: Path, ckpt_dir: Path | None = None) -> list[Path]:
    """What a run leaves that another run would overwrite: its checkpoints and metrics.json."""
    ckpt_dir = ckpt_dir or run_dir / "checkpoints"
    found = (
        sorted(p for p in ckpt_dir.glob("*.ckpt") if not p.name.startswith(".")) if ckpt_dir.is_dir() else []
    )
    metrics = run_dir / METRICS_FILE
    return found + ([metrics] if metrics.is_file() else [])


def _resumes_this_folder(ckpt_path: Any, run_dir: Path, ckpt_dir: Path) -> bool:
    """ckpt_path=last, or a checkpoint inside the run folder or its checkpoint folder (callbacks'
    ``dirpath``, which may lie outside the run folder)."""
    if ckpt_path is None:
        return False
    if str(ckpt_path) == "last":
        return True
    path = Path(os.path.realpath(str(ckpt_path)))
    return any(path.is_relative_to(os.path.realpath(d)) for d in (run_dir, ckpt_dir))


def _shown(paths: list[Path], run_dir: Path) -> str:
    names = [os.path.relpath(p, run_dir) for p in paths]
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def require_folder(run_dir: str | os.PathLike) -> None:
    """A run folder may be missing (it is created) but not a file."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ConfigError(f"hydra.run.dir={run_dir}: is a file, not a folder; give a folder for the run")


def check_run_folder(cfg: Mapping[str, Any], run_dir: str | os.PathLike | None = None) -> None:
    """Refuse a run folder that is a file, is locked by a live run, or holds another run's results.

    ``run_dir``: the folder (default ``cfg.paths.output_dir``). Ranks > 0 are never refused.
    """
    if launch_rank() != 0:
        return
    run_dir = Path(str(run_dir if run_dir is not None else cfg["paths"]["output_dir"]))
    require_folder(run_dir)
    if not run_dir.is_dir():
        return
    holder = RunLock(run_dir).live_holder()
    if holder is not None:
        raise RunFolderError(_in_use(run_dir, holder))
    _check_previous_run(cfg, run_dir)


def _in_use(run_dir: Path, holder: str) -> str:
    return (
        f"hydra.run.dir={run_dir} is in use by another sr-train ({holder}); wait for it to finish or choose "
        f"another folder (if that process is gone, delete {run_dir / LOCK_FILE})"
    )


def _check_previous_run(cfg: Mapping[str, Any], run_dir: Path) -> None:
    ckpt_dir = _checkpoint_dir(cfg, run_dir)
    if cfg.get("overwrite"):
        _check_overwrite_keeps_inputs(cfg, run_dir, ckpt_dir)
        return
    ckpt_path = cfg.get("ckpt_path")
    if _resumes_this_folder(ckpt_path, run_dir, ckpt_dir):
        return
    previous = previous_run_files(run_dir, ckpt_dir)
    if previous:
        given = f" (ckpt_path={ckpt_path} is not in it)" if ckpt_path is not None else ""
        raise RunFolderError(
            f"hydra.run.dir={run_dir} holds another run ({_shown(previous, run_dir)}){given}: resume it with "
            "ckpt_path=last, train into a new folder (another hydra.run.dir), or replace it with overwrite=true"
        )


def _check_overwrite_keeps_inputs(cfg: Mapping[str, Any], run_dir: Path, ckpt_dir: Path) -> None:
    """overwrite=true deletes the previous run's checkpoints: refuse when this run reads one of them."""
    doomed = {os.path.realpath(p) for p in previous_run_files(run_dir, ckpt_dir)}
    for key in ("ckpt_path", "init_from"):
        value = cfg.get(key)
        if value is None:
            continue
        if key == "ckpt_path" and str(value) == "last":
            raise ConfigError(
                "overwrite=true with ckpt_path=last: overwrite deletes the checkpoints that resuming needs; "
                "drop overwrite=true to resume, or drop ckpt_path to start over"
            )
        if os.path.realpath(str(value)) in doomed:
            raise ConfigError(
                f"{key}={value}: overwrite=true would delete this file before the run reads it; copy it out of "
                f"{run_dir} first, or train into another folder (hydra.run.dir)"
            )


def clear_previous_run(cfg: Mapping[str, Any], run_dir: Path) -> list[Path]:
    """overwrite=true: delete the previous run's checkpoints, metrics.json and W&B run id (a new W&B run)."""
    doomed = previous_run_files(run_dir, _checkpoint_dir(cfg, run_dir))
    wandb_id = run_dir / WANDB_ID_FILE
    doomed += [wandb_id] if wandb_id.is_file() else []
    for p in doomed:
        p.unlink(missing_ok=True)
    if doomed:
        log.warning(f"overwrite=true: deleted the previous run's {_shown(doomed, run_dir)} in {run_dir}")
    return doomed


# ---------------------------------------------------------------------------------------------------- the lock
class RunLock:
    """``<run_dir>/sr-train.lock``: created exclusively, holds the owner's PID, host and start time."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.held = False

    def _read(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # unreadable or half-written: treated as held by an unknown process
        return info if isinstance(info, dict) else {}

    @staticmethod
    def describe(info: Mapping[str, Any]) -> str:
        if not info:
            return "unreadable lock file"
        return f"PID {info.get('pid')} on host {info.get('host')}, since {info.get('since')}"

    @staticmethod
    def _ours(info: Mapping[str, Any]) -> bool:
        """Written by this very process (the Hydra callback took it before the pipeline's checks)."""
        me = owner_record()
        return all(info.get(k) == me[k] for k in ("pid", "host", "proc_start"))

    def live_holder(self) -> str | None:
        """Who else holds the lock, or None when nobody does (no lock, a stale one, or this process's)."""
        info = self._read()
        if info is None or (info and (owner_gone(info) or self._ours(info))):
            return None
        return self.describe(info)

    def acquire(self) -> None:
        """Take the lock; a stale one is taken over with a warning; a live one raises RunFolderError."""
        me = owner_record(since=time.strftime("%Y-%m-%d %H:%M:%S"), argv=sys.argv)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                info = self._read()
                if info is None:
                    continue  # released meanwhile
                if info and self._ours(info):
                    self.held = True  # taken earlier by this process (RunFolderGuard)
                    return
                if not (info and owner_gone(info)):
                    raise RunFolderError(_in_use(self.path.parent, self.describe(info))) from None
                log.warning(
                    f"{self.path}: taking over the lock of a run that is no longer running ({self.describe(info)})"
                )
                self._remove_if_still(info)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me, indent=1) + "\n")
            self.held = True
            return
        raise RunFolderError(f"hydra.run.dir={self.path.parent}: could not take {self.path} (contended)")

    def _remove_if_still(self, stale: Mapping[str, Any]) -> None:
        """Remove the lock only if it is still the stale one: renamed away first (atomic), then compared, so two
        processes taking over the same stale lock cannot delete each other's new one."""
        aside = self.path.with_name(f".{LOCK_FILE}.stale-{os.getpid()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # another process took it over (and removed it) first
        try:
            moved = json.loads(aside.read_text())
        except (OSError, ValueError):
            moved = {}
        if moved != stale:  # a live lock taken meanwhile: put it back (only if no third lock appeared)
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            info = self._read()
            if info and self._ours(info):
                self.path.unlink(missing_ok=True)
            self.held = False


def claim_run_folder(cfg: Mapping[str, Any], run_dir: Path) -> RunLock | None:
    """Rank 0: lock the folder, check it again under the lock, and (overwrite=true) clear the previous run.

    Returns the lock to release when the run ends; None on the other ranks.
    """
    if launch_rank() != 0:
        return None
    require_folder(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir)
    lock.acquire()
    try:
        _check_previous_run(cfg, run_dir)  # a run that finished between preflight and the lock counts too
        if cfg.get("overwrite"):
            clear_previous_run(cfg, run_dir)
    except BaseException:
        lock.release()
        raise
    return lock


# ----------------------------------------------------------------------------------------- the Hydra callback
class RunFolderGuard(Callback):
    """The run-folder checks as a Hydra callback (run mode), before Hydra creates the folder or writes into it.

    A refused folder ends the command here with one ``<prog>: error: ...`` line and exit code 2: Hydra would
    otherwise replace the other run's ``.hydra/`` config and append to its log first (or, for a file, fail with
    a traceback). A folder that passes is locked here, before Hydra writes into it, so that of two commands
    started on one folder at the same moment the second is refused before it writes its ``.hydra/`` over the
    first's; the pipeline's ``claim_run_folder`` then finds the lock is its own. ``runs=False`` (sr-eval): only
    the "is a folder" check; its run folders hold no run to protect.
    """

    def __init__(self, prog: str = "sr-train", runs: bool = True) -> None:
        self.prog = prog
        self.runs = runs

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if launch_rank() != 0:
            return
        run_dir = os.path.abspath(str(OmegaConf.select(config, "hydra.run.dir")))
        try:
            if not self.runs:
                require_folder(run_dir)
                return
            # what Hydra's run_job sets next; the checkpoint folder interpolates ${hydra:runtime.output_dir}
            from hydra.core.hydra_config import HydraConfig

            with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
                config.hydra.runtime.output_dir = run_dir
            HydraConfig.instance().set_config(config)
            check_run_folder(config, run_dir)
            os.makedirs(run_dir, exist_ok=True)  # as Hydra does next
            lock = RunLock(run_dir)
            lock.acquire()
            atexit.register(lock.release)  # if the command ends before the pipeline takes the lock over
        except ConfigError as e:
            print(f"{self.prog}: error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_USER_ERROR) from None
