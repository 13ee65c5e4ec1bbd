"""Loggers of a training run: W&B offline unless logged in, one run id per run dir (kept for resume), and the
closing of the W&B run after each job (one W&B run per sweep job, DESIGN P8)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

WANDB_ID_FILE = "wandb_run_id.txt"


def wandb_should_be_offline() -> bool:
    """Offline unless the user is logged in (API key in the environment or ~/.netrc) or chose a mode."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode in ("offline", "dryrun", "disabled")
    if os.environ.get("WANDB_API_KEY"):
        return False
    try:
        import netrc

        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return True


def new_wandb_run_id() -> str:
    """8 characters of [a-z0-9], the form W&B gives its own run ids."""
    import secrets
    import string

    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def instantiate_loggers(cfg: DictConfig, run_dir: Path, identity: dict[str, Any]) -> list[Any]:
    from pytorch_lightning.utilities import rank_zero_only

    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        if node is None or "_target_" not in node:
            continue
        if name == "wandb":
            overrides: dict[str, Any] = {
                "name": node.get("name") or identity["name"],
                "group": node.get("group") or identity["group"],
                "tags": list(node.get("tags") or identity["tags"]),
                "offline": node.get("offline")
                if node.get("offline") is not None
                else wandb_should_be_offline(),
                "config": OmegaConf.to_container(cfg, resolve=True),
            }
            # resume re-attaches the same W&B run: the id lives beside the checkpoints of the run
            id_file = run_dir / WANDB_ID_FILE
            if cfg.get("ckpt_path") and cfg.ckpt_path != "last":
                candidate = Path(cfg.ckpt_path).resolve().parent.parent / WANDB_ID_FILE
                id_file = candidate if candidate.is_file() else id_file
            if node.get("id"):
                overrides["id"] = str(node.id)
            elif id_file.is_file() and id_file.read_text().strip() not in ("", "None"):
                overrides["id"] = id_file.read_text().strip()
                overrides["resume"] = "allow"
            else:
                # chosen here, not by W&B: the run does not exist yet, and the file must hold the real id
                overrides["id"] = new_wandb_run_id()
            # `config` would collide with instantiate()'s own first parameter: pass it to the partial
            run_config = overrides.pop("config")
            logger = hydra.utils.instantiate(node, _partial_=True, **overrides)(config=run_config)
            if rank_zero_only.rank == 0:
                (run_dir / WANDB_ID_FILE).write_text(overrides["id"])
            loggers.append(logger)
        else:
            loggers.append(hydra.utils.instantiate(node))
    return loggers


def finish_wandb() -> None:
    # one W&B run per job: close it before the next job of a sweep starts (DESIGN P8)
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()
