"""The bicubic baseline row of the SR tables: MATLAB bicubic x``scale`` of the LR, scored by SRMetrics."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from sr_lit.data.imresize import bicubic_upscale
from sr_lit.metrics.sr_metrics import SRMetrics

__all__ = ["bicubic_baseline"]


def bicubic_baseline(
    pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], scale: int, border: str = "symmetric"
) -> dict[str, float]:
    """Mean PSNR/SSIM (Y, shave = scale) of bicubic upscaling over (lr_uint8, hr_uint8) (C, H, W) pairs.

    Upscaling stays on the uint8 grid (rounded per pass, as MATLAB), HR is cropped top-left to LR*scale.
    """
    metric = SRMetrics(scale)
    for lr, hr in pairs:
        if lr.dtype != torch.uint8 or hr.dtype != torch.uint8:
            raise ValueError(f"lr and hr must be uint8, got {lr.dtype}, {hr.dtype}")
        sr = bicubic_upscale(lr, scale, border=border)
        h, w = sr.shape[-2:]
        if hr.shape[-2] < h or hr.shape[-1] < w:
            raise ValueError(f"hr {tuple(hr.shape)} is smaller than lr*scale {tuple(sr.shape)}")
        hr = hr[..., :h, :w]
        metric.update(sr.unsqueeze(0).float() / 255.0, hr.unsqueeze(0).float() / 255.0)
    res = metric.compute()
    return {"psnr_y": float(res["psnr_y"]), "ssim_y": float(res["ssim_y"]), "n_images": int(res["n_images"])}
