"""`python -m sr_lit.bench [--only threads,framework,loader,datacache,hpf,attention,precision,inference] [--quick]
[--rcan-full]`.

Runs the chosen benchmarks in one process, merges their flat keys into bench/results.json (keys of benchmarks
not run this time are kept from earlier runs; `bench_<name>_measured_at` says when each was measured) and prints
the targets table. --quick: minimal sizes, a smoke run; nothing is written unless --out is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ORDER = ("threads", "framework", "loader", "datacache", "hpf", "attention", "precision", "inference")
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "bench" / "results.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sr_lit.bench", description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(ORDER), help=f"comma-separated subset of {','.join(ORDER)}")
    p.add_argument(
        "--quick", action="store_true", help="minimal sizes (smoke run; writes nothing by default)"
    )
    p.add_argument(
        "--rcan-full", action="store_true", help="also upscale the 2K image with full RCAN (tens of minutes)"
    )
    p.add_argument(
        "--framework-seconds",
        type=float,
        default=None,
        help="cap on the Lightning-vs-plain pairs (default 300 s; they stop earlier once the ratio's 95 %% "
        "interval is within +-1 %%: on a noisy 2-core VM that can take ~10 min)",
    )
    p.add_argument("--out", type=Path, help=f"results file (default {DEFAULT_OUT}; none with --quick)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's, = the core count)")
    p.add_argument(
        "--omp-default",
        action="store_true",
        help="keep libgomp's spinning wait policy (default: OMP_WAIT_POLICY=PASSIVE, see sr_lit.bench.threads)",
    )
    args = p.parse_args(argv)
    args.only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in args.only if n not in ORDER]
    if unknown:
        p.error(f"--only: unknown benchmark(s) {unknown}; choose from {', '.join(ORDER)}")
    return args


def run_all(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    import importlib

    import torch

    from sr_lit.bench.common import environment, load_avg_1m

    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"load_avg_1m_start": load_avg_1m(), **environment()}
    results["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "default")
    results["bench_quick"] = bool(args.quick)
    failed: list[str] = []
    t_all = time.perf_counter()
    for name in [n for n in ORDER if n in args.only]:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"sr_lit.bench.{name}")
            produced = module.run(
                quick=args.quick,
                rcan_full=args.rcan_full,
                framework_seconds=args.framework_seconds,
                context=results,
            )
            results.update(produced)
            # which keys this benchmark owns: a later rerun drops the ones it no longer produces (see write)
            results[f"bench_{name}_keys"] = ",".join(sorted(produced))
        except Exception as e:  # noqa: BLE001 - one failing benchmark must not lose the others
            traceback.print_exc()
            results[f"bench_{name}_error"] = f"{type(e).__name__}: {e}"
            failed.append(name)
        results[f"bench_{name}_seconds"] = time.perf_counter() - t0
        results[f"bench_{name}_measured_at"] = time.strftime("%Y-%m-%d %H:%M")
        print(f"[bench] {name}: {results[f'bench_{name}_seconds']:.0f} s", file=sys.stderr, flush=True)
    results["bench_wall_seconds"] = time.perf_counter() - t_all
    results["load_avg_1m_end"] = load_avg_1m()
    return results, failed


def write(results: dict[str, Any], out: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    if out.is_file():
        merged = json.loads(out.read_text())
    for name in ORDER:  # a benchmark that ran again replaces its old keys and its old error, or loses them
        if f"bench_{name}_seconds" in results:
            merged.pop(f"bench_{name}_error", None)
            for key in merged.pop(f"bench_{name}_keys", "").split(","):
                merged.pop(key, None)
    merged.update(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    return merged


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.omp_default:
        # must be set before torch (and its OpenMP runtime) is loaded: torch is imported only below
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    results, failed = run_all(args)
    out = args.out or (None if args.quick else DEFAULT_OUT)
    shown = write(results, out) if out is not None else results
    from sr_lit.bench.table import print_tables

    print_tables(shown, measured_now=set(results))
    if out is not None:
        print(f"wrote {out}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
