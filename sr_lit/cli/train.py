"""`sr-train`: the Hydra entry point. `train(cfg)` returns a metric dict; the Hydra main returns the optimised float.

sr-train backbone=rcan attention=mmca hpf=dynamic scale=4 data=div2k trainer=ddp trainer.devices=8
sr-train experiment=quickstart                         # what `make train` runs
sr-train hydra.run.dir=outputs/run1 ckpt_path=last     # resume a run
sr-train -m --config-dir conf_sweeps +sweep=ablation_modules

A run folder belongs to one run (sr_lit/lit/run_dir.py): one that holds another run's checkpoint or metrics.json
is refused unless resumed (ckpt_path=last) or overwrite=true, and a live run's folder (sr-train.lock) always is;
nothing is written into a refused folder, not even error.txt.

Exit codes of a single run: 0 done; 2 a problem the user can fix (config, data, checkpoint, run folder), printed as
one `sr-train: error: ...` line (the traceback goes to <run dir>/error.txt); 1 a training fault (non-finite losses,
one line too) or an unexpected error (traceback); 143 (128 + SIGTERM) pre-empted: `last.ckpt` was saved, resume
with the same `hydra.run.dir` and `ckpt_path=last`. Hydra's own composition errors exit 1 with Hydra's message.
torch and Lightning are imported lazily, so config mistakes are reported in about a second.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import traceback
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sr_lit.errors import (
    EXIT_PREEMPTED,
    EXIT_TRAINING_FAULT,
    EXIT_USER_ERROR,
    exit_code,
    one_line,
)
from sr_lit.lit.loggers import finish_wandb
from sr_lit.lit.pipeline import train
from sr_lit.lit.run_dir import RunFolderError
from sr_lit.utils.config import CONFIG_DIR

log = logging.getLogger("sr_lit.train")


def _rank() -> int:
    """Global rank without importing Lightning (it reads the same environment variables)."""
    rz = sys.modules.get("lightning_fabric.utilities.rank_zero")
    if rz is not None and getattr(rz.rank_zero_only, "rank", None) is not None:
        return int(rz.rank_zero_only.rank)
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


# ----------------------------------------------------------------------------------------------- hydra main
def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def classify_error(e: BaseException) -> tuple[str | None, str]:
    """("user" | "fault" | None, message): how `main` reports an exception of `train` (None: with a traceback)."""
    code = exit_code(e)
    kind = {EXIT_USER_ERROR: "user", EXIT_TRAINING_FAULT: "fault"}.get(code)  # type: ignore[arg-type]
    return kind, one_line(e)


def _is_sigterm(e: BaseException) -> bool:
    # Lightning turns SIGTERM into SIGTERMException (a SystemExit whose code is None, i.e. exit status 0)
    return type(e).__name__ == "SIGTERMException"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except SystemExit as e:
        if not _is_sigterm(e):
            raise
        finish_wandb()
        if _rank() == 0:
            # PreemptionCheckpoint saved last.ckpt unless the signal came during validation (then the periodic
            # one stands); either way this resumes from the newest one
            print(
                f"sr-train: error: terminated by SIGTERM (pre-empted); resume with "
                f"hydra.run.dir={cfg.paths.output_dir} ckpt_path=last",
                file=sys.stderr,
                flush=True,
            )
        sys.exit(EXIT_PREEMPTED)
    except Exception as e:  # noqa: BLE001
        finish_wandb()
        run_dir = Path(cfg.paths.output_dir)
        # never into a folder that is another run's or a live run's (RunFolderError), nor over a file
        if (
            _rank() == 0
            and not isinstance(e, RunFolderError)
            and not (run_dir.exists() and not run_dir.is_dir())
        ):
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.txt").write_text(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
        if _is_multirun():
            # a failed job must not kill the sweep: report it and let sr-report list it as failed
            log.error(f"job failed: {type(e).__name__}: {e} (details in {run_dir / 'error.txt'})")
            return float("nan")
        kind, message = classify_error(e)
        if kind is not None:
            print(f"sr-train: error: {message}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR if kind == "user" else EXIT_TRAINING_FAULT)
        raise
    value = metrics.get(cfg.get("optimized_metric") or "")
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else float("nan")


if __name__ == "__main__":
    main()
