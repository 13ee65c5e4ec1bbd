"""Test-only callbacks injected through the real config (`+callbacks.<name>._target_=tests.reliability.helpers.X`).

The subprocesses that use them need the repository root on PYTHONPATH (see `cli.py`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


class StepProbe(pl.Callback):
    """Records the step training starts from and the current step (files in `folder`); optional sleep per batch
    so a test can send a signal mid-epoch without racing a fast run."""

    def __init__(self, folder: str, sleep: float = 0.0) -> None:
        self.folder = Path(folder)
        self.sleep = float(sleep)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / f"start_step_{os.getpid()}.txt").write_text(str(trainer.global_step))

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.is_global_zero:
            tmp = self.folder / ".step.tmp"
            tmp.write_text(str(trainer.global_step))
            os.replace(tmp, self.folder / "step.txt")  # the test polls it: never let it read half a number
        if self.sleep:
            time.sleep(self.sleep)


class PoisonBatch(pl.Callback):
    """After `after` clean batches, poison `count` batches (None: all the rest) so the loss is NaN, inf or x1e6.

    Works on the batch (the HR target), so the real loss, guard and optimizer_step code paths run unchanged.
    """

    def __init__(
        self, kind: str | float = "nan", after: int = 0, count: int | None = None, factor: float = 1e6
    ) -> None:
        kind = str(kind)  # the override grammar reads `kind=inf` / `kind=nan` as floats
        if kind not in ("nan", "inf", "explode"):
            raise ValueError(f"kind must be nan, inf or explode, got {kind!r}")
        self.kind, self.after, self.count, self.factor = kind, int(after), count, float(factor)
        self.seen = 0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, *args: Any
    ) -> None:
        i, self.seen = self.seen, self.seen + 1
        if i < self.after or (self.count is not None and i >= self.after + self.count):
            return
        hr = batch["hr"]
        if self.kind == "nan":
            hr.fill_(float("nan"))
        elif self.kind == "inf":
            hr.fill_(float("inf"))  # |sr - inf| = inf: an infinite (not NaN) loss
        else:
            hr.mul_(self.factor)


class FailOnRank(pl.Callback):
    """Raise on one rank only at a given step: the other rank is left waiting in a collective."""

    def __init__(self, rank: int = 1, step: int = 1) -> None:
        self.rank, self.step = int(rank), int(step)

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_rank == self.rank and trainer.global_step >= self.step:
            raise RuntimeError(f"injected failure on rank {self.rank} at step {trainer.global_step}")
