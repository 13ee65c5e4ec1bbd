"""Test-only Lightning callback (added with `+callbacks.shard_probe=...`): each rank writes the training indices
its sampler yields and the rank/world size it was built with, to a folder outside the run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl


class ShardProbe(pl.Callback):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sampler = trainer.train_dataloader.sampler
        record = {
            "global_rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "node_rank": trainer.node_rank,
            "sampler_rank": sampler.rank,
            "sampler_replicas": sampler.num_replicas,
            "dataset_len": len(sampler.dataset),
            # the sampler yields (epoch, index) keys; the same iteration the loader makes this epoch
            "indices": [int(i) for _, i in sampler],
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"shard_rank{trainer.global_rank}_epoch{trainer.current_epoch}.json").write_text(
            json.dumps(record)
        )
