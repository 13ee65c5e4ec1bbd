"""Benchmark 0: OpenMP thread settings on a shared CPU (why `python -m sr_lit.bench` sets OMP_WAIT_POLICY).

torch's CPU wheel uses libgomp: by default each of its threads spins at every parallel-region barrier before
sleeping. When the cores are shared with other processes (the load average above the core count), a spinning
thread takes a core from the very thread it waits for, and small ops become 10x slower or worse. Arms, each a
fresh process (the policy is read when the OpenMP runtime starts), interleaved over repetitions:
  default_2t: 2 threads, libgomp's default policy (what `make train` / `make test` get today);
  passive_2t: 2 threads, OMP_WAIT_POLICY=PASSIVE (threads sleep at barriers);
  passive_1t: 1 thread.
Workloads: edsr_tiny training steps (batch 4, 16 px: many small ops) and edsr_baseline (batch 4, 48 px).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from sr_lit.bench.common import Result, interleave, load_avg_1m, median

ARMS = {"default_2t": (None, 2), "passive_2t": ("PASSIVE", 2), "passive_1t": ("PASSIVE", 1)}
WORKLOADS = {"edsr_tiny_b4_p16": ("edsr_tiny", 4, 16), "edsr_baseline_b4_p48": ("edsr_baseline", 4, 48)}


def _child(backbone: str, batch: int, patch: int, steps: int, warmup: int) -> float:
    from sr_lit.bench.common import build, random_batches, spec_for, timed_loop, train_step_fn

    step = train_step_fn(build(spec_for(backbone)))
    return median(timed_loop(step, random_batches(steps + warmup, batch, patch, 2), warmup))


def child_run(arm: str, workload: str, steps: int, warmup: int) -> float:
    policy, n_threads = ARMS[arm]
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["OMP_NUM_THREADS"] = str(n_threads)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    backbone, batch, patch = WORKLOADS[workload]
    cmd = [sys.executable, "-m", "sr_lit.bench.threads", "--child", backbone, str(batch), str(patch)]
    cmd += [str(steps), str(warmup)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["s_per_step"])


def measure(
    workload: str, steps: int, warmup: int, reps: int, arms: tuple[str, ...] = tuple(ARMS)
) -> dict[str, float]:
    runs = {arm: (lambda arm=arm: [child_run(arm, workload, steps, warmup)]) for arm in arms}
    samples = interleave(runs, reps)
    ms = {arm: 1e3 * median(x for rep in s for x in rep) for arm, s in samples.items()}
    out = {f"threads_{workload}_{arm}_ms_per_step": v for arm, v in ms.items()}
    for arm in ("passive_2t", "passive_1t"):
        if arm in ms and "default_2t" in ms:
            out[f"threads_{workload}_{arm}_speedup_vs_default_2t"] = ms["default_2t"] / ms[arm]
    return out


def run(quick: bool = False, **_: Any) -> Result:
    res: Result = {"threads_load_avg_1m": load_avg_1m()}
    if quick:
        res.update(measure("edsr_tiny_b4_p16", steps=2, warmup=1, reps=1))
        return res
    res.update(measure("edsr_tiny_b4_p16", steps=10, warmup=2, reps=2))
    res.update(measure("edsr_baseline_b4_p48", steps=2, warmup=1, reps=2))
    return res


def _main() -> None:
    p = argparse.ArgumentParser(description="internal: one timing child of sr_lit.bench.threads")
    p.add_argument(
        "--child", nargs=5, metavar=("BACKBONE", "BATCH", "PATCH", "STEPS", "WARMUP"), required=True
    )
    backbone, *nums = p.parse_args().child
    batch, patch, steps, warmup = (int(n) for n in nums)
    print(json.dumps({"s_per_step": _child(backbone, batch, patch, steps, warmup)}))


if __name__ == "__main__":
    _main()
