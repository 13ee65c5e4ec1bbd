"""Benchmark 4: training-step cost of the attention units (CA, FCA, MMCA vs none) in a reduced RCAN.

RCAN cut to 2 residual groups x 4 RCABs x 64 features (`rcan_g2b4` in the key names): the attention sits in
every RCAB, so its cost relative to the block's two convolutions is the same as in the full 10 x 20 network.
Two more arms put the dynamic HPF (configs/hpf/dynamic.yaml, end of each group) into the same network with the
repo's shift path and with the unfold reference: HPF's cost at model level. Plain PyTorch steps (forward, L1,
backward, Adam) on the same pre-built batches (batch 8 of 48 px LR: half the paper's batch, to halve the run
time; a unit's cost relative to the convolutions does not depend on the batch); arms round-robin per
repetition, one warm-up step each, median.
"""

from __future__ import annotations

from typing import Any

from sr_lit.bench.common import (
    RCAN_REDUCED,
    RCAN_REDUCED_TAG,
    Result,
    build,
    interleave,
    load_group,
    paired_ratio,
    pooled_median,
    random_batches,
    spec_for,
    timed_loop,
    train_step_fn,
)


def attention_names() -> tuple[str, ...]:
    """Every registered attention unit, `none` first (the denominator of the ratios)."""
    from sr_lit.models.registry import ATTENTION

    return ATTENTION.names()


def arms_specs(reduced: dict[str, int]) -> dict[str, dict[str, Any]]:
    hpf = load_group("hpf", "dynamic")
    specs = {name: spec_for("rcan", name, "none", **reduced) for name in attention_names()}
    for impl in ("shift", "unfold"):
        specs[f"hpf_{impl}"] = spec_for("rcan", "none", {**hpf, "impl": impl}, **reduced)
    return specs


def measure(
    batch: int = 8, patch: int = 48, steps: int = 2, reps: int = 5, reduced: dict[str, int] | None = None
) -> dict[str, float]:
    batches = random_batches(steps + 1, batch, patch, scale=2)
    specs = arms_specs(reduced or RCAN_REDUCED)
    arms = {}
    for name, spec in specs.items():
        step = train_step_fn(build(spec), rgb_range=float(spec["backbone"]["rgb_range"]))
        step(batches[0])  # first step allocates Adam's state and the allocator pools: never timed
        arms[name] = lambda step=step: timed_loop(step, batches[1:], warmup=0)
    samples = interleave(arms, reps)
    out = {f"{name}_s_per_step": pooled_median(s) for name, s in samples.items()}
    for name in specs:
        if name != "none":
            # time ratio: > 1 means slower than the network without the unit
            out[f"{name}_step_time_ratio_vs_none"] = paired_ratio(samples[name], samples["none"])
    return out


def run(quick: bool = False, **_: Any) -> Result:
    tag = RCAN_REDUCED_TAG
    if quick:
        tiny = {"n_resgroups": 1, "n_resblocks": 1, "n_feats": 16}
        res = measure(batch=1, patch=16, steps=1, reps=1, reduced=tiny)
        tag = "rcan_g1b1f16"
    else:
        res = measure()
    out: Result = {f"attention_{tag}_b{1 if quick else 8}_{k}": v for k, v in res.items()}
    for name in attention_names()[1:]:  # short aliases for the table
        out[f"{name}_step_time_ratio_vs_none"] = res[f"{name}_step_time_ratio_vs_none"]
    out["hpf_model_step_time_ratio_vs_none"] = res["hpf_shift_step_time_ratio_vs_none"]
    out["hpf_model_step_time_ratio_vs_none_unfold"] = res["hpf_unfold_step_time_ratio_vs_none"]
    out["attention_network"] = (
        f"{tag}: RCAN {'1 group x 1 RCAB x 16' if quick else '2 groups x 4 RCABs x 64'} feats"
    )
    return out
