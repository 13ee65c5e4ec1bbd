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
        means, below, above = [], [], []
        for r in rows:
            pd = r.paired(s) if has_ref else None
            if pd is not None:  # the paired difference with its bootstrap interval (asymmetric bars)
                means.append(pd.mean)
                below.append(pd.mean - pd.low)
                above.append(pd.high - pd.mean)
            elif has_ref:
                d = r.delta(s)
                means.append(d[0] if d else float("nan"))
                below.append(d[1] if d else 0.0)
                above.append(d[1] if d else 0.0)
            else:
                v = r.psnr.get(s, [])
                means.append(statistics.fmean(v) if v else float("nan"))
                below.append(_std(v) if v else 0.0)
                above.append(_std(v) if v else 0.0)
        xs = [j + (i - (len(sets) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, means, width, yerr=[below, above], capsize=3, label=s)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.label for r in rows], rotation=30, ha="right", fontsize=8)
    if has_ref:
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_ylabel(
            "Δ Y-PSNR vs plain backbone (dB), 95 % CI (paired)"
            if report.has_paired
            else "Δ Y-PSNR vs plain (dB), ± s.e."
        )
    else:
        ax.set_ylabel("Y-PSNR (dB), mean ± std over seeds")
    ax.set_title(title)
    ax.legend(title="validation set")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_bands(report: Report, path: Path, title: str) -> Path | None:
    """Per validation set: each variant's paired band-PSNR difference vs the plain backbone over the frequency
    bands, with its 95 % bootstrap interval (shaded). None (no file) when no job has spectra."""
    sets = [s for s in report.sets if report.n_bands(s) and any(r.paired_bands(s) for r in report.rows)]
    if not sets:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sets), figsize=(6.0 * len(sets), 4.5), squeeze=False)
    for ax, s in zip(axes[0], sets):
        n = report.n_bands(s)
        for r in report.rows:
            bands = r.paired_bands(s)
            if not any(b is not None for b in bands):
                continue
            ks = [k for k, b in enumerate(bands) if b is not None]
            mean = [bands[k].mean for k in ks]
            line = ax.plot(ks, mean, marker="o", markersize=3, label=r.label)[0]
            ax.fill_between(
                ks,
                [bands[k].low for k in ks],
                [bands[k].high for k in ks],
                color=line.get_color(),
                alpha=0.15,
            )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(range(n))
        ax.set_xlabel(f"frequency band k: radial frequency [k/{n}, (k+1)/{n}) × HR Nyquist")
        ax.set_ylabel("Δ band Y-PSNR vs plain backbone (dB), 95 % CI")
        ax.set_title(f"{title}: {s}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
