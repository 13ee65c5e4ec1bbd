"""Benchmark evaluation shared by `sr-eval` and the end-of-training `metrics.json` (one code path, same numbers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from sr_lit.metrics.sr_metrics import SRMetrics

UpscaleFn = Callable[[torch.Tensor], torch.Tensor]


def as_upscale_fn(model: nn.Module | UpscaleFn, device: str | torch.device = "cpu") -> UpscaleFn:
    """A network (N,3,h,w)->(N,3,sh,sw) becomes a function of one (3,h,w) image in [0,1]."""
    if not isinstance(model, nn.Module):
        return model
    model.eval()

    def fn(lr: torch.Tensor) -> torch.Tensor:
        return model(lr[None].to(device))[0]

    return fn


@torch.inference_mode()
def evaluate_datasets(
    model: nn.Module | UpscaleFn,
    datasets: Mapping[str, Any],
    scale: int,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Y-PSNR/SSIM per set, one image at a time (whole images: sizes differ). Returns {set: {psnr_y, ssim_y, n_images}}."""
    upscale = as_upscale_fn(model, device)
    results: dict[str, dict[str, float]] = {}
    for name, dataset in datasets.items():
        metric = SRMetrics(scale=scale)
        items = range(len(dataset))
        if progress:
            from tqdm.auto import tqdm

            items = tqdm(items, desc=name, unit="img", leave=False)
        for i in items:
            item = dataset[i]
            sr = upscale(item["lr"]).float().clamp(0, 1).cpu()
            metric.update(sr[None], item["hr"][None].float())
        values = metric.compute()
        results[name] = {k: float(v) for k, v in values.items()}
    return results
