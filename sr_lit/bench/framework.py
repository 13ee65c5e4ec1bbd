"""Benchmark 1: framework overhead. sr-train's Lightning path vs a plain PyTorch loop, same model/data/Adam.

Lightning arm: SRModule from configs/module (loss guard, optimizer_step override, logging and the step LR
schedule included) + a Trainer from configs/trainer/cpu.yaml with validation, logger, checkpointing, progress
bar and model summary off. Plain arm: zero_grad / forward / L1 / backward / Adam.step. Both iterate the same
DataLoader over one pre-built list of batches (the loader is benchmark 2). Each repetition runs plain then
Lightning (the order flips every repetition); per step the time from one batch start to the next; warm-up
steps of every repetition dropped.

The edsr_baseline comparison repeats (a repetition = both arms) until the 95 % confidence interval of the ratio is
within +-1 % of it, or a time cap is reached; the interval is recorded either way (t interval of the mean of the
per-repetition log ratios: the ratio is a product of two noisy times, symmetric on a log scale).

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
    interleave,
    median,
    paired_ratio,
    pooled_median,
    random_batches,
    timed_loop,
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


class StepTimer(pl.Callback):
    """A time stamp at every training batch start."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_batch_start(self, *args: Any) -> None:
        self.stamps.append(time.perf_counter())


def lightning_arm(
    backbone: str, batches: Sequence[Mapping[str, torch.Tensor]], warmup: int, workdir: str
) -> tuple[Any, Any]:
    """(arm, module): arm() fits a fresh Trainer on `batches` and returns per-step seconds after warm-up."""
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

    def arm() -> list[float]:
        timer = StepTimer()
        trainer: pl.Trainer = hydra.utils.instantiate(
            cfg.trainer,
            max_steps=len(batches),
            logger=False,
            callbacks=[timer],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
        )
        trainer.fit(module, train_dataloaders=_loader(batches))
        stamps = timer.stamps
        return [b - a for a, b in zip(stamps, stamps[1:])][warmup:]

    return arm, module


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
    steps: int = 4,
    warmup: int = 1,
    reps: int = 3,
    target_rel: float | None = None,
    max_seconds: float = math.inf,
    max_reps: int = 200,
) -> dict[str, float]:
    """Median seconds/step of both arms and the paired ratio (Lightning steps/s over plain steps/s).

    `reps` repetitions at least; with `target_rel`, more until the ratio's 95 % interval lies within
    +-target_rel of it, `max_seconds` have passed or `max_reps` were run.
    """
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sr_bench_fw_") as workdir:
        # Lightning's last fetched batch is never timed (intervals start to start): one batch more for it
        batches = random_batches(warmup + steps + 1, batch, patch, scale=2)
        arm_l, module = lightning_arm(backbone, batches, warmup, workdir)
        plain_model = build(module.hparams.model_spec)
        step = train_step_fn(plain_model, rgb_range=module.loss_scale)

        def arm_p() -> list[float]:
            return timed_loop(step, _loader(batches[: warmup + steps]), warmup)

        samples: dict[str, list[list[float]]] = {"plain": [], "lightning": []}
        rep = 0
        while True:
            # one repetition = both arms, the order flipping every repetition (as common.interleave)
            one = interleave(
                {"plain": arm_p, "lightning": arm_l}
                if rep % 2 == 0
                else {"lightning": arm_l, "plain": arm_p},
                1,
            )
            for name in samples:
                samples[name] += one[name]
            rep += 1
            ratios = [median(a) / median(b) for a, b in zip(samples["plain"], samples["lightning"])]
            ratio, low, high = ratio_interval(ratios)
            if rep < reps:
                continue
            narrow = target_rel is None or max(high / ratio - 1, 1 - low / ratio) <= target_rel
            if narrow or rep >= max_reps or time.perf_counter() - t_start >= max_seconds:
                break
    plain_s, light_s = pooled_median(samples["plain"]), pooled_median(samples["lightning"])
    return {
        "plain_s_per_step": plain_s,
        "lightning_s_per_step": light_s,
        # steps/s ratio = plain time / Lightning time, paired per repetition
        "ratio": ratio,
        "ratio_median": paired_ratio(samples["plain"], samples["lightning"]),
        "ratio_ci95_low": low,
        "ratio_ci95_high": high,
        "ratio_ci95_halfwidth_rel": max(high / ratio - 1, 1 - low / ratio),
        "reps": float(rep),
        "seconds": time.perf_counter() - t_start,
        "overhead_ms_per_step": 1e3
        * median(median(b) - median(a) for a, b in zip(samples["plain"], samples["lightning"])),
        "n_steps": float(sum(len(r) for r in samples["plain"])),
    }


# the edsr_baseline comparison: until the 95 % interval is within +-1 %, for at most this long
CI_TARGET_REL = 0.01
CI_MAX_SECONDS = 300.0


def run(quick: bool = False, **_: Any) -> Result:
    if quick:
        main = measure("edsr_tiny", batch=2, patch=16, steps=3, warmup=1, reps=2, target_rel=CI_TARGET_REL,
                       max_seconds=0)  # fmt: skip
        tiny = main
    else:
        main = measure("edsr_baseline", batch=16, patch=48, steps=2, warmup=1, reps=3, target_rel=CI_TARGET_REL,
                       max_seconds=CI_MAX_SECONDS)  # fmt: skip
        tiny = measure("edsr_tiny", batch=4, patch=16, steps=30, warmup=3, reps=3)
    plain_s = main["plain_s_per_step"]
    return {
        "lightning_vs_plain_steps_ratio": main["ratio"],
        "lightning_vs_plain_steps_ratio_ci95_low": main["ratio_ci95_low"],
        "lightning_vs_plain_steps_ratio_ci95_high": main["ratio_ci95_high"],
        "lightning_vs_plain_ci95_halfwidth_rel": main["ratio_ci95_halfwidth_rel"],
        "lightning_vs_plain_ci95_within_1pct": bool(main["ratio_ci95_halfwidth_rel"] <= CI_TARGET_REL),
        "lightning_vs_plain_reps": main["reps"],
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
