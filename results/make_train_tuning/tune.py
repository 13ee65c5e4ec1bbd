"""Train `make train` candidates (candidates.py) for a fixed wall budget each and score them with sr-eval.

For every candidate: `sr-train experiment=quickstart <overrides> trainer.max_steps=S` in its own run directory
(S: given per candidate as NAME:STEPS, else from probe.json's `steps_in_budget`), wall time measured around the
whole command (start-up, validations and the final evaluation included, as a user of `make train` waits for
them); then `sr-eval` on its `last.ckpt` (EMA weights) on Set5 and Set14, fp32, the published protocol. A run
that exceeds the budget is scored anyway and flagged. Results: one row per candidate in results.json and a
markdown table on stdout, with the 1-minute load average before and after each run (runs are sequential: the
machine should be otherwise idle, 2 cores).

    PYTHONPATH=$PWD SR_DATA_DIR=/path/to/data .venv/bin/python results/make_train_tuning/tune.py \
        base:1500 p24_lr1e-3:2600 [--budget-s 600] [--out-dir outputs/make_train_tuning]

Bicubic x2 for reference (sr-eval baseline=bicubic): Set5 33.673, Set14 30.230; the issue's target for
`make train` is >= +2.0 dB on Set5 and >= +1.5 dB on Set14 over bicubic, i.e. >= 35.67 / 31.73, in <= 600 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from candidates import CANDIDATES  # noqa: E402

BICUBIC = {"Set5": 33.673, "Set14": 30.230}
TARGET_GAIN = {"Set5": 2.0, "Set14": 1.5}


def run_candidate(name: str, steps: int, out_dir: Path, budget_s: float) -> dict:
    run_dir = out_dir / name
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}
    train = [sys.executable, "-m", "sr_lit.cli.train", "experiment=quickstart", *CANDIDATES[name]]
    train += [f"trainer.max_steps={steps}", "logger=csv", f"hydra.run.dir={run_dir}"]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(train, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    row: dict = {"candidate": name, "overrides": CANDIDATES[name], "steps": steps, "wall_s": round(wall, 1)}
    row.update({"load_avg_1m": [round(load0, 2), round(load1, 2)], "within_budget": wall <= budget_s})
    if proc.returncode != 0:
        row["error"] = proc.stderr.strip().splitlines()[-1:] or ["sr-train failed"]
        return row
    scores = out_dir / f"{name}.eval.json"
    ev = [sys.executable, "-m", "sr_lit.cli.eval", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"]
    ev += [
        "data.sets=[Set5,Set14]",
        f"json_out={scores}",
        "progress=false",
        f"hydra.run.dir={run_dir / 'eval'}",
    ]
    subprocess.run(ev, env=env, check=True, capture_output=True, text=True)
    sets = json.loads(scores.read_text())["sets"]
    for s in ("Set5", "Set14"):
        row[f"{s}_psnr_y"] = round(sets[s]["psnr_y"], 3)
        row[f"{s}_ssim_y"] = round(sets[s]["ssim_y"], 4)
        row[f"{s}_gain_db"] = round(sets[s]["psnr_y"] - BICUBIC[s], 3)
    row["meets_target"] = row["within_budget"] and all(
        row[f"{s}_gain_db"] >= TARGET_GAIN[s] for s in ("Set5", "Set14")
    )
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("candidates", nargs="+", help="NAME or NAME:STEPS (NAME from candidates.py)")
    p.add_argument("--budget-s", type=float, default=600.0)
    p.add_argument(
        "--probe", type=Path, default=HERE / "probe.json", help="probe.py output (steps in budget)"
    )
    p.add_argument("--out-dir", type=Path, default=Path("outputs") / "make_train_tuning")
    args = p.parse_args(argv)
    probed = json.loads(args.probe.read_text())["candidates"] if args.probe.is_file() else {}
    plan = []
    for item in args.candidates:
        name, _, steps = item.partition(":")
        if name not in CANDIDATES:
            p.error(f"unknown candidate {name!r}; see candidates.py")
        if not steps and name not in probed:
            p.error(f"{name}: give NAME:STEPS, or run probe.py first")
        plan.append((name, int(steps) if steps else int(probed[name]["steps_in_budget"])))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, steps in plan:
        print(f"[tune] {name}: {steps} steps ...", file=sys.stderr, flush=True)
        rows.append(run_candidate(name, steps, args.out_dir, args.budget_s))
        (args.out_dir / "results.json").write_text(json.dumps(rows, indent=2) + "\n")  # after every run
    print("| candidate | steps | wall s | Set5 | Set14 | gain Set5 / Set14 (dB) | target met | load |")
    print("|---|---:|---:|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['candidate']} | {r['steps']} | {r['wall_s']} | error: {r['error']} | | | | |")
            continue
        print(
            f"| {r['candidate']} | {r['steps']} | {r['wall_s']} | {r['Set5_psnr_y']:.2f} / {r['Set5_ssim_y']:.4f} "
            f"| {r['Set14_psnr_y']:.2f} / {r['Set14_ssim_y']:.4f} | {r['Set5_gain_db']:+.2f} / "
            f"{r['Set14_gain_db']:+.2f} | {r['meets_target']} | {r['load_avg_1m']} |"
        )
    print(f"wrote {args.out_dir / 'results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
