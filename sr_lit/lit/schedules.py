"""Learning-rate schedules per optimizer step: step/multistep decay (EDSR/RCAN), cosine, all with linear warm-up."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ("step", "multistep", "cosine", "constant")


def lr_factor(step: int, cfg: Mapping[str, Any], total_steps: int | None, base_lr: float) -> float:
    """Multiplier of the base LR after `step` optimizer steps (pure function: tested and plotted directly)."""
    name = cfg.get("name", "step")
    warmup = int(cfg.get("warmup_steps", 0) or 0)
    if warmup and step < warmup:
        return (step + 1) / warmup
    gamma = float(cfg.get("gamma", 0.5))
    if name == "step":
        return gamma ** (step // int(cfg.get("step_size", 200000)))
    if name == "multistep":
        return gamma ** sum(step >= int(m) for m in cfg.get("milestones", []))
    if name == "cosine":
        if not total_steps:
            raise ValueError("module.scheduler.name=cosine needs trainer.max_steps > 0")
        floor = float(cfg.get("min_lr", 0.0)) / base_lr
        t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    if name == "constant":
        return 1.0
    raise ValueError(f"module.scheduler.name={name!r} is not one of {list(SCHEDULES)}")


def build_scheduler(
    opt: Optimizer, cfg: Mapping[str, Any] | None, total_steps: int | None
) -> LambdaLR | None:
    cfg = dict(cfg or {})
    if cfg.get("name", "step") in (None, "none"):
        return None
    base_lr = opt.param_groups[0]["lr"]
    lr_factor(0, cfg, total_steps, base_lr)  # validate the config now, not at step 200k
    return LambdaLR(opt, lambda step: lr_factor(step, cfg, total_steps, base_lr))
