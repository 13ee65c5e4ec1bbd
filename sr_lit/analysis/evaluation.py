"""Benchmark evaluation with spectra: the one evaluation loop (sr_lit.inference.evaluate) plus, per set, the
band-error table and error spectra of the model and of the bicubic baseline, computed on the same images as the
metrics in the same pass (sr-eval ``spectrum=true`` and the end-of-training ``metrics.json``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from sr_lit.analysis.spectrum import (
    CURVE_BINS_PER_NYQUIST,
    DEFAULT_BANDS,
    WINDOW,
    band_edges,
    check_n_bands,
    curve_frequencies,
    image_band_errors,
    power_spectrum,
    radial_profile,
)
from sr_lit.inference.evaluate import evaluate_datasets

__all__ = ["SpectrumCollector", "evaluate_with_spectra", "json_float", "json_floats"]

UpscaleFn = Callable[[torch.Tensor], torch.Tensor]


def json_float(v: float) -> float | None:
    """A float for strict JSON: inf/NaN become null (an infinite band PSNR = no error in that band)."""
    v = float(v)
    return v if math.isfinite(v) else None


def json_floats(values: Any) -> list[float | None]:
    return [json_float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _mean_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Mean over images per column; NaN (a band or radial bin an image does not have) is left out."""
    a = np.stack(rows)
    with np.errstate(invalid="ignore"):
        finite_or_inf = ~np.isnan(a)
        counts = finite_or_inf.sum(axis=0)
        sums = np.where(finite_or_inf, a, 0.0).sum(axis=0)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


class _Arm:
    """Per-image band statistics of one upscaler (the model, or bicubic) on one set."""

    def __init__(self) -> None:
        self.psnr: list[np.ndarray] = []
        self.mse: list[np.ndarray] = []
        self.share: list[np.ndarray] = []
        self.psd: list[np.ndarray] = []
        self.curve: list[np.ndarray] = []

    def add(
        self, sr: torch.Tensor, hr: torch.Tensor, scale: int, n_bands: int, bins: int, gray_gt: str
    ) -> torch.Tensor:
        be, hr_plane = image_band_errors(sr[None].float(), hr[None].float(), scale, n_bands, gray_gt)
        self.psnr.append(be.psnr[0].numpy())
        self.mse.append(be.mse[0].numpy())
        self.share.append(be.share[0].numpy())
        self.psd.append(be.psd[0].numpy())
        self.curve.append(radial_profile(be.error_power[0], bins).numpy())
        return hr_plane

    def summary(self) -> dict[str, list[float | None]]:
        return {
            "band_psnr_y": json_floats(_mean_rows(self.psnr)),
            "band_mse": json_floats(_mean_rows(self.mse)),
            "band_share": json_floats(_mean_rows(self.share)),
            "band_psd": json_floats(_mean_rows(self.psd)),
            "error_psd": json_floats(_mean_rows(self.curve)),
        }


class SpectrumCollector:
    """``evaluate_datasets(on_image=...)`` observer: band errors of every SR output and of bicubic on its LR.

    ``baseline``: the bicubic upscaler (None when the evaluated model *is* bicubic: then both arms are the same).
    """

    def __init__(
        self,
        scale: int,
        n_bands: int = DEFAULT_BANDS,
        baseline: UpscaleFn | None = None,
        bins_per_nyquist: int = CURVE_BINS_PER_NYQUIST,
        gray_gt: str = "gray",
    ) -> None:
        self.scale = int(scale)
        self.gray_gt = gray_gt
        self.n_bands = check_n_bands(n_bands)
        self.baseline = baseline
        self.bins = bins_per_nyquist
        self.model: dict[str, _Arm] = {}
        self.bicubic: dict[str, _Arm] = {}
        self.hr_curves: dict[str, list[np.ndarray]] = {}
        self.names: dict[str, list[str]] = {}

    def __call__(self, set_name: str, item: Mapping[str, Any], sr: torch.Tensor) -> None:
        hr = item["hr"].float()
        hr_plane = self.model.setdefault(set_name, _Arm()).add(
            sr, hr, self.scale, self.n_bands, self.bins, self.gray_gt
        )
        if self.baseline is not None:
            bic = self.baseline(item["lr"]).float().clamp(0, 1)
            self.bicubic.setdefault(set_name, _Arm()).add(
                bic, hr, self.scale, self.n_bands, self.bins, self.gray_gt
            )
        hr_power = power_spectrum(hr_plane[0, 0], window=True, remove_mean=True)
        self.hr_curves.setdefault(set_name, []).append(radial_profile(hr_power, self.bins).numpy())
        self.names.setdefault(set_name, []).append(str(item["name"]))

    def per_image_band_psnr(self, set_name: str) -> dict[str, list[float | None]]:
        arm = self.model.get(set_name)
        if arm is None:
            return {}
        return {n: json_floats(p) for n, p in zip(self.names[set_name], arm.psnr)}

    def summary(self, set_name: str) -> dict[str, Any]:
        """JSON-ready per-set record: band table and spectrum curves of the model and of bicubic."""
        model = self.model[set_name].summary()
        bicubic = (self.bicubic[set_name] if self.baseline is not None else self.model[set_name]).summary()
        delta = [
            None if m is None or b is None else m - b
            for m, b in zip(model["band_psnr_y"], bicubic["band_psnr_y"])
        ]
        return {
            "window": WINDOW,
            "n_bands": self.n_bands,
            "band_edges": band_edges(self.n_bands),
            "scale": self.scale,
            "curve_r": curve_frequencies(self.bins),
            "hr_psd": json_floats(_mean_rows(self.hr_curves[set_name])),
            "model": model,
            "bicubic": bicubic,
            "delta_band_psnr_y": delta,
        }


def evaluate_with_spectra(
    model: Any,
    datasets: Mapping[str, Any],
    scale: int,
    *,
    spectrum: bool = True,
    n_bands: int = DEFAULT_BANDS,
    baseline_is_model: bool | None = None,
    progress: bool = False,
    gray_gt: str = "gray",
) -> dict[str, dict[str, Any]]:
    """``evaluate_datasets`` (set means untouched) plus, with ``spectrum``, per set ``spectrum`` (see
    SpectrumCollector.summary) and each image's ``band_psnr_y`` in ``per_image``."""
    if not spectrum:
        return evaluate_datasets(model, datasets, scale=scale, progress=progress, gray_gt=gray_gt)
    from sr_lit.inference.predictor import Upscaler

    if baseline_is_model is None:
        baseline_is_model = bool(getattr(model, "is_baseline", False))
    collector = SpectrumCollector(
        scale, n_bands, baseline=None if baseline_is_model else Upscaler.bicubic(int(scale)), gray_gt=gray_gt
    )
    results = evaluate_datasets(
        model, datasets, scale=scale, progress=progress, gray_gt=gray_gt, on_image=collector
    )
    for set_name, record in results.items():
        if set_name not in collector.model:  # an empty set
            continue
        record["spectrum"] = collector.summary(set_name)
        for name, bands in collector.per_image_band_psnr(set_name).items():
            if name in record["per_image"]:
                record["per_image"][name]["band_psnr_y"] = bands
    return results
