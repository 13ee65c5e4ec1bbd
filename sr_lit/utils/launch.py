"""Externally launched DDP (torchrun, SLURM srun): every rank runs the whole Hydra app, so every rank would also
write Hydra's bookkeeping (``.hydra/``, ``<job>.log``) into the shared run folder. Only global rank 0 writes there.
"""

from __future__ import annotations

import os
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

__all__ = ["RankZeroHydraOutputs", "launch_rank"]


def launch_rank() -> int:
    """This process's global rank as the launcher tells it, before any Trainer exists (0 when not launched).

    torchrun sets RANK, srun SLURM_PROCID; Lightning's own launcher and hand-made multi-node launches set
    NODE_RANK/LOCAL_RANK only, where any non-zero value means "not rank 0".
    """
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return max(int(os.environ.get(k, "0") or 0) for k in ("NODE_RANK", "GROUP_RANK", "LOCAL_RANK"))


class RankZeroHydraOutputs(Callback):
    """On ranks > 0: no ``.hydra/`` config copies and no log file (console logging stays)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if launch_rank() == 0:
            return
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.output_subdir = None
            logging_cfg = config.hydra.job_logging
            handlers = logging_cfg.get("handlers") or {}
            files = [name for name, h in handlers.items() if h is not None and "filename" in h]
            for name in files:
                del handlers[name]
            for node in [logging_cfg.get("root"), *(logging_cfg.get("loggers") or {}).values()]:
                if node is not None and node.get("handlers") is not None:
                    node.handlers = [h for h in node.handlers if h not in files]
