"""Run the real `sr-train` console script in a subprocess, tiny and single-threaded (2 shared CPU cores)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# plain EDSR (the default MMCA + dynamic HPF double the step time): for tests about the run, not the model
PLAIN = ("attention=none", "hpf=none")
# tests/conftest.py's quick compose_train run as command-line overrides, plain EDSR
TINY = (
    "backbone=edsr_tiny",
    "logger=none",
    "trainer=cpu",
    "data=sample",
    "data.patch_size=16",
    "data.batch_size=4",
    "data.repeat=1",
    "module.log_images=0",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    *PLAIN,
)
# skip validation and the final evaluation where a test is about something else (saves ~10 s a run)
NO_VAL = ("+trainer.limit_val_batches=0", "final_eval=false")
# a fake W&B key: 40 hex-like characters, as real ones are; no test may ever find it in a file
FAKE_WANDB_KEY = "f4k3" + "0123456789abcdef" * 2 + "c0de"


def sr_train_command() -> list[str]:
    script = Path(sys.executable).parent / "sr-train"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sr_lit.cli.train"]


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)  # the user's view: Hydra's short messages
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        # helpers.py callbacks are imported by Hydra from the repository root
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
    )
    env.update(extra or {})
    return env


def argv(overrides: Sequence[str], run_dir: Path | None, tiny: bool = True) -> list[str]:
    given = {o.split("=", 1)[0] for o in overrides}
    base = [o for o in TINY if o.split("=", 1)[0] not in given] if tiny else []  # Hydra refuses a group twice
    args = [*sr_train_command(), *base, *overrides]
    if run_dir is not None:
        args.append(f"hydra.run.dir={run_dir}")
    return args


def run_sr_train(
    *overrides: str,
    run_dir: Path | None = None,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
    tiny: bool = True,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv(overrides, run_dir, tiny),
        cwd=REPO_ROOT,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_sr_train(
    *overrides: str, run_dir: Path, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a run in the background, stdout+stderr into `log` (a pipe could fill up and block it)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv(overrides, run_dir), cwd=REPO_ROOT, env=cli_env(env), stdout=out, stderr=subprocess.STDOUT
        )


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("sr-train: error:")]
