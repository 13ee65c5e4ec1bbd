"""Benchmark 1: framework overhead. sr-train's Lightning path vs a plain PyTorch loop, same model/data/Adam.

Lightning arm: SRModule from configs/module (loss guard, optimizer_step override, logging and the step LR
schedule included) + a Trainer from configs/trainer/cpu.yaml with validation, logger, checkpointing, progress
bar and model summary off. Plain arm: fetch a batch from a DataLoader over the same pre-built batches, zero_grad /
forward / L1 / backward / Adam.step on a second copy of the model.

The arms alternate step by step in one process: a Lightning callback runs one plain step (timed on its own) at the
end of every Lightning step, so the sequence is L P L P ...; Lightning's step = the time from one batch start to
the next minus that callback (the plain step and the stopping check). Each pair (L_i, P_i) is measured within a few seconds, so load that
drifts over minutes cancels in its ratio, and the pairs accumulate until the 95 % interval of the ratio lies within
+-1 % of it, or a time cap is reached (t interval of the mean of the per-pair log ratios: the ratio of two noisy
times is symmetric on a log scale). The first steps of each arm (allocator, Adam state, oneDNN caches) are dropped.
(Until 2026-12-02 a repetition was a fresh Trainer fit of 2 steps against 2 plain steps, ~12 s apart on
average: a repetition's ratio then varied by ~12 % on this VM and +-1 % was out of reach of the cap.)

A second, cheap measurement on edsr_tiny with tiny patches makes Lightning's per-step cost (ms) visible: on
edsr_baseline it hides under seconds of convolution, so the ratio there is mostly noise around 1.
"""

from __future__ import annotations

import logging
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from sr_lit.bench.common import (
    Result,
    build,
    compose_train,
    median,
    random_batches,
    train_step_fn,
)


def _quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


def _loader(batches: Sequence[Mapping[str, torch.Tensor]]) -> DataLoader:
    # batch_size=None: the list items are already batches; both arms fetch through the same DataLoader code
    return DataLoader(list(batches), batch_size=None, shuffle=False)


class PairedPlainSteps(pl.Callback):
    """After every Lightning step, one timed plain step (fetch + step); stops the fit once the pairs suffice.

    ``stamps``: Lightning batch starts; ``plain``: the plain steps' durations, one per Lightning step; ``hook``: the
    time this hook took each time (subtracted from Lightning's interval).
    """

    def __init__(
        self,
        step: Any,
        loader: DataLoader,
        warmup: int,
        min_pairs: int,
        target_rel: float | None,
        max_seconds: float,
    ) -> None:
        self.step, self.batches = step, iter(loader)
        self.warmup, self.min_pairs = warmup, min_pairs
        self.target_rel, self.max_seconds = target_rel, max_seconds
        self.stamps: list[float] = []
        self.plain: list[float] = []  # the plain steps (fetch + step)
        self.hook: list[float] = []  # the whole hook that ran each of them
        self.t_start = time.perf_counter()

    def on_train_batch_start(self, *args: Any) -> None:
        self.stamps.append(time.perf_counter())

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        t0 = time.perf_counter()
        self.step(next(self.batches))
        self.plain.append(time.perf_counter() - t0)
        pairs = self.pairs()
        if len(pairs[0]) >= self.min_pairs:
            ratio, low, high = ratio_interval([p / q for p, q in zip(*pairs)])
            narrow = self.target_rel is None or max(high / ratio - 1, 1 - low / ratio) <= self.target_rel
            if narrow or time.perf_counter() - self.t_start >= self.max_seconds:
                trainer.should_stop = True
        # all of this hook is outside Lightning's step: the plain step and the bookkeeping above
        self.hook.append(time.perf_counter() - t0)

    def pairs(self) -> tuple[list[float], list[float]]:
        """(plain seconds, Lightning seconds) per complete pair after the warm-up."""
        # Lightning step i: from its batch start to the next one, minus this hook (the plain step and the checks)
        light = [b - a - h for a, b, h in zip(self.stamps, self.stamps[1:], self.hook)]
        return self.plain[self.warmup : len(light)], light[self.warmup :]


def _lightning(backbone: str, workdir: str) -> tuple[Any, Any]:
    """(SRModule, trainer config) as sr-train builds them for `backbone` (no attention, no HPF)."""
    import hydra.utils

    from sr_lit.models.registry import model_spec_from_config

    _quiet_lightning()
    cfg = compose_train(
        [
            f"backbone={backbone}",
            "attention=none",
            "hpf=none",
            "trainer=cpu",
            "logger=none",
            "callbacks=none",
        ],
        workdir,
    )
    module = hydra.utils.instantiate(cfg.module, model_spec=model_spec_from_config(cfg), _recursive_=False)
    return module, cfg.trainer


# two-sided 95 % quantiles of Student's t for 1..9 degrees of freedom; from 10 on, the Cornish-Fisher expansion
# below (error < 0.2 %)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262)


