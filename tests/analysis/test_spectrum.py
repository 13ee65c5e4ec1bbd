"""Spectral band errors (sr_lit.analysis.spectrum) on synthetic images with known spectra."""

from __future__ import annotations

import math

import pytest
import torch

from sr_lit.analysis.spectrum import band_edges, band_errors, image_band_errors, radial_frequency
from sr_lit.metrics.sr_metrics import evaluate_pair


def _grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )


@pytest.mark.parametrize(
    ("band", "angle", "n_bands", "size"),
    [(0, 0.0, 8, (256, 256)), (2, 0.4, 8, (200, 256)), (5, 1.1, 8, (256, 192)), (7, 0.0, 8, (256, 256)),
     (3, 0.7, 4, (160, 160)), (12, 0.3, 16, (256, 256))],
)  # fmt: skip
def test_a_sinusoid_error_lands_in_its_band(
    band: int, angle: float, n_bands: int, size: tuple[int, int]
) -> None:
    """An error cos(2 pi f . x) with |f| / Nyquist in the middle of band k puts >= 95 % of its energy in band k."""
    h, w = size
    r = (band + 0.5) / n_bands  # radial frequency / Nyquist
    fy, fx = 0.5 * r * math.sin(angle), 0.5 * r * math.cos(angle)  # cycles per pixel
    yy, xx = _grid(h, w)
    error = 7.0 * torch.cos(2 * math.pi * (fy * yy + fx * xx) + 0.4)
    hr = torch.full((1, 1, h, w), 120.0, dtype=torch.float64)
    be = band_errors(hr + error, hr, n_bands)
    assert be.share[0, band] >= 0.95, be.share
    # the bands split the image's MSE exactly (7^2 / 2 for a sinusoid of amplitude 7)
    assert float(be.mse.sum()) == pytest.approx(float(error.pow(2).mean()), rel=1e-12)
    assert float(error.pow(2).mean()) == pytest.approx(24.5, rel=0.01)


def test_identical_images_have_zero_error_energy_and_no_division_error() -> None:
    sr = torch.rand(2, 3, 64, 80, generator=torch.Generator().manual_seed(1))
    be, _ = image_band_errors(sr, sr.clone(), shave_border=2, n_bands=8)
    assert torch.equal(be.mse, torch.zeros(2, 8, dtype=torch.float64))
    assert torch.equal(be.share, torch.zeros(2, 8, dtype=torch.float64))
    assert torch.equal(be.total_mse, torch.zeros(2, dtype=torch.float64))
    assert torch.isinf(be.psnr).all() and (be.psnr > 0).all()  # infinite PSNR, reported as such
    assert not torch.isnan(be.psd).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_white_noise_error_has_a_flat_band_profile(seed: int) -> None:
    """White noise has the same power at every frequency: the band PSD is within 10 % of the MSE in every band."""
    noise = 6.0 * torch.randn(
        1, 1, 512, 512, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    be = band_errors(noise, torch.zeros_like(noise), n_bands=8)
    profile = be.psd[0] / be.total_mse[0]
    assert torch.all((profile - 1).abs() < 0.10), profile
    # ... and the band shares follow the number of frequency bins per band (rings grow with radius)
    r = radial_frequency(512, 512)
    bins = torch.bincount((r * 8).floor().long().clamp(max=7).flatten(), minlength=8).double()
    assert torch.allclose(be.share[0], bins / bins.sum(), atol=0.01)


def test_bands_sum_to_the_metric_mse_on_the_metric_crop() -> None:
    """image_band_errors scores the metric's plane (8-bit, Y, shave): 10 log10(255^2 / sum of band MSEs) is the
    PSNR-Y that evaluate_pair reports, and an error confined to the shaved border is no error at all."""
    g = torch.Generator().manual_seed(3)
    hr = torch.rand(3, 60, 70, generator=g)
    sr = (hr + 0.05 * torch.randn(3, 60, 70, generator=g)).clamp(0, 1)
    psnr, _ = evaluate_pair(sr, hr, scale=3)
    be, _ = image_band_errors(sr[None], hr[None], shave_border=3)
    assert 10 * math.log10(255.0**2 / float(be.mse.sum())) == pytest.approx(psnr, abs=1e-9)
    border_only = hr.clone()
    border_only[:, :3] = 1 - border_only[:, :3]
    border_only[:, :, -3:] = 0.0
    be, _ = image_band_errors(border_only[None], hr[None], shave_border=3)
    assert float(be.total_mse[0]) == 0.0


def test_band_counts_are_configurable_and_nest() -> None:
    """16 bands refine 8: adjacent pairs of the 16 add up to the 8 (same edges, same energy)."""
    g = torch.Generator().manual_seed(4)
    hr = 255 * torch.rand(1, 1, 96, 128, generator=g, dtype=torch.float64)
    sr = hr + 10 * torch.randn(1, 1, 96, 128, generator=g, dtype=torch.float64)
    fine, coarse = band_errors(sr, hr, 16), band_errors(sr, hr, 8)
    assert torch.allclose(fine.mse.view(1, 8, 2).sum(-1), coarse.mse, rtol=1e-12)
    assert band_edges(4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match="n_bands"):
        band_errors(sr, hr, 0)


def test_a_perfect_model_is_written_as_null_band_psnr_in_strict_json() -> None:
    """Through the evaluation path: SR == HR gives zero band error and null (infinite) band PSNR, and the record
    is strict JSON (no Infinity/NaN)."""
    import json

    from sr_lit.analysis.evaluation import evaluate_with_spectra
    from sr_lit.inference.predictor import Upscaler

    bicubic = Upscaler.bicubic(2)
    g = torch.Generator().manual_seed(5)
    items = []
    for name in ("a", "b"):
        lr = torch.floor(255 * torch.rand(3, 24, 30, generator=g)) / 255
        items.append({"lr": lr, "hr": bicubic(lr), "name": name})  # HR = what bicubic makes of the LR
    res = evaluate_with_spectra(bicubic, {"S": items}, scale=2, spectrum=True, n_bands=4)["S"]
    spec = res["spectrum"]
    assert spec["model"]["band_mse"] == [0.0] * 4 and spec["model"]["band_psnr_y"] == [None] * 4
    assert res["per_image"]["a"]["band_psnr_y"] == [None] * 4
    json.dumps(spec, allow_nan=False)


@pytest.mark.parametrize("gray_gt", ["gray", "rgb"])
def test_bands_follow_the_metrics_gray_scoring(gray_gt: str) -> None:
    """A one-channel ground truth (Set14 `bridge`): the bands split the MSE of the plane the metric scores under
    either gray_gt convention, so they add up to that convention's PSNR."""
    from sr_lit.metrics.sr_metrics import psnr_per_image, scored_planes

    g = torch.Generator().manual_seed(6)
    hr = torch.rand(1, 1, 50, 40, generator=g)
    sr = (hr.expand(1, 3, 50, 40) + 0.04 * torch.randn(1, 3, 50, 40, generator=g)).clamp(0, 1)
    be, _ = image_band_errors(sr, hr, shave_border=2, gray_gt=gray_gt)
    psnr = float(psnr_per_image(*scored_planes(sr, hr, 2, gray_gt))[0])
    assert 10 * math.log10(255.0**2 / float(be.mse.sum())) == pytest.approx(psnr, abs=1e-9)
