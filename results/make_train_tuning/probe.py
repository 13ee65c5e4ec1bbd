"""Training steps per second of the `make train` candidates (candidates.py), measured the way sr-train runs them.

Each probe composes `experiment=quickstart` + the candidate's overrides, builds data, module, callbacks (EMA
included) and Trainer with sr-train's own code (sr_lit.lit.pipeline.build), and fits a few dozen steps with
validation, logging and the progress bar off; a callback stamps every batch start. Candidates are interleaved
(round 1: A B C ..., round 2: ... C B A), warm-up steps dropped, median per candidate; the 1-minute load average is
recorded before and after every probe, because the machine is shared.

    PYTHONPATH=$PWD .venv/bin/python results/make_train_tuning/probe.py --steps 30 --rounds 2 \
        [--only base,cl,p24] [--out results/make_train_tuning/probe.json]

`steps_in_budget` = (budget - fixed cost) / median step time: the fixed cost (start-up, three Set5 validations,
the final evaluation, checkpoints) is measured once by tune.py; 60 s is a conservative default.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from candidates import CANDIDATES  # noqa: E402


def probe(overrides: list[str], steps: int, warmup: int, workdir: str) -> list[float]:
    import pytorch_lightning as pl

    from sr_lit.bench.common import compose_train
    from sr_lit.bench.framework import StepTimer, _quiet_lightning
    from sr_lit.lit.pipeline import build

    _quiet_lightning()
    cfg = compose_train(
        [
            "experiment=quickstart",
            *overrides,
            f"trainer.max_steps={steps + warmup + 1}",
            "+trainer.limit_val_batches=0",
            "logger=none",
            "callbacks.progress_bar=null",
            "callbacks.model_summary=null",
            "callbacks.model_checkpoint=null",
            "+trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "final_eval=false",
        ],
        workdir,
    )
    pl.seed_everything(0, verbose=False)
    run = build(cfg, Path(workdir))
    timer = StepTimer()
    run.trainer.callbacks.append(timer)
    run.trainer.fit(run.module, datamodule=run.datamodule)
    stamps = timer.stamps
    return [b - a for a, b in zip(stamps, stamps[1:])][warmup:]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated candidate names (default: all)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per probe")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per probe")
    p.add_argument("--rounds", type=int, default=2, help="probes per candidate, interleaved")
    p.add_argument("--budget-s", type=float, default=600.0, help="wall budget of one make train run")
    p.add_argument(
        "--fixed-s", type=float, default=60.0, help="non-step cost of a run (start, validation, eval)"
    )
    p.add_argument("--out", type=Path, default=HERE / "probe.json")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        p.error(f"unknown candidates {unknown}; see candidates.py")
    samples: dict[str, list[float]] = {n: [] for n in names}
    loads: dict[str, list[float]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="sr_probe_") as tmp:
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                loads[name].append(os.getloadavg()[0])
                samples[name] += probe(CANDIDATES[name], args.steps, args.warmup, f"{tmp}/{name}_{r}")
                loads[name].append(os.getloadavg()[0])
                print(f"{name} round {r}: {statistics.median(samples[name]):.3f} s/step", file=sys.stderr)
    base = statistics.median(samples[names[0]])
    out = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        "steps_per_probe": args.steps,
        "rounds": args.rounds,
        "budget_s": args.budget_s,
        "fixed_s": args.fixed_s,
        "candidates": {
            n: {
                "overrides": CANDIDATES[n],
                "s_per_step": statistics.median(samples[n]),
                f"time_ratio_vs_{names[0]}": statistics.median(samples[n]) / base,
                "steps_in_budget": int((args.budget_s - args.fixed_s) / statistics.median(samples[n])),
                "load_avg_1m": [round(x, 2) for x in loads[n]],
            }
            for n in names
        },
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{'candidate':<12} {'s/step':>7} {'ratio':>6} {'steps in budget':>16}  load")
    for n, c in out["candidates"].items():
        ratio = c[f"time_ratio_vs_{names[0]}"]
        print(f"{n:<12} {c['s_per_step']:7.3f} {ratio:6.2f} {c['steps_in_budget']:16d}  {c['load_avg_1m']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
