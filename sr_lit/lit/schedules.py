"""Learning-rate schedules per optimizer step: step/multistep decay (EDSR/RCAN), cosine, all with linear warm-up.

`check_scheduler` validates the whole `module.scheduler` node up front (sr-train's preflight, before any import of
torch): every key, whatever the warm-up, so a typo never surfaces at the step where the warm-up ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sr_lit.errors import ConfigError
from sr_lit.utils.values import is_int, is_list, is_number

if TYPE_CHECKING:
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ("step", "multistep", "cosine", "constant")
_KEY = "module.scheduler"


def check_scheduler(
    cfg: Mapping[str, Any] | None, total_steps: int | None, base_lr: float | None = None, key: str = _KEY
) -> None:
    """ConfigError naming the first bad key of a scheduler node; ``total_steps``: trainer.max_steps (None/<= 0:
    unbounded); ``base_lr``: the optimizer's lr (the cosine floor must not exceed it)."""
    cfg = dict(cfg or {})
    name = cfg.get("name", "step")
    if name in (None, "none"):
        return
    if name not in SCHEDULES:
        raise ConfigError(f"{key}.name={name}: not a schedule; one of {', '.join(SCHEDULES)} or none")
    warmup = cfg.get("warmup_steps", 0)
    if warmup is not None and not (is_int(warmup) and warmup >= 0):
        raise ConfigError(f"{key}.warmup_steps={warmup}: must be an integer >= 0")
    gamma = cfg.get("gamma", 0.5)
    if not (is_number(gamma) and gamma > 0):
        raise ConfigError(f"{key}.gamma={gamma}: must be a number > 0 (the decay factor)")
    step_size = cfg.get("step_size", 200000)
    if not (is_int(step_size) and step_size >= 1):
        raise ConfigError(f"{key}.step_size={step_size}: must be an integer >= 1 (optimizer steps)")
    milestones = cfg.get("milestones", [])
    if not is_list(milestones) or not all(is_int(m) and m >= 0 for m in milestones):
        raise ConfigError(f"{key}.milestones={milestones}: must be a list of integers >= 0 (optimizer steps)")
    min_lr = cfg.get("min_lr", 0.0)
    if not (is_number(min_lr) and min_lr >= 0):
        raise ConfigError(f"{key}.min_lr={min_lr}: must be a number >= 0")
    if name == "cosine":
        if not total_steps or total_steps <= 0:
            raise ConfigError(f"{key}.name=cosine needs trainer.max_steps > 0 (the length of the cosine)")
        if base_lr is not None and min_lr > base_lr:
            raise ConfigError(f"{key}.min_lr={min_lr}: above the learning rate {base_lr} it is the floor of")


def lr_factor(step: int, cfg: Mapping[str, Any], total_steps: int | None, base_lr: float) -> float:
    """Multiplier of the base LR after `step` optimizer steps (pure function: tested and plotted directly)."""
    name = cfg.get("name", "step")
    if name not in SCHEDULES:  # before the warm-up branch: a bad name never hides behind it
        raise ConfigError(f"{_KEY}.name={name}: not a schedule; one of {', '.join(SCHEDULES)} or none")
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
            raise ConfigError(f"{_KEY}.name=cosine needs trainer.max_steps > 0")
        floor = float(cfg.get("min_lr", 0.0)) / base_lr
        t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    return 1.0  # constant


def build_scheduler(
    opt: Optimizer, cfg: Mapping[str, Any] | None, total_steps: int | None
) -> LambdaLR | None:
    from torch.optim.lr_scheduler import LambdaLR

    cfg = dict(cfg or {})
    if cfg.get("name", "step") in (None, "none"):
        return None
    base_lr = opt.param_groups[0]["lr"]
    check_scheduler(cfg, total_steps, base_lr)  # now, not at step 200k
    return LambdaLR(opt, lambda step: lr_factor(step, cfg, total_steps, base_lr))
