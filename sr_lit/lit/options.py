"""Up-front checks of sr-train's options that no constructor checks before the first batch (or checks with a
traceback): optimizer, schedule, loss guard, EMA, seed, DataLoader workers. Each failure is one ConfigError
naming the key. Torch-free, so `preflight` answers in about a second.

A new option with a range belongs in `check_training_options`, and a bad value of it in the table of
tests/reliability/test_config_faults.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sr_lit.errors import ConfigError
from sr_lit.lit.schedules import check_scheduler
from sr_lit.utils.values import is_int, is_list, is_number

OPTIMIZERS = ("adam", "adamw")
LOSSES = ("l1", "mse", "charbonnier")  # the keys of sr_lit.lit.module.LOSSES (a test keeps them equal)
SEED_RANGE = (0, 2**32 - 1)  # what numpy (and so seed_everything) accepts


def check_optimizer(cfg: Mapping[str, Any] | None, key: str = "module.optimizer") -> None:
    cfg = dict(cfg or {})
    name = cfg.get("name", "adam")
    if name not in OPTIMIZERS:
        raise ConfigError(f"{key}.name={name}: not an optimizer; one of {', '.join(OPTIMIZERS)}")
    lr = cfg.get("lr", 1e-4)
    if not (is_number(lr) and lr > 0):
        raise ConfigError(f"{key}.lr={lr}: must be a number > 0")
    betas = cfg.get("betas", (0.9, 0.999))
    if not (is_list(betas) and len(betas) == 2 and all(is_number(b) and 0 <= b < 1 for b in betas)):
        raise ConfigError(f"{key}.betas={betas}: must be two numbers in [0, 1), e.g. [0.9,0.999]")
    eps = cfg.get("eps", 1e-8)
    if not (is_number(eps) and eps > 0):
        raise ConfigError(f"{key}.eps={eps}: must be a number > 0")
    wd = cfg.get("weight_decay", 0.0)
    if not (is_number(wd) and wd >= 0):
        raise ConfigError(f"{key}.weight_decay={wd}: must be a number >= 0")


def check_guard(cfg: Mapping[str, Any] | None, key: str = "module.guard") -> None:
    cfg = dict(cfg or {})
    factor = cfg.get("explode_factor")
    if factor is not None and not (is_number(factor) and factor > 1):
        raise ConfigError(
            f"{key}.explode_factor={factor}: must be a number > 1, or null (no explosion check)"
        )
    n = cfg.get("max_consecutive", 10)
    if not (is_int(n) and n >= 1):
        raise ConfigError(f"{key}.max_consecutive={n}: must be an integer >= 1")
    total = cfg.get("max_total")
    if total is not None and not (is_int(total) and total >= 1):
        raise ConfigError(f"{key}.max_total={total}: must be an integer >= 1, or null")


def check_seed(seed: Any) -> None:
    lo, hi = SEED_RANGE
    if not (is_int(seed) and lo <= seed <= hi):
        raise ConfigError(f"seed={seed}: must be an integer in [{lo}, {hi}]")


def check_training_options(cfg: Mapping[str, Any]) -> None:
    """Every range check of the training options; raises ConfigError for the first bad value."""
    check_seed(cfg.get("seed"))
    data = cfg.get("data") or {}
    for key in ("num_workers", "val_num_workers"):
        value = data.get(key)
        if value is not None and not (is_int(value) and value >= 0):
            raise ConfigError(f"data.{key}={value}: must be an integer >= 0 (0: load in the main process)")
    module = cfg.get("module") or {}
    loss = module.get("loss", "l1")
    if loss not in LOSSES:
        raise ConfigError(f"module.loss={loss}: not a loss; one of {', '.join(LOSSES)}")
    optimizer = module.get("optimizer") or {}
    check_optimizer(optimizer)
    max_steps = (cfg.get("trainer") or {}).get("max_steps")
    check_scheduler(
        module.get("scheduler"),
        total_steps=max_steps if is_int(max_steps) and max_steps > 0 else None,
        base_lr=optimizer.get("lr", 1e-4),
    )
    check_guard(module.get("guard"))
    ema = (cfg.get("callbacks") or {}).get("ema") or {}
    decay = ema.get("decay") if "_target_" in ema else None
    if decay is not None and not (is_number(decay) and 0 <= decay <= 1):
        raise ConfigError(f"callbacks.ema.decay={decay}: must be a number in [0, 1]")
