"""Benchmark 1: framework overhead. sr-train's Lightning path vs a plain PyTorch loop, same model/data/Adam.

Lightning arm: SRModule from configs/module (loss guard, optimizer_step override, logging and the step LR
schedule included) + a Trainer from configs/trainer/cpu.yaml with validation, logger, checkpointing, progress
bar and model summary off. Plain arm: zero_grad / forward / L1 / backward / Adam.step. Both iterate the same
DataLoader over one pre-built list of batches (the loader is benchmark 2). Each repetition runs plain then
Lightning (the order flips every repetition); per step the time from one batch start to the next; warm-up
steps of every repetition dropped.

A second, cheap measurement on edsr_tiny with tiny patches makes Lightning's per-step cost (ms) visible: on
edsr_baseline it hides under seconds of convolution, so the ratio there is mostly noise around 1.
"""

from __future__ import annotations

import logging
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


def measure(
    backbone: str = "edsr_baseline",
    batch: int = 16,
    patch: int = 48,
    steps: int = 4,
    warmup: int = 1,
    reps: int = 3,
) -> dict[str, float]:
    """Median seconds/step of both arms and the paired ratio (Lightning steps/s over plain steps/s)."""
    with tempfile.TemporaryDirectory(prefix="sr_bench_fw_") as workdir:
        # Lightning's last fetched batch is never timed (intervals start to start): one batch more for it
        batches = random_batches(warmup + steps + 1, batch, patch, scale=2)
        arm_l, module = lightning_arm(backbone, batches, warmup, workdir)
        plain_model = build(module.hparams.model_spec)
        step = train_step_fn(plain_model, rgb_range=module.loss_scale)

        def arm_p() -> list[float]:
            return timed_loop(step, _loader(batches[: warmup + steps]), warmup)

        samples = interleave({"plain": arm_p, "lightning": arm_l}, reps)
    plain_s, light_s = pooled_median(samples["plain"]), pooled_median(samples["lightning"])
    return {
        "plain_s_per_step": plain_s,
        "lightning_s_per_step": light_s,
        # steps/s ratio = plain time / Lightning time, paired per repetition
        "ratio": paired_ratio(samples["plain"], samples["lightning"]),
        "overhead_ms_per_step": 1e3
        * median(median(b) - median(a) for a, b in zip(samples["plain"], samples["lightning"])),
        "n_steps": float(sum(len(r) for r in samples["plain"])),
    }


def run(quick: bool = False, **_: Any) -> Result:
    if quick:
        main = measure("edsr_tiny", batch=2, patch=16, steps=3, warmup=1, reps=2)
        tiny = main
    else:
        main = measure("edsr_baseline", batch=16, patch=48, steps=2, warmup=1, reps=3)
        tiny = measure("edsr_tiny", batch=4, patch=16, steps=30, warmup=3, reps=3)
    plain_s = main["plain_s_per_step"]
    return {
        "lightning_vs_plain_steps_ratio": main["ratio"],
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
