"""8-bit quantisation, MATLAB rgb2ycbcr luma, shaving; and why kornia's YCbCr is the wrong one."""

from __future__ import annotations

import math

import kornia
import pytest
import torch

from sr_lit.metrics.sr_metrics import psnr_per_image
from sr_lit.metrics.y_channel import quantize, rgb_to_y, shave


def test_quantize_rounds_half_up_and_clamps() -> None:
    x = torch.tensor([0.5, 2.5, 3.5, 254.4, 254.5], dtype=torch.float64) / 255
    assert quantize(x).tolist() == [1.0, 3.0, 4.0, 254.0, 255.0]
    assert torch.round(x * 255).tolist()[:2] == [0.0, 2.0]  # half-to-even: what we must avoid
    assert quantize(torch.tensor([-0.2, 1.3])).tolist() == [0.0, 255.0]
    u8 = torch.arange(256, dtype=torch.float32)
    assert torch.equal(quantize(u8 / 255), u8)  # float32 round trip of every 8-bit value is exact


def test_rgb_to_y_matlab_values() -> None:
    rgb = torch.tensor(
        [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.float64
    )
    y = rgb_to_y(rgb.T.reshape(1, 3, 1, 5)).flatten()
    expected = torch.tensor([16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966], dtype=torch.float64)
    assert torch.allclose(y, expected, atol=1e-9, rtol=0)
    assert rgb_to_y(torch.zeros(3, 4, 5)).shape == (1, 4, 5)
    with pytest.raises(ValueError, match="RGB"):
        rgb_to_y(torch.zeros(1, 1, 4, 4))


def test_kornia_full_range_y_costs_1_32_db() -> None:
    # Studio swing Y - 16 = 219/255 * full-range Y (65.481 = 219 * 0.299, ...), so the errors shrink
    # by 219/255 and kornia's form scores 20 log10(255/219) = 1.3228 dB lower on every image.
    g = torch.Generator().manual_seed(0)
    hr = torch.randint(0, 256, (4, 3, 32, 32), generator=g).double()
    sr = (hr + torch.randint(-12, 13, hr.shape, generator=g)).clamp(0, 255)
    ours = psnr_per_image(rgb_to_y(sr), rgb_to_y(hr))
    y_k = kornia.color.rgb_to_ycbcr  # full range, [0, 1] in and out
    theirs = psnr_per_image(y_k(sr / 255)[:, :1] * 255, y_k(hr / 255)[:, :1] * 255)
    gap = 20 * math.log10(255 / 219)
    assert torch.allclose(ours - theirs, torch.full_like(ours, gap), atol=1e-4, rtol=0)


def test_shave() -> None:
    x = torch.arange(2 * 10 * 12).reshape(2, 1, 10, 12)
    assert shave(x, 3).shape == (2, 1, 4, 6)
    assert torch.equal(shave(x, 3), x[..., 3:7, 3:9])
    assert shave(x, 0) is x
    with pytest.raises(ValueError, match="shave"):
        shave(x, 5)
