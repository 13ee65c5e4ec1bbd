"""Spectral error analysis of SR outputs on the plane the metrics score (DESIGN 1.5: 8-bit, Y or gray, shave).

Error e = SR - HR on ``sr_lit.metrics.sr_metrics.scored_planes`` (the exact crop and channel of PSNR/SSIM).

- Window: a separable 2-D Hann window (symmetric), scaled to mean(w^2) = 1. An image is not periodic, so a plain
  FFT sees a jump at the wrap-around whose leakage falls only as 1/f^2 along both axes: spurious energy exactly in
  the high bands this analysis is about. Hann goes to 0 at the borders (side lobes -31 dB, falling 18 dB/octave);
  its main lobe is 4 bins wide, small against a band (h/16 bins for 8 bands on an h-pixel image). The price: the
  borders count less than the centre.
- Frequency axis: radial frequency r = |f| / f_Nyquist of the HR grid (f in cycles/pixel, f_Nyquist = 1/2), so r = 1
  is the HR Nyquist and r = 1/scale the LR Nyquist; the corners of the 2-D spectrum reach r = sqrt(2).
- Bands: ``n_bands`` equal-width rings of r over [0, 1]; the last band also holds the corners (1 < r <= sqrt(2)).
- Band MSE: the image's MSE (the one PSNR uses) split over bands in proportion to the windowed error power, so the
  bands add up to the metric's MSE exactly; band PSNR = 10 log10(255^2 / band MSE). A band without error has
  band MSE 0 and an infinite band PSNR (no division error); JSON writes it as null.
- Band PSD: the band MSE per frequency bin, times the number of bins (mean power density in the band, in MSE units):
  a white error of variance s^2 has PSD s^2 in every band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from sr_lit.metrics.sr_metrics import scored_planes

__all__ = [
    "DEFAULT_BANDS",
    "CURVE_BINS_PER_NYQUIST",
    "WINDOW",
    "BandErrors",
    "band_edges",
    "band_errors",
    "band_index",
    "curve_frequencies",
    "hann_window_2d",
    "power_spectrum",
    "radial_frequency",
    "radial_profile",
]

DEFAULT_BANDS = 8
CURVE_BINS_PER_NYQUIST = 64  # radial bins of the spectrum curves per unit of r (the curves run to sqrt(2))
WINDOW = "hann"
PEAK = 255.0


def check_n_bands(n_bands: int) -> int:
    if isinstance(n_bands, bool) or not isinstance(n_bands, int) or n_bands < 1:
        raise ValueError(f"n_bands must be a positive integer, got {n_bands!r}")
    return n_bands


@lru_cache(maxsize=16)
def _hann(h: int, w: int) -> torch.Tensor:
    def hann(n: int) -> torch.Tensor:  # below 3 samples a symmetric Hann window is all zeros: no window
        return (
            torch.hann_window(n, periodic=False, dtype=torch.float64)
            if n > 2
            else torch.ones(n, dtype=torch.float64)
        )

    win = torch.outer(hann(h), hann(w))
    return win / win.pow(2).mean().sqrt()


def hann_window_2d(h: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Separable symmetric Hann window (h, w), float64, scaled so that mean(w^2) = 1."""
    return _hann(int(h), int(w)).to(device)


def radial_frequency(h: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """|f| / f_Nyquist for every bin of an (h, w) FFT (torch.fft order): 0 at DC, 1 at Nyquist, sqrt(2) in corners."""
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=device)
    fx = torch.fft.fftfreq(w, dtype=torch.float64, device=device)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / 0.5


def band_index(r: torch.Tensor, n_bands: int) -> torch.Tensor:
    """Band of each radial frequency: floor(r * n_bands), the corners (r >= 1) in the last band."""
    return (r * check_n_bands(n_bands)).floor().long().clamp_(0, n_bands - 1)


def band_edges(n_bands: int) -> list[float]:
    """The n_bands + 1 edges in r; the last band also covers the corners up to sqrt(2)."""
    return [i / check_n_bands(n_bands) for i in range(n_bands + 1)]


def curve_frequencies(bins_per_nyquist: int = CURVE_BINS_PER_NYQUIST) -> list[float]:
    """Centres (in r) of the radial bins of the spectrum curves, [0, sqrt(2)]."""
    n = math.ceil(math.sqrt(2) * bins_per_nyquist)
    return [(i + 0.5) / bins_per_nyquist for i in range(n)]


def power_spectrum(planes: torch.Tensor, window: bool = True, remove_mean: bool = False) -> torch.Tensor:
    """|FFT2|^2 / (h w) of (..., h, w) planes, float64: its mean over bins is mean((w x)^2) (Parseval).

    window: multiply by ``hann_window_2d`` first; remove_mean: subtract each plane's mean first (for image
    spectra, whose DC is brightness; never for errors, whose mean is part of the MSE).
    """
    x = planes.double()
    if remove_mean:
        x = x - x.mean(dim=(-2, -1), keepdim=True)
    h, w = x.shape[-2:]
    if window:
        x = x * hann_window_2d(h, w, x.device)
    return torch.fft.fft2(x).abs().pow(2) / (h * w)


