"""Precision/layout arms of a training step, shared by the CPU `precision` benchmark and `make gpu-check`.

One definition of the arms (fp32, fp32_cl, bf16, bf16_cl, bf16_cl_compile: bf16 = `torch.autocast` as Lightning's
`bf16-mixed` runs it, cl = channels_last, compile = torch.compile), of the models they run on and of the reference
they are compared with, so that the CPU table (bench/README.md) and the GPU table (bench/GPU.md) line up key for key.

Reference: a 64-channel 3x3 convolution's training step (forward + both backward convolutions) at the model's batch
and patch size, in the same precision and layout, timed as one more arm interleaved with the model's: the rate a
convolutional SR network could reach if it were nothing but such convolutions.
`train_flop_rate_vs_conv_<model>` = the model's training FLOP rate / that rate; training FLOPs = 3 x the forward
FLOPs of `sr_lit.models.summary.model_cost` (the backward computes two convolutions per forward one).

Imports torch, sr_lit.bench.common and sr_lit.models only (the GPU machine has no Hydra/OmegaConf/W&B/kornia).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from sr_lit.bench.common import random_batches

ARM_FLAGS: dict[str, tuple[bool, bool, bool]] = {  # name -> (bf16 autocast, channels_last, torch.compile)
    "fp32": (False, False, False),
    "fp32_cl": (False, True, False),
    "bf16": (True, False, False),
    "bf16_cl": (True, True, False),
    "bf16_cl_compile": (True, True, True),
}
PRECISION_ARMS = ("fp32", "fp32_cl", "bf16", "bf16_cl")  # the CPU benchmark's arms (compile: GPU only)
CONV_CHANNELS = 64


@dataclass(frozen=True)
class BenchModel:
    """A model of the precision table: config names + backbone overrides, and its batch."""

    backbone: str
    attention: str = "none"
    hpf: str = "none"
    overrides: tuple[tuple[str, Any], ...] = ()
    batch: int = 16
    patch: int = 48

    def spec(self) -> dict[str, Any]:
        from sr_lit.bench.common import spec_for

        return spec_for(self.backbone, self.attention, self.hpf, **dict(self.overrides))


# the four: the paper's CPU-sized EDSR, with the units, RCAN cut to 2 groups x 4 RCABs (same width and CA),
# and the `make train` model at its batch and patch (configs/experiment/quickstart.yaml)
PRECISION_MODELS: dict[str, BenchModel] = {
    "edsr_baseline": BenchModel("edsr_baseline"),
    "edsr_baseline_mmca_hpf": BenchModel("edsr_baseline", "mmca", "dynamic"),
    "rcan_g2b4": BenchModel("rcan", "ca", overrides=(("n_resgroups", 2), ("n_resblocks", 4))),
    "edsr_tiny_mmca_hpf": BenchModel("edsr_tiny", "mmca", "dynamic", batch=16, patch=32),
}


def small_models() -> dict[str, BenchModel]:
    """PRECISION_MODELS by the same names at minimal sizes (smoke runs: --quick)."""
    out = {}
    for name, bm in PRECISION_MODELS.items():
        extra = (("n_resgroups", 1),) if bm.backbone == "rcan" else ()
        out[name] = replace(bm, overrides=(("n_feats", 16), ("n_resblocks", 1), *extra), batch=1, patch=8)
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_reset(device: torch.device) -> int:
    """Start a peak-memory measurement on CUDA: returns the bytes allocated now (0 elsewhere)."""
    if device.type != "cuda":
        return 0
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def peak_mb(device: torch.device, base: int) -> float:
    """Peak CUDA memory (MiB) above `base` since peak_reset (nan elsewhere)."""
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20 if device.type == "cuda" else float("nan")


def make_step(
    spec: Mapping[str, Any], device: torch.device, bf16: bool, channels_last: bool, compile_: bool
) -> tuple[Callable[[dict[str, torch.Tensor]], torch.Tensor], nn.Module]:
    """(one training step of the model `spec` describes, in this arm's precision and layout (common.train_step_fn);
    the model)."""
    from sr_lit.bench.common import build, train_step_fn

    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = build(spec).to(device).to(memory_format=memory_format)
    rgb = float(spec["backbone"].get("rgb_range", 1))
    forward = torch.compile(model) if compile_ else None
    return train_step_fn(model, rgb, bf16=bf16, memory_format=memory_format, forward=forward), model


def conv_step(
    device: torch.device, bf16: bool, channels_last: bool, compile_: bool
) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """The reference: one 64 -> 64 3x3 convolution, forward + backward (input and weight gradients)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(CONV_CHANNELS, CONV_CHANNELS, 3, padding=1).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    conv = conv.to(memory_format=memory_format)
    fn = torch.compile(conv) if compile_ else conv

    def step(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        conv.zero_grad(set_to_none=True)
        x = batch["feat"].contiguous(memory_format=memory_format).requires_grad_()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            y = fn(x)
        y.backward(batch["grad"].to(y.dtype).contiguous(memory_format=memory_format))
        return y.detach()

    return step


def conv_train_flops(batch: int, patch: int) -> float:
    return 3.0 * 2 * batch * CONV_CHANNELS * CONV_CHANNELS * 9 * patch * patch


def model_train_flops(spec: Mapping[str, Any], batch: int, patch: int) -> float:
    """3 x forward FLOPs (summary.model_cost: convolutions, matmuls and the HPF's filter) of one training batch."""
    from sr_lit.models.registry import build_model
    from sr_lit.models.summary import model_cost

    return 3.0 * batch * float(model_cost(build_model(**spec), (patch, patch))["flops"])


def time_arms(
    steps: Mapping[str, Callable[[dict[str, Any]], Any]],
    inputs: Mapping[str, Sequence[dict[str, Any]]] | Sequence[dict[str, Any]],
    device: torch.device,
    n_steps: int,
    reps: int,
    warmup: int = 1,
    peaks: dict[str, float] | None = None,
    reps_by_arm: Mapping[str, int] | None = None,
) -> dict[str, list[float]]:
    """Seconds per step of every arm, one value per repetition; arms interleaved A B C, C B A, ... after `warmup`
    untimed steps each (allocator pools, Adam state, oneDNN primitive caches, torch.compile).

    inputs: one list of batches for all arms, or one per arm. reps_by_arm: fewer repetitions for some arms (they
    take part in the first rounds only). On CUDA, `peaks` receives each arm's peak allocated memory above what
    was allocated before its steps."""

    def arm_inputs(name: str) -> Sequence[dict[str, Any]]:
        return inputs[name] if isinstance(inputs, Mapping) else inputs

    for name, step in steps.items():
        for i in range(warmup):
            step(arm_inputs(name)[i % len(arm_inputs(name))])
    sync(device)
    out: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            if reps_by_arm is not None and rep >= reps_by_arm.get(name, reps):
                continue
            batch_list = arm_inputs(name)
            base = peak_reset(device) if peaks is not None else 0
            sync(device)
            t0 = time.perf_counter()
            for i in range(n_steps):
                steps[name](batch_list[i % len(batch_list)])
            sync(device)
            out[name].append((time.perf_counter() - t0) / n_steps)
            if peaks is not None and device.type == "cuda":
                peaks[name] = peak_mb(device, base)
    return out


def paired_speedup(base: Sequence[float], arm: Sequence[float]) -> float:
    """Median over repetitions of base / arm time (each pair measured back to back; extra base reps unused)."""
    return float(statistics.median(b / a for b, a in zip(base, arm)))


def conv_inputs(batch: int, patch: int, device: torch.device) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    shape = (batch, CONV_CHANNELS, patch, patch)
    return [
        {
            "feat": torch.randn(*shape, generator=g).to(device),
            "grad": torch.randn(*shape, generator=g).to(device),
        }
    ]


def precision_table(
    device: torch.device,
    models: Mapping[str, BenchModel],
    arms: Sequence[str],
    n_steps: int,
    reps: int,
    reference: bool = True,
    reps_by_arm: Mapping[str, int] | None = None,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> dict[str, Any]:
    """The precision table's keys (unprefixed; gpu_check adds `gpu_`):

    `<model>_<arm>_ms_per_step`, `<arm>_train_speedup_vs_fp32_<model>` (paired ratio, > 1 = faster) and, with
    `reference`, the 64-channel convolution at the model's batch and patch timed as one more arm per precision,
    interleaved with the model's (same minutes, same load): `<model>_conv64_train_gflops_<arm>`,
    `train_flop_rate_vs_conv_<model>_<arm>` and, for the model's fastest arm, `train_flop_rate_vs_conv_<model>`
    with `fastest_arm_<model>`; on CUDA `<model>_<arm>_peak_mb`. reps_by_arm: fewer repetitions for some arms
    (their reference convolution gets as many). An arm that fails (e.g. torch.compile) is reported through
    on_error and left out. Every arm's first step (building, compiling) is untimed.
    """
    out: dict[str, Any] = {}
    for name, bm in models.items():
        spec, b = bm.spec(), bm.batch
        inputs: dict[str, Sequence[dict[str, Any]]] = {}
        steps: dict[str, Callable[[dict[str, Any]], Any]] = {}
        model_batches = random_batches(2, b, bm.patch, int(spec["scale"]), device=device)
        feats = conv_inputs(b, bm.patch, device) if reference else []
        for arm in arms:
            try:
                step = make_step(spec, device, *ARM_FLAGS[arm])[0]
                step(model_batches[0])  # builds (and compiles) here, so that a failing arm is caught here
                steps[arm], inputs[arm] = step, model_batches
                if reference:
                    ref = conv_step(device, *ARM_FLAGS[arm])
                    ref(feats[0])
                    steps[f"conv64_{arm}"], inputs[f"conv64_{arm}"] = ref, feats
            except Exception as e:  # noqa: BLE001 - one arm failing must not cost the others
                if on_error is None:
                    raise
                on_error(f"{name}_{arm}", e)
        fewer = {k: n for arm, n in (reps_by_arm or {}).items() for k in (arm, f"conv64_{arm}")}
        peaks: dict[str, float] = {}
        times = time_arms(steps, inputs, device, n_steps, reps, warmup=0, peaks=peaks, reps_by_arm=fewer)
        for arm, mb in peaks.items():
            if not arm.startswith("conv64_"):
                out[f"{name}_{arm}_peak_mb"] = mb
        flops = model_train_flops(spec, b, bm.patch)
        out[f"{name}_train_gflop_per_step"] = flops / 1e9
        out[f"{name}_batch_patch"] = f"b{b} p{bm.patch}"
        rates = {}
        for arm in (a for a in arms if a in times):
            t = times[arm]
            out[f"{name}_{arm}_ms_per_step"] = 1e3 * statistics.median(t)
            rates[arm] = flops / statistics.median(t)
            if f"conv64_{arm}" in times:
                conv_rate = conv_train_flops(b, bm.patch) / statistics.median(times[f"conv64_{arm}"])
                out[f"{name}_conv64_train_gflops_{arm}"] = conv_rate / 1e9
                out[f"train_flop_rate_vs_conv_{name}_{arm}"] = rates[arm] / conv_rate
            if arm != "fp32" and "fp32" in times:
                out[f"{arm}_train_speedup_vs_fp32_{name}"] = paired_speedup(times["fp32"], t)
        if rates:
            best = max(rates, key=rates.get)
            out[f"fastest_arm_{name}"] = best
            if f"train_flop_rate_vs_conv_{name}_{best}" in out:
                out[f"train_flop_rate_vs_conv_{name}"] = out[f"train_flop_rate_vs_conv_{name}_{best}"]
    return out
