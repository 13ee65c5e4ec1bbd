"""Figures of the analysis (PNG through matplotlib's Agg backend, written atomically)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sr_lit.utils.files import write_atomic

__all__ = ["plot_error_spectra", "plot_mmca_weights", "plot_hpf_responses", "save_figure"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers/CI
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    _plt().close(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buf.getvalue())
    return path


def _arr(values: Sequence[float | None]) -> np.ndarray:
    """JSON lists (null = inf or missing) -> float array with NaN for null."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def figure_error_spectra(spectra: Mapping[str, Mapping[str, Any]], title: str = "") -> Any:
    """Per set: radially averaged error power of the model and of bicubic (log scale) with the HR spectrum, and
    the per-band PSNR gain of the model over bicubic."""
    plt = _plt()
    names = list(spectra)
    fig, axes = plt.subplots(2, len(names), figsize=(5.2 * len(names), 7.2), squeeze=False)
    for col, name in enumerate(names):
        rec = spectra[name]
        r = np.asarray(rec["curve_r"])
        ax = axes[0, col]
        ax.semilogy(r, _arr(rec["model"]["error_psd"]), label="error, model", color="tab:blue")
        ax.semilogy(r, _arr(rec["bicubic"]["error_psd"]), label="error, bicubic", color="tab:orange")
        ax.semilogy(
            r, _arr(rec["hr_psd"]), label="HR (mean removed)", color="gray", linestyle="--", linewidth=1
        )
        scale = int(rec.get("scale") or 0)
        if scale:
            ax.axvline(1.0 / scale, color="black", linestyle=":", linewidth=1)
            ax.text(1.0 / scale, 0.02, " LR Nyquist", transform=ax.get_xaxis_transform(), fontsize=7)
        ax.axvline(1.0, color="black", linestyle=":", linewidth=1)
        ax.set_xlabel("radial frequency / HR Nyquist")
        ax.set_ylabel("power per bin (MSE units, Y, Hann window)")
        ax.set_title(f"{name}: error spectrum")
        ax.legend(fontsize=8)
        ax = axes[1, col]
        edges = np.asarray(rec["band_edges"])
        centres = (edges[:-1] + edges[1:]) / 2
        delta = _arr(rec["delta_band_psnr_y"])
        ax.bar(
            centres,
            delta,
            width=0.8 * (edges[1] - edges[0]),
            color=np.where(delta >= 0, "tab:green", "tab:red"),
        )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(centres)
        ax.set_xticklabels([f"{k}" for k in range(len(centres))])
        ax.set_xlabel(f"band (equal width in r; band k = [k/{len(centres)}, (k+1)/{len(centres)}))")
        ax.set_ylabel("band PSNR, model − bicubic (dB)")
        for x, d in zip(centres, delta):
            if math.isfinite(d):
                ax.text(x, d, f"{d:+.2f}", ha="center", va="bottom" if d >= 0 else "top", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_error_spectra(spectra: Mapping[str, Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    return save_figure(figure_error_spectra(spectra, title), path)


def figure_mmca_weights(units: Sequence[Mapping[str, Any]]) -> Any:
    """One heat map per MMCA unit: K x its softmax frequency-aggregation weight at each DCT (u, v) (1 = the uniform
    1/K of the zero-initialised logits; blank = a frequency the unit does not use), on one diverging scale."""
    plt = _plt()
    from matplotlib.colors import TwoSlopeNorm

    n = len(units)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 3.3 * rows), squeeze=False, layout="constrained"
    )
    rel = [np.asarray(u["weights"]) * len(u["weights"]) for u in units]
    spread = max(max(float(np.abs(r - 1).max()) for r in rel), 1e-3)
    norm = TwoSlopeNorm(vcenter=1.0, vmin=max(1.0 - spread, 0.0), vmax=1.0 + spread)
    im = None
    for i, (unit, r) in enumerate(zip(units, rel)):
        ax = axes[i // cols, i % cols]
        s = int(unit["pool_size"])
        grid = np.full((s, s), np.nan)
        for (uu, vv), w in zip(unit["freqs"], r):
            grid[uu, vv] = w
        im = ax.imshow(grid, cmap="coolwarm", norm=norm)
        ax.set_title(f"{unit['unit']}\neffective K {unit['effective_k']:.2f} of {len(r)}", fontsize=7)
        ax.set_xlabel("v (horizontal DCT frequency)", fontsize=6)
        ax.set_ylabel("u (vertical)", fontsize=6)
        ax.tick_params(labelsize=6)
    for j in range(n, rows * cols):
        axes[j // cols, j % cols].axis("off")
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.03, label="K × softmax weight (1 = uniform)")
    fig.suptitle("MMCA frequency-aggregation weights on the DCT (u, v) grid")
    return fig


def plot_mmca_weights(units: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    return save_figure(figure_mmca_weights(units), path)


def figure_hpf_responses(units: Sequence[Mapping[str, Any]]) -> Any:
    """Per HPF placement: mean |H(f)| of the predicted high-pass on the 2-D frequency grid, and radially."""
    plt = _plt()
    n = len(units)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.2 * (n + 1), 3.4), squeeze=False)
    for i, unit in enumerate(units):
        ax = axes[0, i]
        f = np.asarray(unit["grid_freq"])
        im = ax.imshow(
            np.asarray(unit["mean_response"]),
            extent=(f[0], f[-1], f[-1], f[0]),
            cmap="magma",
            vmin=0.0,
        )
        ax.set_title(
            f"{unit['unit']}\nabove ½ Nyq.: passes {unit['passed_above_half_nyquist']:.2f}", fontsize=7
        )
        ax.set_xlabel("f_x / Nyquist", fontsize=7)
        ax.set_ylabel("f_y / Nyquist", fontsize=7)
        ax.tick_params(labelsize=6)
        fig.colorbar(im, ax=ax, fraction=0.046)
        axes[0, n].plot(unit["radial_r"], unit["radial_response"], label=unit["unit"])
    ax = axes[0, n]
    ax.set_xlabel("radial frequency / Nyquist")
    ax.set_ylabel("mean |H|")
    ax.axvline(0.5, color="black", linestyle=":", linewidth=1)
    ax.set_title("radial mean |H| (features' own grid)", fontsize=8)
    ax.legend(fontsize=6)
    fig.suptitle("HPF: mean magnitude response of the predicted high-pass (1 − dynamic low-pass)")
    fig.tight_layout()
    return fig


def plot_hpf_responses(units: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    return save_figure(figure_hpf_responses(units), path)
