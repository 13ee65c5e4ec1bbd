"""Paired per-image differences between two models and their bootstrap confidence interval.

A variant and its reference (the plain backbone) are scored on the same images with the same seeds. The paired
difference of image i is the mean over common seeds s of (variant_s(i) - reference_s(i)); the reported delta is
the mean of those over images, with a percentile bootstrap interval over images (``N_RESAMPLES`` resamples of the
images with replacement, numpy generator seeded with ``SEED``: the same numbers on every run).

What the interval covers: which images a benchmark happens to hold. It does not cover the seed-to-seed spread of
training beyond what averaging over the seeds removes (with 3 seeds that spread is shown separately, as the
standard error of the per-seed deltas). ``per_seed`` keeps each seed's own difference (mean over the same images)
so that a reader can see when the seeds disagree: then the interval over images is not the whole story.

Below ``MIN_IMAGES`` paired images no difference is flagged: a percentile bootstrap of 1-4 values is close to
their [min, max] (with 1 value, a zero-width interval), so "all images moved the same way" would read as
significant (for 3 images that happens by chance one time in four).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_IMAGES", "N_RESAMPLES", "LEVEL", "SEED", "PairedDelta", "bootstrap_mean_ci", "paired_delta"]

N_RESAMPLES = 10_000
MIN_IMAGES = 5
LEVEL = 0.95
SEED = 0


def bootstrap_mean_ci(
    values: np.ndarray, n_resamples: int = N_RESAMPLES, level: float = LEVEL, seed: int = SEED
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (1-D): resample with replacement, seeded."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"need a non-empty 1-D array, got shape {v.shape}")
    if v.size == 1:
        return float(v[0]), float(v[0])
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // v.size)  # bounded memory for large sets
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        means[start:stop] = v[rng.integers(0, v.size, size=(stop - start, v.size))].mean(axis=1)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PairedDelta:
    """Mean paired difference over images with its bootstrap interval."""

    mean: float
    low: float
    high: float
    n_images: int
    n_seeds: int
    per_image: tuple[float, ...]  # seed-averaged difference of each image (``images`` order)
    images: tuple[str, ...]
    per_seed: tuple[float, ...] = ()  # each seed's difference, mean over the same images (``seeds`` order)
    seeds: tuple[str, ...] = ()

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely above or below 0: distinguishable from no difference (never with
        fewer than MIN_IMAGES images, see the module doc)."""
        return self.n_images >= MIN_IMAGES and (self.low > 0.0 or self.high < 0.0)

    @property
    def seeds_agree(self) -> bool:
        """Every seed's own difference has the sign of the mean (needs 2 or more seeds)."""
        return len(self.per_seed) >= 2 and all(d * self.mean > 0 for d in self.per_seed)


def paired_delta(
    variant: Mapping[str, Mapping[str, float]],
    reference: Mapping[str, Mapping[str, float]],
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> PairedDelta | None:
    """variant/reference: {seed: {image: value}}. Uses the seeds both have and the images every one of those
    seeds scored in both; images with a non-finite difference (an infinite band PSNR) are left out.
    None when nothing pairs."""
    seeds = sorted(set(variant) & set(reference), key=str)
    if not seeds:
        return None
    images = set.intersection(*(set(variant[s]) & set(reference[s]) for s in seeds))
    names, diffs, by_seed = [], [], []
    for name in sorted(images):
        d = [float(variant[s][name]) - float(reference[s][name]) for s in seeds]
        if all(math.isfinite(x) for x in d):
            names.append(name)
            diffs.append(sum(d) / len(d))
            by_seed.append(d)
    if not diffs:
        return None
    arr = np.asarray(diffs)
    per_seed = np.asarray(by_seed).mean(axis=0)
    low, high = bootstrap_mean_ci(arr, n_resamples, level, seed)
    return PairedDelta(
        mean=float(arr.mean()),
        low=low,
        high=high,
        n_images=len(diffs),
        n_seeds=len(seeds),
        per_image=tuple(diffs),
        images=tuple(names),
        per_seed=tuple(float(x) for x in per_seed),
        seeds=tuple(str(s) for s in seeds),
    )
