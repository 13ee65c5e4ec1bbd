"""How a one-channel ground truth is scored (SRMetrics gray_gt): its gray values, or Y of its RGB replica."""

from __future__ import annotations

import pytest
import torch

from sr_lit.metrics.sr_metrics import SRMetrics


def _scores(sr: torch.Tensor, hr: torch.Tensor, gray_gt: str) -> tuple[float, float]:
    m = SRMetrics(scale=2, gray_gt=gray_gt)
    m.update(sr, hr)
    r = m.compute()
    return float(r["psnr_y"]), float(r["ssim_y"])


def test_rgb_mode_equals_scoring_the_replicated_ground_truth() -> None:
    gen = torch.Generator().manual_seed(0)
    hr_gray = torch.rand(2, 1, 24, 20, generator=gen)
    sr = (hr_gray + 0.05 * torch.randn(2, 3, 24, 20, generator=gen)).clamp(0, 1)
    replicated = _scores(sr, hr_gray.expand(-1, 3, -1, -1).contiguous(), "gray")  # RGB hr: Y either way
    assert _scores(sr, hr_gray, "rgb") == replicated
    gray = _scores(sr, hr_gray, "gray")
    assert gray != replicated  # the two protocols differ on gray images ...
    rgb_hr = torch.rand(2, 3, 24, 20, generator=gen)
    assert _scores(sr, rgb_hr, "gray") == _scores(sr, rgb_hr, "rgb")  # ... and only there


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="gray_gt must be one of gray, rgb"):
        SRMetrics(scale=2, gray_gt="y")