def t975(dof: int) -> float:
    if dof < 1:
        return math.inf
    if dof <= len(_T975):
        return _T975[dof - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def ratio_interval(ratios: list[float]) -> tuple[float, float, float]:
    """(geometric mean, low, high) of per-repetition ratios: a 95 % t interval on the log scale."""
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), 0.0, math.inf
    half = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def measure(
    backbone: str = "edsr_baseline",
    batch: int = 16,
    patch: int = 48,
    warmup: int = 2,
    min_pairs: int = 10,
    target_rel: float | None = None,
    max_seconds: float = math.inf,
    max_pairs: int = 2000,
) -> dict[str, float]:
    """Seconds/step of both arms (medians) and their ratio (Lightning steps/s over plain steps/s), from alternating
    steps (PairedPlainSteps): `min_pairs` pairs after `warmup` at least; with `target_rel`, more until the ratio's
    95 % interval lies within +-target_rel of it, `max_seconds` have passed or `max_pairs` were run."""
    import hydra.utils

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sr_bench_fw_") as workdir:
        module, trainer_cfg = _lightning(backbone, workdir)
        batches = random_batches(4, batch, patch, scale=2)
        n = warmup + max_pairs + 1  # Lightning's last fetched batch closes the last pair
        cycled = [batches[i % len(batches)] for i in range(n)]
        plain_model = build(module.hparams.model_spec)
        pairs = PairedPlainSteps(
            train_step_fn(plain_model, rgb_range=module.loss_scale),
            _loader(cycled),
            warmup,
            min_pairs,
            target_rel,
            max_seconds,
        )
        trainer: pl.Trainer = hydra.utils.instantiate(
            trainer_cfg,
            max_steps=n,
            logger=False,
            callbacks=[pairs],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
        )
        trainer.fit(module, train_dataloaders=_loader(cycled))
    plain, light = pairs.pairs()
    ratios = [p / q for p, q in zip(plain, light)]  # steps/s ratio = plain time / Lightning time
    ratio, low, high = ratio_interval(ratios)
    # spread of one pair's log ratio: (1.96 x this / 0.01)^2 pairs give +-1 %
    log_sd = statistics.stdev(math.log(r) for r in ratios) if len(ratios) > 1 else 0.0
    return {
        "plain_s_per_step": median(plain),
        "lightning_s_per_step": median(light),
        "ratio": ratio,  # geometric mean of the per-pair ratios, with its t interval
        "ratio_median": median(ratios),
        "ratio_ci95_low": low,
        "ratio_ci95_high": high,
        "ratio_ci95_halfwidth_rel": max(high / ratio - 1, 1 - low / ratio),
        "pair_log_ratio_sd": log_sd,
        "reps": float(len(plain)),
        "seconds": time.perf_counter() - t_start,
        "overhead_ms_per_step": 1e3 * median(q - p for p, q in zip(plain, light)),
        "n_steps": float(len(plain)),
    }


# the edsr_baseline comparison: until the 95 % interval is within +-1 %, for at most this long
CI_TARGET_REL = 0.01
CI_MAX_SECONDS = 300.0


def run(quick: bool = False, framework_seconds: float | None = None, **_: Any) -> Result:
    if quick:
        main = measure("edsr_tiny", batch=2, patch=16, warmup=1, min_pairs=6, target_rel=CI_TARGET_REL,
                       max_seconds=0)  # fmt: skip
        tiny = main
    else:
        main = measure("edsr_baseline", batch=16, patch=48, warmup=2, min_pairs=10, target_rel=CI_TARGET_REL,
                       max_seconds=CI_MAX_SECONDS if framework_seconds is None else framework_seconds)  # fmt: skip
        tiny = measure("edsr_tiny", batch=4, patch=16, warmup=5, min_pairs=100)
    plain_s = main["plain_s_per_step"]
    return {
        "lightning_vs_plain_steps_ratio": main["ratio"],
        "lightning_vs_plain_steps_ratio_ci95_low": main["ratio_ci95_low"],
        "lightning_vs_plain_steps_ratio_ci95_high": main["ratio_ci95_high"],
        "lightning_vs_plain_ci95_halfwidth_rel": main["ratio_ci95_halfwidth_rel"],
        "lightning_vs_plain_ci95_within_1pct": bool(main["ratio_ci95_halfwidth_rel"] <= CI_TARGET_REL),
        "lightning_vs_plain_reps": main["reps"],  # pairs of steps
        "lightning_vs_plain_pair_log_ratio_sd": main["pair_log_ratio_sd"],
        "lightning_vs_plain_seconds": main["seconds"],
        "lightning_vs_plain_steps_ratio_median": main["ratio_median"],
        # what Lightning's per-step cost (measured where it is visible) makes of the edsr_baseline step
        "lightning_vs_plain_steps_ratio_implied": plain_s / (plain_s + 1e-3 * tiny["overhead_ms_per_step"]),
        "framework_plain_s_per_step_edsr_baseline_b16_p48": main["plain_s_per_step"],
        "framework_lightning_s_per_step_edsr_baseline_b16_p48": main["lightning_s_per_step"],
        "framework_model_patches_per_s_edsr_baseline": (2 if quick else 16) / main["plain_s_per_step"],
        "framework_timed_steps_per_arm": main["n_steps"],
        "lightning_overhead_ms_per_step_edsr_tiny_b4_p16": tiny["overhead_ms_per_step"],
        "lightning_vs_plain_steps_ratio_edsr_tiny_b4_p16": tiny["ratio"],
        "framework_plain_ms_per_step_edsr_tiny_b4_p16": 1e3 * tiny["plain_s_per_step"],
    }
