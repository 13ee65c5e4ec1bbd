"""Our callbacks and the checkpoint writer; everything else comes from Lightning (see configs/callbacks)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities import rank_zero_info


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints to a temporary file in the same folder, fsync, then rename over the target.

    A kill during a save leaves the previous `last.ckpt` intact (rename is atomic on POSIX within one filesystem);
    Lightning's own writer stages through a temp file that may live on another filesystem (/tmp), where the final
    move is a copy.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


class PreemptionCheckpoint(pl.Callback):
    """On SIGTERM (cluster pre-emption) save `last.ckpt` before the process exits, so `ckpt_path=last` resumes.

    Lightning turns SIGTERM into a SIGTERMException at the next batch boundary (a consistent state) and calls
    `on_exception`; only global rank 0 writes, without a barrier (other ranks may already be gone).
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
        if not trainer.is_global_zero or trainer.state.stage != "train":
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
