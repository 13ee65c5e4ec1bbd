"""Hydra callbacks used by the sweep files in conf_sweeps/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class EnsureSweepDir(Callback):
    """Create hydra.sweep.dir before the sweeper starts: the Optuna sweeper opens its sqlite storage
    (sqlite:///<sweep dir>/optuna.db) before the launcher has made the folder, and sqlite does not make folders."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)


class OptunaNanAsFail(Callback):
    """Make a NaN objective (a failed sr-train job returns NaN) a FAIL trial instead of a crashed sweep.

    hydra-optuna-sweeper 1.3.0 tells Optuna a NaN value; optuna 2.x refuses it with ValueError, and the sweeper's
    fallback `tell(state=FAIL, values=[nan])` raises again, which ends the whole study (DESIGN P7). The patch
    turns a tell with any NaN value into `tell(state=FAIL)` without values, in this (the sweep's) process only.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        import math
        import warnings

        import optuna

        original = optuna.study.Study.tell
        if getattr(original, "_nan_as_fail", False):
            return

        def tell(study: Any, trial: Any, values: Any = None, state: Any = None, **kw: Any) -> Any:
            seq = values if isinstance(values, list | tuple) else [values]
            if values is not None and any(isinstance(v, float) and math.isnan(v) for v in seq):
                warnings.warn("objective is NaN (the job failed): trial recorded as FAIL", stacklevel=2)
                return original(study, trial, state=optuna.trial.TrialState.FAIL, **kw)
            if values is not None and state == optuna.trial.TrialState.FAIL:
                values = None  # the sweeper's own fallback passes the rejected values again
            return original(study, trial, values=values, state=state, **kw)

        tell._nan_as_fail = True  # type: ignore[attr-defined]
        optuna.study.Study.tell = tell  # type: ignore[method-assign]
