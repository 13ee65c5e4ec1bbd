"""Test-only callback injected through the real config (`+callbacks.rec._target_=tests.data.helpers.RecordRankData`):
each rank writes what its data set-up did and the patches of its first batches to `<folder>/rank<r>.json`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch


def digest(t: torch.Tensor) -> str:
    return hashlib.sha1(t.contiguous().numpy().tobytes()).hexdigest()


class RecordRankData(pl.Callback):
    def __init__(self, folder: str, batches: int = 2) -> None:
        self.folder, self.batches = Path(folder), int(batches)
        self.record: dict[str, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from sr_lit.data.slab import decode_count

        dm = trainer.datamodule
        store = dm.train_set.store
        sampler = trainer.train_dataloader.sampler
        self.record = {
            "rank": trainer.global_rank,
            "local_rank": trainer.local_rank,
            "report": dm.setup_report,
            "decode_count": decode_count(),
            "slab_path": store.slab_path,
            "keys": [list(k) for k in list(iter(sampler))[: self.batches * dm.batch_size]],
            "batches": [],
        }

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx < self.batches:
            self.record["batches"].append([digest(batch["lr"]), digest(batch["hr"])])
        if batch_idx == self.batches - 1:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.record))
