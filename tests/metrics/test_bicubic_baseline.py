"""The published bicubic rows (RCAN Table 3) reproduced through our whole evaluation pipeline."""

from __future__ import annotations

import pytest

from sr_lit.metrics.baseline import bicubic_baseline
from tests._shared import benchmark_triplets

# RCAN (ECCV 2018) Table 3, BI bicubic rows: PSNR dB / SSIM on Y, shave = scale.
PUBLISHED = {
    ("Set5", 2): (33.66, 0.9299),
    ("Set5", 3): (30.39, 0.8682),
    ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688),
    ("Set14", 3): (27.55, 0.7742),
    ("Set14", 4): (26.00, 0.7027),
}
# Measured with this code on the official LR files: Set5 33.673/0.9303, 30.403/0.8689, 28.429/0.8111;
# Set14 30.230/0.8691, 27.537/0.7745, 25.994/0.7029 (same as the data README's own implementation).


@pytest.mark.data
@pytest.mark.parametrize(("set_name", "scale"), list(PUBLISHED))
def test_bicubic_baseline_matches_published(set_name: str, scale: int) -> None:
    triplets = benchmark_triplets(set_name, scale)
    res = bicubic_baseline([(lr, hr) for _, hr, lr in triplets], scale)
    psnr, ssim = PUBLISHED[(set_name, scale)]
    assert res["n_images"] == len(triplets)
    assert res["psnr_y"] == pytest.approx(psnr, abs=0.02), res
    assert res["ssim_y"] == pytest.approx(ssim, abs=0.002), res
