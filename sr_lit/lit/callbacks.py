"""Our callbacks and the checkpoint writer; everything else comes from Lightning (see configs/callbacks)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EMAWeightAveraging, ModelCheckpoint, RichProgressBar
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints to a temporary file in the same folder, fsync, then rename over the target.

    A kill during a save leaves the previous `last.ckpt` intact (rename is atomic on POSIX within one filesystem);
    Lightning's own writer stages through a temp file that may live on another filesystem (/tmp), where the final
    move is a copy. The temp name (`.last.ckpt.tmp-<pid>`) never matches Lightning's `last*.ckpt` search, so
    `ckpt_path=last` cannot pick up a half-written file; ones left by killed processes are removed on the next save.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(path)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)  # make the rename itself survive a power loss
        finally:
            if tmp.exists():
                tmp.unlink()


# A temp file untouched this long is a dead writer's: one in progress writes into it continuously and renames it
# as soon as it is complete. Age, not the PID in its name: on a shared filesystem (several nodes, or containers
# with their own PID namespaces) a PID says nothing about a process of another machine.
STALE_TEMP_S = 600.0


def _remove_stale_temps(path: Path) -> None:
    """Delete `.<name>.tmp-<pid>` files left by a save that was killed (SIGKILL/OOM): those untouched for
    STALE_TEMP_S. They are never read (not `*.ckpt`), only cost disk until then."""
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            if now - tmp.stat().st_mtime > STALE_TEMP_S:
                tmp.unlink(missing_ok=True)
        except OSError:
            pass  # gone meanwhile, or not ours to remove


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not supported (e.g. some network filesystems): the data itself was fsynced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class SRModelCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose `every_n_train_steps` writes `last.ckpt` even before the monitored metric exists.

    Lightning 2.6 defers a step-triggered save (top-k and last alike) to the next validation while the monitored
    metric (val/psnr_y) has never been logged, so a crash before the first validation (an epoch of DIV2K, or
    never with validation off) leaves nothing to resume from. Here `last.ckpt` is written at once; the top-k save
    still waits for the metric, as it must.
    """

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        n = self._every_n_train_steps
        if (
            not self.save_last
            or n < 1
            or trainer.global_step % n != 0
            or self.monitor is None
            or self.monitor in self._monitor_candidates(trainer)
            or self._should_skip_saving_checkpoint(trainer)
            or not self.dirpath
        ):
            return
        # Saved around ModelCheckpoint's bookkeeping (_last_global_step_saved): marking this step as saved
        # would make it skip the deferred best-checkpoint save of a validation at the same step.
        trainer.save_checkpoint(Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning 2.6 writes last.ckpt here only when the fit saved no checkpoint at all: a fit whose max_steps
        # falls between two validations left last.ckpt at the last validation's step, and sr-train's final
        # evaluation, sr-eval and a resume all read those older weights.
        if (
            self.save_last
            and self._last_checkpoint_saved
            and not self._should_skip_saving_checkpoint(trainer)
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            return
        super().on_train_end(trainer, pl_module)


class SRProgressBar(RichProgressBar):
    """Rich progress bar whose epoch label reads right in step-bound runs.

    SR schedules are counted in steps (`max_steps`, `max_epochs: -1`), where Lightning 2.6's label says
    `Epoch 5/-2` (fixed upstream in 2.7, PR #21924). Here: `Epoch 5 · step 1200/1500`.
    """

    def _get_train_description(self, current_epoch: int) -> str:
        trainer = self.trainer
        text = f"Epoch {current_epoch}"
        if trainer.max_epochs is not None and trainer.max_epochs >= 0:
            text += f"/{trainer.max_epochs - 1}"
        if trainer.max_steps is not None and trainer.max_steps > 0:
            text += f" · step {trainer.global_step}/{trainer.max_steps}"
        return f"{text:{len(self.validation_description)}}"


class EMAUpdate:
    """ema <- d * ema + (1 - d) * current, d = min(decay, (1 + n) / (10 + n)) with warm-up (n = updates so far).

    Without the warm-up (Lightning's `get_ema_avg_fn`) the average starts as a copy of the first step's weights
    and at 0.999 still holds 37 % of them after 1000 steps: a short run would validate, pick its best checkpoint
    and score near-initial weights. The warm-up (timm/BasicSR-style) lets d grow from 0.18 towards `decay`.
    A module-level class, unlike Lightning's closure, so `ddp_spawn` can pickle the callback.
    """

    def __init__(self, decay: float, warmup: bool = True) -> None:
        self.decay, self.warmup = float(decay), bool(warmup)

    def __call__(self, ema: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        if self.warmup:  # tensor arithmetic: no device sync per parameter
            d = ((1 + num_averaged) / (10 + num_averaged)).clamp(max=self.decay).to(ema.dtype)
        else:
            d = self.decay
        return d * ema + (1 - d) * current


class SpawnSafeEMA(EMAWeightAveraging):
    """Lightning's EMAWeightAveraging with a decay warm-up (`EMAUpdate`; `warmup: false` for the plain EMA),
    picklable for `ddp_spawn` (trainer=ddp_cpu), and with the trained weights in the checkpoints written once the
    fit has ended (see on_train_end)."""

    def __init__(self, decay: float = 0.999, warmup: bool = True, **kwargs: Any) -> None:
        super().__init__(decay=decay, **kwargs)
        self.decay, self.warmup = decay, warmup
        self._kwargs["avg_fn"] = EMAUpdate(decay, warmup)
        self._trained_state: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._trained_state = None
        super().on_fit_start(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning copies the average into the model here, and ModelCheckpoint's on_train_end, which runs after
        # every other callback, then writes last.ckpt: its current_model_state would hold the EMA weights, and a
        # run resumed from it (a longer max_steps) would go on training from them (DESIGN P9). Keep the trained
        # weights for the checkpoints written from now on.
        self._trained_state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        super().on_train_end(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        if self._trained_state is not None and "current_model_state" in checkpoint:
            checkpoint["current_model_state"] = self._trained_state

    @property
    def state_key(self) -> str:
        return "EMAWeightAveraging"  # the key checkpoints written with Lightning's class carry


class PreemptionCheckpoint(pl.Callback):
    """On SIGTERM (cluster pre-emption) save `last.ckpt` before the process exits, so `ckpt_path=last` resumes.

    Lightning turns SIGTERM into a SIGTERMException at the next batch boundary (a consistent state) and calls
    `on_exception`; only global rank 0 writes, without a barrier (other ranks may already be gone). A SIGTERM
    during in-fit validation is not saved here: EMA weights are swapped in and the loops are mid-validation, so
    the last periodic checkpoint stands. `sr-train` then exits with code 143 (see sr_lit/cli/train.py).
    """

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        from pytorch_lightning.utilities.exceptions import SIGTERMException

        if (
            not isinstance(exception, SIGTERMException | KeyboardInterrupt)
            or trainer.checkpoint_callback is None
        ):
            return
        if not trainer.is_global_zero:
            return
        if trainer.state.stage != "train":
            rank_zero_warn(
                f"{type(exception).__name__} during {trainer.state.stage}: no checkpoint written; "
                "ckpt_path=last resumes from the last periodic checkpoint"
            )
            return
        dirpath = getattr(trainer.checkpoint_callback, "dirpath", None)
        if not dirpath:
            return
        path = Path(dirpath) / "last.ckpt"
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, path)
        rank_zero_info(
            f"{type(exception).__name__}: saved {path} at step {trainer.global_step}; resume with ckpt_path=last"
        )
