"""SRMetrics / evaluate_pair: per-image averaging, gray ground truth, SSIM vs torchmetrics, DDP merge."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim
from torchmetrics.utilities.data import dim_zero_sum

from sr_lit.metrics import SRMetrics, evaluate_pair, psnr_per_image, quantize, rgb_to_y, ssim_per_image


def _images(n: int, c: int = 3, h: int = 40, w: int = 36, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr = torch.randint(0, 256, (n, c, h, w), generator=g).float() / 255
    noise = torch.randn(n, 1, 1, 1, generator=g).abs() * 0.05 + 0.01  # different MSE per image
    sr = (hr + torch.randn(hr.shape, generator=g) * noise).clamp(0, 1)
    return sr, hr


def test_psnr_is_averaged_per_image_not_pooled() -> None:
    sr, hr = _images(2)
    m = SRMetrics(scale=2)
    m.update(sr, hr)
    ys, yh = (
        rgb_to_y(quantize(sr.double()))[..., 2:-2, 2:-2],
        rgb_to_y(quantize(hr.double()))[..., 2:-2, 2:-2],
    )
    per = [10 * math.log10(255**2 / float(((ys[i] - yh[i]) ** 2).mean())) for i in range(2)]
    pooled = 10 * math.log10(255**2 / float(((ys - yh) ** 2).mean()))
    got = float(m.compute()["psnr_y"])
    assert got == pytest.approx(sum(per) / 2, abs=1e-9)
    assert abs(got - pooled) > 0.05


def test_ssim_matches_torchmetrics_valid_region() -> None:
    x = torch.rand(3, 1, 40, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 255
    y = (
        x + torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 20
    ).clamp(0, 255)
    _, full = tm_ssim(
        y,
        x,
        gaussian_kernel=True,
        sigma=1.5,
        kernel_size=11,
        data_range=255.0,
        reduction="none",
        return_full_image=True,
    )
    # torchmetrics reflect-pads; MATLAB's 'valid' region is its map without 5 px per side.
    ref = full[..., 5:-5, 5:-5].mean(dim=(1, 2, 3))
    assert torch.allclose(ssim_per_image(y, x), ref, atol=1e-10, rtol=0)
    assert torch.allclose(ssim_per_image(x, x), torch.ones(3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_quantisation_happens_before_scoring() -> None:
    _, hr = _images(1)
    sr = hr + 0.4 / 255  # rounds back onto hr's 8-bit grid
    psnr, ssim = evaluate_pair(sr, hr, 2)
    assert psnr == math.inf and ssim == pytest.approx(1.0, abs=1e-12)


def test_gray_ground_truth_scored_on_gray_values() -> None:
    sr1, hr1 = _images(1, c=1)
    sr3 = sr1.expand(1, 3, -1, -1)  # the model sees and returns replicated gray
    psnr, ssim = evaluate_pair(sr3, hr1, 3)
    direct = psnr_per_image(quantize(sr1.double())[..., 3:-3, 3:-3], quantize(hr1.double())[..., 3:-3, 3:-3])
    assert psnr == pytest.approx(float(direct), abs=1e-9)
    assert evaluate_pair(sr1, hr1, 3) == pytest.approx((psnr, ssim), abs=1e-12)
    # Y of replicated gray shrinks errors by 219/255: the +1.32 dB that the protocol forbids for bridge.
    psnr_y, _ = evaluate_pair(sr3, hr1.expand(1, 3, -1, -1), 3)
    assert psnr_y - psnr == pytest.approx(20 * math.log10(255 / 219), abs=1e-3)


def test_evaluate_pair_matches_metric() -> None:
    sr, hr = _images(3)
    m = SRMetrics(scale=4, keep_per_image=True)
    m.update(sr, hr)
    pairs = [evaluate_pair(sr[i], hr[i], 4) for i in range(3)]
    p, s = m.per_image()
    assert torch.allclose(p, torch.tensor([a for a, _ in pairs], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(s, torch.tensor([b for _, b in pairs], dtype=torch.float64), atol=1e-12)


def test_ddp_merge_counts_each_image_once() -> None:
    sr, hr = _images(5, seed=3)
    full = SRMetrics(scale=2)
    for i in range(5):  # batch size 1, like a benchmark loader
        full.update(sr[i : i + 1], hr[i : i + 1])
    rank0, rank1 = SRMetrics(scale=2), SRMetrics(scale=2)
    rank0.update(sr[:2], hr[:2])  # uneven batches on purpose: a mean of batch means would be wrong
    rank0.update(sr[2:3], hr[2:3])
    rank1.update(sr[3:], hr[3:])
    # What the DDP sync does with dist_reduce_fx="sum": add the states of all ranks.
    rank0.merge_state(rank1)
    merged, ref = rank0.compute(), full.compute()
    assert int(merged["n_images"]) == 5
    assert float(merged["psnr_y"]) == pytest.approx(float(ref["psnr_y"]), abs=1e-9)
    assert float(merged["ssim_y"]) == pytest.approx(float(ref["ssim_y"]), abs=1e-9)
    # And the states really are declared as sums, so the real all-reduce does the same thing.
    assert all(full._reductions[k] is dim_zero_sum for k in ("psnr_sum", "ssim_sum", "n_images"))


def test_reset_and_empty_compute() -> None:
    m = SRMetrics(scale=2)
    sr, hr = _images(2)
    m.update(sr, hr)
    m.reset()
    with pytest.warns(UserWarning):
        res = m.compute()
    assert int(res["n_images"]) == 0 and math.isnan(float(res["psnr_y"]))


def test_shape_errors_name_both_shapes() -> None:
    m = SRMetrics(scale=2)
    with pytest.raises(ValueError, match=r"\(1, 3, 40, 36\).*\(1, 3, 42, 36\)"):
        m.update(torch.zeros(1, 3, 40, 36), torch.zeros(1, 3, 42, 36))
    with pytest.raises(ValueError, match="RGB hr"):
        m.update(torch.zeros(1, 1, 40, 36), torch.zeros(1, 3, 40, 36))
    with pytest.raises(ValueError, match="float"):
        m.update(torch.zeros(1, 3, 40, 36, dtype=torch.uint8), torch.zeros(1, 3, 40, 36))
    with pytest.raises(ValueError, match="scale"):
        SRMetrics(scale=0)


def test_sums_stay_float64_when_the_module_is_cast() -> None:
    # Lightning's bf16-true casts the LightningModule with .to(torch.bfloat16); the metric sums must not follow
    g = torch.Generator().manual_seed(0)
    ref, cast = SRMetrics(scale=2), SRMetrics(scale=2).to(torch.bfloat16)
    assert cast.psnr_sum.dtype == cast.ssim_sum.dtype == torch.float64
    for _ in range(30):
        hr = torch.rand(1, 3, 24, 24, generator=g)
        sr = (hr + 0.01 * torch.randn(1, 3, 24, 24, generator=g)).clamp(0, 1)
        ref.update(sr, hr)
        cast.update(sr, hr)
    assert cast.compute()["psnr_y"].item() == ref.compute()["psnr_y"].item()
    cast.reset()
    assert cast.psnr_sum.dtype == torch.float64