def radial_profile(power: torch.Tensor, bins_per_nyquist: int = CURVE_BINS_PER_NYQUIST) -> torch.Tensor:
    """Mean power per radial bin (width 1 / bins_per_nyquist in r, up to sqrt(2)): (..., h, w) -> (..., n_bins).

    Bins without an FFT bin (small images) are NaN.
    """
    h, w = power.shape[-2:]
    n = len(curve_frequencies(bins_per_nyquist))
    idx = (radial_frequency(h, w, power.device) * bins_per_nyquist).floor().long().clamp_(0, n - 1).flatten()
    flat = power.reshape(-1, h * w).double()
    sums = torch.zeros(flat.shape[0], n, dtype=torch.float64, device=power.device).index_add_(1, idx, flat)
    counts = torch.bincount(idx, minlength=n).to(torch.float64)
    out = sums / counts  # 0/0 = NaN for empty bins
    return out.reshape(*power.shape[:-2], n)


@dataclass
class BandErrors:
    """Per image (rows) and band (columns) error statistics of one batch; see the module docstring."""

    mse: torch.Tensor  # (N, B) band shares of the image's MSE; rows sum to ``total_mse``
    share: torch.Tensor  # (N, B) mse / total_mse (0 where the image has no error)
    psd: torch.Tensor  # (N, B) mean power per bin in the band (MSE units); NaN for a band with no FFT bin
    psnr: torch.Tensor  # (N, B) 10 log10(255^2 / mse); inf for a band without error, NaN for an empty band
    total_mse: torch.Tensor  # (N,)
    error_power: torch.Tensor  # (N, h, w) windowed error power, scaled so its mean over bins is total_mse


def _band_sums(power: torch.Tensor, n_bands: int) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = power.shape[-2:]
    idx = band_index(radial_frequency(h, w, power.device), n_bands).flatten()
    flat = power.reshape(-1, h * w)
    sums = torch.zeros(flat.shape[0], n_bands, dtype=torch.float64, device=power.device).index_add_(
        1, idx, flat
    )
    return sums, torch.bincount(idx, minlength=n_bands).to(torch.float64)


def band_errors(
    sr_plane: torch.Tensor, hr_plane: torch.Tensor, n_bands: int = DEFAULT_BANDS, window: bool = True
) -> BandErrors:
    """Band statistics of the error sr_plane - hr_plane, planes (N, 1, h, w) or (N, h, w) on [0, 255]."""
    check_n_bands(n_bands)
    if sr_plane.shape != hr_plane.shape:
        raise ValueError(f"planes differ in shape: {tuple(sr_plane.shape)} vs {tuple(hr_plane.shape)}")
    err = (sr_plane.double() - hr_plane.double()).reshape(-1, *sr_plane.shape[-2:])
    h, w = err.shape[-2:]
    mse = err.pow(2).mean(dim=(-2, -1))
    power = power_spectrum(err, window=window)
    # an error only where the window is 0 (the outermost pixels) is invisible windowed: use the plain spectrum
    hidden = (power.sum(dim=(-2, -1)) == 0) & (mse > 0)
    if window and bool(hidden.any()):
        power[hidden] = power_spectrum(err[hidden], window=False)
    sums, counts = _band_sums(power, n_bands)
    total = sums.sum(dim=1, keepdim=True)
    share = torch.where(total > 0, sums / total.clamp_min(1e-300), torch.zeros_like(sums))
    band_mse = share * mse[:, None]
    psd = band_mse * (h * w) / counts  # NaN where a band holds no bin (0 / 0)
    psnr = 10.0 * torch.log10(PEAK**2 / band_mse)  # inf where band_mse == 0
    psnr = torch.where(counts > 0, psnr, torch.full_like(psnr, math.nan))
    scale = torch.where(total[:, 0] > 0, mse * (h * w) / total[:, 0].clamp_min(1e-300), torch.zeros_like(mse))
    return BandErrors(
        mse=band_mse, share=share, psd=psd, psnr=psnr, total_mse=mse, error_power=power * scale[:, None, None]
    )


def image_band_errors(
    sr01: torch.Tensor,
    hr01: torch.Tensor,
    shave_border: int,
    n_bands: int = DEFAULT_BANDS,
    gray_gt: str = "gray",
) -> tuple[BandErrors, torch.Tensor]:
    """(band errors, scored HR planes) of [0, 1] float batches (N, C, H, W): the metric's planes (8-bit, Y, shave;
    a one-channel ground truth scored as ``gray_gt`` says, as in SRMetrics)."""
    sr_c, hr_c = scored_planes(sr01, hr01, shave_border, gray_gt)
    return band_errors(sr_c, hr_c, n_bands), hr_c
