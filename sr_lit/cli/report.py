"""`sr-report`: collect a sweep's jobs into one ablation table (report.md, report.csv) and a plot (report.png).

sr-report outputs/sweeps/ablation_modules/2026-01-01_12-00-00 --out results/ablation_modules
sr-report outputs/sweeps/ablation_modules/2026-01-01_12-00-00 --source wandb --out OUT   # offline W&B folders
sr-report my-entity/sr_lit/ablation_modules --out OUT                                    # W&B API (online)
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from sr_lit.report.collect import SourceError, collect
from sr_lit.report.plot import plot_bands, plot_report
from sr_lit.report.table import Report, band_rows, build_report, csv_rows, markdown

OUTPUT_NAMES = ("report.md", "report.csv", "report.png", "report_bands.png")


def write_outputs(report: Report, out: Path, title: str) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "report.md", "csv": out / "report.csv", "png": out / "report.png"}  # OUTPUT_NAMES
    paths["md"].write_text(markdown(report, title))
    rows = csv_rows(report)
    with open(paths["csv"], "w", newline="") as f:
        fields = list(rows[0]) if rows else ["variant"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    plot_report(report, paths["png"], title)
    if plot_bands(report, out / "report_bands.png", title) is not None:  # when the jobs have spectra
        paths["bands_png"] = out / "report_bands.png"
    return paths


def log_to_wandb(report: Report, paths: dict[str, Path], title: str, out: Path) -> None:
    """The table as a wandb.Table (+ the plot) in a `report` run; offline unless logged in."""
    import wandb

    from sr_lit.lit.loggers import wandb_should_be_offline

    rows = csv_rows(report)
    columns = list(rows[0]) if rows else ["variant"]
    group = next((str(j.metrics.get("group")) for j in report.jobs if j.metrics.get("group")), None)
    run = wandb.init(
        project="sr_lit",
        job_type="report",
        group=group,
        name=f"report-{title}",
        dir=str(out),
        mode="offline" if wandb_should_be_offline() else "online",
    )
    try:
        table = wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows])
        payload = {"ablation_table": table, "ablation_plot": wandb.Image(str(paths["png"]))}
        if "bands_png" in paths:  # per-band paired deltas with their intervals, as a table and a plot
            band_columns, band_data = band_rows(report)
            payload["ablation_band_table"] = wandb.Table(columns=band_columns, data=band_data)
            payload["ablation_bands_plot"] = wandb.Image(str(paths["bands_png"]))
        run.log(payload)
    finally:
        run.finish()


def uses_wandb(report: Report) -> bool:
    return any(
        isinstance((j.config or {}).get("logger"), dict) and "wandb" in j.config["logger"]
        for j in report.jobs
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sr-report", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source", help="multirun folder, a folder of W&B offline runs, or entity/project[/group]"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for report.md, report.csv, report.png"
    )
    parser.add_argument("--source", dest="kind", choices=["auto", "multirun", "wandb"], default="auto")
    parser.add_argument("--title", default=None, help="report title (default: the source folder's name)")
    parser.add_argument(
        "--wandb",
        choices=["auto", "on", "off"],
        default="auto",
        help="log the table as a wandb.Table (auto: when the jobs logged to W&B)",
    )
    parser.add_argument("--no-cost", action="store_true", help="skip the params/FLOPs computation")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the report files of an earlier sr-report in --out"
    )
    args = parser.parse_args(argv)

    existing = [str(args.out / name) for name in OUTPUT_NAMES if (args.out / name).exists()]
    if existing and not args.overwrite:
        print(
            f"sr-report: error: {', '.join(existing)} exist(s) already; pass --overwrite to replace them "
            "or choose another --out",
            file=sys.stderr,
        )
        return 2
    try:
        jobs = collect(args.source, kind=args.kind)
    except SourceError as e:
        print(f"sr-report: error: {e}", file=sys.stderr)
        return 2
    report = build_report(jobs, compute_cost=not args.no_cost)
    title = args.title or Path(args.source.rstrip("/")).name
    paths = write_outputs(report, args.out, title)
    for job in report.problems:
        print(
            f"sr-report: {job.status}: {job.path}" + (f": {job.error}" if job.error else ""), file=sys.stderr
        )
    if report.reference_note:
        print(f"sr-report: note: {report.reference_note}", file=sys.stderr)
    print(paths["md"].read_text())
    if args.wandb == "on" or (args.wandb == "auto" and uses_wandb(report)):
        log_to_wandb(report, paths, title, args.out)
    print(f"sr-report: wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
