"""The report's figure: delta Y-PSNR per variant with error bars (absolute PSNR when there is no reference)."""

from __future__ import annotations

import statistics
from pathlib import Path

from sr_lit.report.table import Report, _std


def plot_report(report: Report, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers/CI
    import matplotlib.pyplot as plt

    rows = report.rows
    has_ref = any(r.reference is not None for r in rows)
    sets = report.sets or ["(none)"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) * len(sets) + 2), 4.5))
    width = 0.8 / len(sets)
    for i, s in enumerate(sets):
        means, errs = [], []
        for r in rows:
            if has_ref:
                d = r.delta(s)
                means.append(d[0] if d else float("nan"))
                errs.append(d[1] if d else 0.0)
            else:
                v = r.psnr.get(s, [])
                means.append(statistics.fmean(v) if v else float("nan"))
                errs.append(_std(v) if v else 0.0)
        xs = [j + (i - (len(sets) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, means, width, yerr=errs, capsize=3, label=s)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.label for r in rows], rotation=30, ha="right", fontsize=8)
    if has_ref:
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_ylabel("Δ Y-PSNR vs plain backbone (dB), ± s.e.")
    else:
        ax.set_ylabel("Y-PSNR (dB), mean ± std over seeds")
    ax.set_title(title)
    ax.legend(title="validation set")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
