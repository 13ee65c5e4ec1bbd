"""A few LR / SR / HR crops per validation, side by side, for W&B or TensorBoard (other loggers: skipped)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F


def sr_crop_strip(
    lr: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor, scale: int, size: int = 96
) -> torch.Tensor:
    """One (3, size, 3*size) strip: nearest-upscaled LR | SR | HR, centre crops of the first image in the batch."""
    if hr.shape[1] == 1:
        hr = hr.expand(-1, 3, -1, -1)
    h, w = sr.shape[-2:]
    size = min(size - size % scale, h - h % scale, w - w % scale)
    top = (h // 2 - size // 2) // scale * scale
    left = (w // 2 - size // 2) // scale * scale
    crop = (slice(top, top + size), slice(left, left + size))
    lr_crop = lr[0, :, top // scale : (top + size) // scale, left // scale : (left + size) // scale]
    lr_up = F.interpolate(lr_crop[None], scale_factor=scale, mode="nearest")[0]
    return (
        torch.cat([lr_up, sr[0][:, crop[0], crop[1]], hr[0][:, crop[0], crop[1]]], dim=-1).clamp(0, 1).cpu()
    )


def log_sr_crops(
    loggers: Sequence[Any],
    lr: torch.Tensor,
    sr: torch.Tensor,
    hr: torch.Tensor,
    scale: int,
    step: int,
    n: int,
) -> None:
    if n <= 0 or not loggers:
        return
    strip = sr_crop_strip(lr.float(), sr.float(), hr.float(), scale)
    for logger in loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            import numpy as np

            img = (strip.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            logger.log_image(key="val/crops", images=[img], caption=["LR (nearest) | SR | HR"], step=step)
        elif kind == "TensorBoardLogger":
            logger.experiment.add_image("val/crops", strip, global_step=step)
