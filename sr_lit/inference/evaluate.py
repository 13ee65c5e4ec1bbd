"""Benchmark evaluation shared by `sr-eval` and the end-of-training `metrics.json` (one code path, same numbers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from sr_lit.metrics.sr_metrics import SRMetrics

UpscaleFn = Callable[[torch.Tensor], torch.Tensor]
# on_image(set_name, item, sr): called with every scored image (item: the dataset's dict; sr: (C, H, W) in [0, 1])
ImageObserver = Callable[[str, Mapping[str, Any], torch.Tensor], None]


def as_upscale_fn(model: nn.Module | UpscaleFn, device: str | torch.device = "cpu") -> UpscaleFn:
    """A network (N,3,h,w)->(N,3,sh,sw) becomes a function of one (3,h,w) image in [0,1]; an `Upscaler`
    (tiling, self-ensemble, bicubic baseline) already is one."""
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
    gray_gt: str = "gray",
    on_image: ImageObserver | None = None,
) -> dict[str, dict[str, Any]]:
    """Y-PSNR/SSIM per set, one whole image at a time (sizes differ), DESIGN 1.5 protocol via SRMetrics;
    ``gray_gt``: how a one-channel ground truth is scored (``sr_lit.metrics.sr_metrics.GRAY_GT_MODES``).

    Returns {set: {psnr_y, ssim_y, n_images, per_image: {name: {psnr_y, ssim_y}}}}. ``on_image`` sees every
    SR output as scored (the spectral analysis of sr_lit.analysis hooks in here: no second inference pass).
    """
    upscale = as_upscale_fn(model, device)
    results: dict[str, dict[str, Any]] = {}
    for set_name, dataset in datasets.items():
        # a single-process evaluation: never sync (after a DDP fit, rank 0 runs this alone while the process
        # group is still up; a sync would wait for ranks that have exited)
        metric = SRMetrics(scale=scale, keep_per_image=True, gray_gt=gray_gt, sync_on_compute=False)
        names: list[str] = []
        items = range(len(dataset))
        if progress:
            from tqdm.auto import tqdm

            items = tqdm(items, desc=f"{set_name} x{scale}", unit="img")
        for i in items:
            item = dataset[i]
            sr = upscale(item["lr"]).float().clamp(0, 1).cpu()
            hr = item["hr"].float()
            if sr.shape[-2:] != hr.shape[-2:]:
                raise ValueError(
                    f"{set_name}/{item['name']}: SR {tuple(sr.shape[-2:])} != HR {tuple(hr.shape[-2:])}"
                )
            metric.update(sr[None], hr[None])
            names.append(str(item["name"]))
            if on_image is not None:
                on_image(set_name, item, sr)
        scores = metric.compute()
        psnr, ssim = metric.per_image()
        results[set_name] = {
            "psnr_y": float(scores["psnr_y"]),
            "ssim_y": float(scores["ssim_y"]),
            "n_images": int(scores["n_images"]),
            "per_image": {
                n: {"psnr_y": float(p), "ssim_y": float(s)}
                for n, p, s in zip(names, psnr.tolist(), ssim.tolist())
            },
        }
    return results
