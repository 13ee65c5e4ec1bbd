"""Benchmark: training-step time by precision and memory format, and how close each model runs to the convolution
rate of the same machine.

Arms (sr_lit.bench.arms, shared with `make gpu-check`): fp32, fp32_cl (channels_last), bf16 (torch.autocast, what
trainer.precision=bf16-mixed runs), bf16_cl. Models: edsr_baseline, edsr_baseline + MMCA + HPF, RCAN 2 groups x
4 RCABs, and the `make train` model (edsr_tiny + MMCA + HPF, batch 16 of 32 px). The 64-channel models run batch 8
of 48 px here (the paper's patch, half its batch: bf16 arms on a CPU without native bf16 are slow). Plain PyTorch
steps (forward, L1, backward, Adam) on pre-built batches; arms interleaved per repetition (with the 64-channel
reference convolution as one more arm per precision), one untimed first step each, median of paired ratios. Where
the CPU has no native bf16, the bf16 arms run one repetition (`precision_bf16_reps`): they are 10-20x slower there.

Whether bf16 can pay off depends on the CPU: x86 computes bf16 natively only with AVX-512 BF16 or AMX
(`precision_cpu_native_bf16`); elsewhere oneDNN has no bf16 convolution and PyTorch falls back to slow reference
code, so the bf16 arms are expected to be several times *slower* there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from sr_lit.bench.arms import (
    ARM_FLAGS,
    PRECISION_ARMS,
    PRECISION_MODELS,
    BenchModel,
    precision_table,
    small_models,
)
from sr_lit.bench.common import Result


def cpu_facts() -> Result:
    from sr_lit.models.blocks.precision import native_bf16

    name = ""
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:  # not Linux
        pass
    return {
        "precision_cpu_native_bf16": native_bf16("cpu"),
        "precision_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "precision_cpu_model": name,
    }


def cpu_models(quick: bool) -> dict[str, BenchModel]:
    if quick:
        return small_models()
    # batch 8 for the 64-channel models: half the CPU time; a step's precision ratio hardly depends on the batch
    return {
        n: replace(bm, batch=8) if bm.backbone != "edsr_tiny" else bm for n, bm in PRECISION_MODELS.items()
    }


def run(quick: bool = False, **_: Any) -> Result:
    cpu = torch.device("cpu")
    facts = cpu_facts()
    native = facts["precision_cpu_native_bf16"]
    # a repetition is one step per arm: with native bf16 the table takes ~1 min at 3 repetitions, so take 7
    reps = 1 if quick else (7 if native else 3)
    # without native bf16 a bf16 step takes 10-20x an fp32 one: one repetition shows that, three would cost minutes
    bf16_reps = {a: 1 for a in PRECISION_ARMS if ARM_FLAGS[a][0]} if not native else None
    res = precision_table(cpu, cpu_models(quick), PRECISION_ARMS, n_steps=1, reps=reps, reps_by_arm=bf16_reps)
    return {**facts, **res, "precision_bf16_reps": 1 if bf16_reps else reps}
