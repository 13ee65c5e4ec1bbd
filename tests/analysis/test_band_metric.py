"""BandPSNR: the per-band validation metric is the mean over images of each image's band PSNR, summed per image
(DDP-correct: ranks' states add up to the one-process result)."""

from __future__ import annotations

import pytest
import torch

from sr_lit.analysis.band_metric import BandPSNR
from sr_lit.analysis.spectrum import image_band_errors


def _batch(seed: int, n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(n, 3, 40, 48, generator=g)
    sr = (hr + 0.03 * torch.randn(n, 3, 40, 48, generator=g)).clamp(0, 1)
    return sr, hr


def test_band_psnr_is_the_mean_of_per_image_band_psnr() -> None:
    metric = BandPSNR(scale=2, n_bands=6)
    batches = [_batch(0), _batch(1, n=2)]
    for sr, hr in batches:
        metric.update(sr, hr)
    per_image = torch.cat([image_band_errors(sr, hr, 2, 6)[0].psnr for sr, hr in batches])
    assert per_image.shape == (5, 6)
    assert torch.allclose(metric.compute(), per_image.mean(dim=0), rtol=1e-12)


def test_states_of_two_ranks_add_up_to_one_process() -> None:
    """What DDP's sum-reduction does: rank A (3 images) + rank B (2 images) = all 5 on one process. A mean of the
    ranks' means (what sync_dist=True would log) would weight B's images 1.5x."""
    (sr_a, hr_a), (sr_b, hr_b) = _batch(0), _batch(1, n=2)
    whole, rank_a, rank_b = BandPSNR(2, 4), BandPSNR(2, 4), BandPSNR(2, 4)
    whole.update(torch.cat([sr_a, sr_b]), torch.cat([hr_a, hr_b]))
    rank_a.update(sr_a, hr_a)
    rank_b.update(sr_b, hr_b)
    rank_a.merge_state(rank_b)  # torchmetrics applies dist_reduce_fx ("sum") to the two states
    assert torch.allclose(rank_a.compute(), whole.compute(), rtol=1e-12)


def test_sums_stay_float64_when_the_module_is_cast_to_bf16() -> None:
    metric = BandPSNR(2, 4).to(torch.bfloat16)
    metric.update(*_batch(2))
    assert metric.band_psnr_sum.dtype == torch.float64
    metric.reset()
    assert metric.band_psnr_sum.dtype == torch.float64


@pytest.mark.filterwarnings("ignore:The ..compute.. method:UserWarning")
def test_no_image_gives_nan_and_bad_band_counts_are_refused() -> None:
    assert torch.isnan(BandPSNR(2, 3).compute()).all()
    with pytest.raises(ValueError, match="n_bands"):
        BandPSNR(2, 0)
