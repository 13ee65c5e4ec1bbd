"""The RCAN/EDSR "skip batch" guard: skip steps whose loss is non-finite or explodes, stop after too many."""

from __future__ import annotations

import math
from typing import Any

import torch


class LossGuard:
    """Tracks a running mean of accepted losses; a loss is bad when non-finite or > explode_factor x mean."""

    def __init__(
        self,
        explode_factor: float | None = 1e4,
        max_consecutive: int = 10,
        max_total: int | None = 100,
        momentum: float = 0.99,
        warmup: int = 20,
    ) -> None:
        self.explode_factor = explode_factor
        self.max_consecutive = int(max_consecutive)
        self.max_total = max_total
        self.momentum = momentum
        self.warmup = warmup
        self.running_mean: float | None = None
        self.n_ok = 0
        self.consecutive = 0
        self.total_skipped = 0
        self.skipped_steps: list[int] = []
        self._pending: float | None = None

    def is_bad(self, loss: torch.Tensor) -> bool:
        value = float(loss)
        self._pending = value
        if not math.isfinite(value):
            return True
        return (
            self.explode_factor is not None
            and self.running_mean is not None
            and self.n_ok >= self.warmup
            and value > self.explode_factor * self.running_mean
        )

    def record_ok(self) -> None:
        value = self._pending
        self.consecutive = 0
        if value is None or not math.isfinite(value):
            return
        self.n_ok += 1
        m = self.running_mean
        self.running_mean = value if m is None else self.momentum * m + (1 - self.momentum) * value

    def record_skip(self, step: int) -> None:
        self.consecutive += 1
        self.total_skipped += 1
        self.skipped_steps = (self.skipped_steps + [int(step)])[-1000:]

    def should_stop(self) -> bool:
        return self.consecutive >= self.max_consecutive or (
            self.max_total is not None and self.total_skipped >= self.max_total
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "running_mean": self.running_mean,
            "n_ok": self.n_ok,
            "consecutive": self.consecutive,
            "total_skipped": self.total_skipped,
            "skipped_steps": list(self.skipped_steps),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
