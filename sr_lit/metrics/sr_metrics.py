"""PSNR/SSIM on the Y channel exactly as the published SR tables compute them (DESIGN 1.5).

Per image: quantise to 8 bit, Y (or gray values for a one-channel ground truth), shave ``scale``
pixels, PSNR with peak 255, SSIM (Wang et al.: 11x11 Gaussian, sigma 1.5, 'valid' region).
Scores are averaged over images, never pooled over pixels. ``SRMetrics`` keeps per-image *sums*
and an image count with ``dist_reduce_fx="sum"``, so under DDP each image counts exactly once
as long as the sampler does not pad (DESIGN P3).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torchmetrics import Metric

from sr_lit.metrics.y_channel import quantize, rgb_to_y, shave

__all__ = [
    "GRAY_GT_MODES",
    "SRMetrics",
    "Float64Sums",
    "evaluate_pair",
    "psnr_per_image",
    "ssim_per_image",
    "eval_channel",
    "scored_planes",
]

# How a one-channel ground truth is scored: `gray` its gray values (the published bicubic rows; RCAN's
# Evaluate_PSNR_SSIM.m on a gray file), `rgb` replicated to RGB, then Y (the EDSR-PyTorch and RCAN data loaders, and
# RCAN's Prepare_TestData, replicate gray images: Set14 `bridge` bicubic x2 +1.32 dB, the Set14 mean +0.09 dB).
GRAY_GT_MODES = ("gray", "rgb")

_PEAK = 255.0
_K1, _K2 = 0.01, 0.03
_WIN, _SIGMA = 11, 1.5


def eval_channel(
    sr255: torch.Tensor, hr255: torch.Tensor, gray_gt: str = "gray"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The single channel that is scored: Y for RGB ground truth, gray values for gray ground truth.

    A one-channel ground truth (Set14 ``bridge``) is compared on its gray values, as RCAN's
    Evaluate_PSNR_SSIM.m does; the SR's gray value is its channel mean (exact for replicated gray).
    Scoring Y of the replicated gray instead (``gray_gt="rgb"``, what the EDSR/RCAN loaders do) adds
    ~0.09 dB to Set14.
    """
    if gray_gt not in GRAY_GT_MODES:
        raise ValueError(f"gray_gt must be one of {', '.join(GRAY_GT_MODES)}; got {gray_gt!r}")
    if gray_gt == "rgb" and hr255.shape[1] == 1:
        hr255 = hr255.expand(-1, 3, -1, -1)
    c_sr, c_hr = sr255.shape[1], hr255.shape[1]
    if c_hr == 3:
        if c_sr != 3:
            raise ValueError(f"RGB hr needs an RGB sr, got sr {tuple(sr255.shape)}, hr {tuple(hr255.shape)}")
        return rgb_to_y(sr255), rgb_to_y(hr255)
    if c_hr == 1 and c_sr in (1, 3):
        return sr255.mean(dim=1, keepdim=True), hr255
    raise ValueError(f"channels must be 1 or 3, got sr {tuple(sr255.shape)}, hr {tuple(hr255.shape)}")


def psnr_per_image(x: torch.Tensor, y: torch.Tensor, peak: float = _PEAK) -> torch.Tensor:
    """PSNR of each image in a batch (N, C, H, W) -> (N,); inf where the images are identical."""
    mse = (x.double() - y.double()).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(peak**2 / mse)


@lru_cache(maxsize=8)
def _gauss_1d(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # fspecial('gaussian', 11, 1.5) is the outer product of this normalised 1-D window.
    r = torch.arange(_WIN, dtype=torch.float64) - (_WIN - 1) / 2
    g = torch.exp(-(r**2) / (2 * _SIGMA**2))
    return (g / g.sum()).to(device=device, dtype=dtype)


def _filter_valid(x: torch.Tensor) -> torch.Tensor:
    """Separable 11x11 Gaussian, 'valid' region (no padding), on (N, 1, H, W)."""
    g = _gauss_1d(x.device, x.dtype)
    x = F.conv2d(x, g.view(1, 1, _WIN, 1))
    return F.conv2d(x, g.view(1, 1, 1, _WIN))


def ssim_per_image(x: torch.Tensor, y: torch.Tensor, peak: float = _PEAK) -> torch.Tensor:
    """Wang et al. 2004 SSIM (MATLAB ssim_index) of each single-channel image (N, 1, H, W) -> (N,)."""
    if x.shape[1] != 1 or x.shape != y.shape:
        raise ValueError(f"need two equal (N, 1, H, W) tensors, got {tuple(x.shape)}, {tuple(y.shape)}")
    if min(x.shape[-2:]) < _WIN:
        raise ValueError(f"SSIM needs images of at least {_WIN}x{_WIN} after shaving, got {tuple(x.shape)}")
    x, y = x.double(), y.double()
    c1, c2 = (_K1 * peak) ** 2, (_K2 * peak) ** 2
    mu_x, mu_y = _filter_valid(x), _filter_valid(y)
    sxx = _filter_valid(x * x) - mu_x**2
    syy = _filter_valid(y * y) - mu_y**2
    sxy = _filter_valid(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).mean(dim=(1, 2, 3))


def _check_pair(sr: torch.Tensor, hr: torch.Tensor) -> None:
    if sr.ndim != 4 or hr.ndim != 4:
        raise ValueError(f"sr and hr must be (N, C, H, W), got sr {tuple(sr.shape)}, hr {tuple(hr.shape)}")
    if sr.shape[0] != hr.shape[0] or sr.shape[-2:] != hr.shape[-2:]:
        # The caller crops HR to LR * scale; silently cropping here would hide off-by-one bugs.
        raise ValueError(
            f"sr and hr must have the same batch and spatial size, got sr {tuple(sr.shape)}, hr {tuple(hr.shape)}"
        )
    if not (sr.is_floating_point() and hr.is_floating_point()):
        raise ValueError(f"sr and hr must be float in [0, 1], got dtypes {sr.dtype}, {hr.dtype}")


def scored_planes(
    sr: torch.Tensor, hr: torch.Tensor, shave_border: int, gray_gt: str = "gray"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (N, 1, h, w) float64 planes on [0, 255] that PSNR/SSIM score: 8-bit, Y (or gray), shaved.

    [0, 1] float batches (N, C, H, W) in; also what the spectral analysis (sr_lit.analysis) transforms, so its
    crop and channel are the metric's by construction.
    """
    _check_pair(sr, hr)
    sr_c, hr_c = eval_channel(quantize(sr.double()), quantize(hr.double()), gray_gt)
    return shave(sr_c, shave_border), shave(hr_c, shave_border)


def score_batch(
    sr: torch.Tensor, hr: torch.Tensor, shave_border: int, gray_gt: str = "gray"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image (psnr, ssim) float64 tensors of shape (N,) for [0, 1] float batches."""
    sr_c, hr_c = scored_planes(sr, hr, shave_border, gray_gt)
    return psnr_per_image(sr_c, hr_c), ssim_per_image(sr_c, hr_c)


def evaluate_pair(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> tuple[float, float]:
    """(PSNR dB, SSIM) of one image, (C, H, W) or (1, C, H, W) floats in [0, 1]; shave = scale."""
    if sr.ndim == 3:
        sr, hr = sr.unsqueeze(0), hr.unsqueeze(0)
    if sr.shape[0] != 1:
        raise ValueError(f"evaluate_pair scores one image, got sr {tuple(sr.shape)}")
    p, s = score_batch(sr, hr, scale)
    return float(p[0]), float(s[0])


class Float64Sums(Metric):
    """A Metric whose sum states (``_float64_states``) stay float64 whatever dtype the module is cast to.

    Lightning's bf16-true/16-true cast the whole LightningModule with .to(dtype), and torchmetrics casts the
    states with it: sums of ~30 dB in bf16 move in steps of 0.125-0.25 dB.
    """

    _float64_states: tuple[str, ...] = ()

    def _apply(self, fn, *args, **kwargs):  # noqa: ANN001, ANN202 (torch's signature)
        out = super()._apply(fn, *args, **kwargs)
        for key in self._float64_states:
            value = getattr(self, key)
            if value.dtype != torch.float64:
                setattr(self, key, value.to(torch.float64))
            if self._defaults[key].dtype != torch.float64:
                self._defaults[key] = self._defaults[key].to(torch.float64)
        return out


class SRMetrics(Float64Sums):
    """Mean per-image PSNR/SSIM on Y (shave = scale); DDP-correct sums of per-image values.

    ``update(sr, hr)``: float (N, C, H, W) in [0, 1] of equal size, hr C in {1, 3}.
    ``compute()`` -> {"psnr_y", "ssim_y", "n_images"} (means over images; NaN before any update).
    ``keep_per_image=True`` also gathers per-image scores (``per_image()``), e.g. for reports.
    ``gray_gt``: how a one-channel ground truth is scored (``GRAY_GT_MODES``; ``gray`` by default).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    _float64_states = ("psnr_sum", "ssim_sum")

    def __init__(
        self,
        scale: int,
        shave_border: int | None = None,
        keep_per_image: bool = False,
        gray_gt: str = "gray",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if gray_gt not in GRAY_GT_MODES:
            raise ValueError(f"gray_gt must be one of {', '.join(GRAY_GT_MODES)}; got {gray_gt!r}")
        self.gray_gt = gray_gt
        if isinstance(scale, bool) or int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got scale={scale!r}")
        self.scale = int(scale)
        self.shave_border = self.scale if shave_border is None else int(shave_border)
        self.keep_per_image = keep_per_image
        f64 = torch.float64
        self.add_state("psnr_sum", default=torch.tensor(0.0, dtype=f64), dist_reduce_fx="sum")
        self.add_state("ssim_sum", default=torch.tensor(0.0, dtype=f64), dist_reduce_fx="sum")
        self.add_state("n_images", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        if keep_per_image:
            self.add_state("psnr_list", default=[], dist_reduce_fx="cat")
            self.add_state("ssim_list", default=[], dist_reduce_fx="cat")

    def planes(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The planes this metric scores (scored_planes with its shave and gray_gt), to share with BandPSNR."""
        return scored_planes(sr, hr, self.shave_border, self.gray_gt)

    def update(
        self, sr: torch.Tensor, hr: torch.Tensor, planes: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> None:
        """planes: ``self.planes(sr, hr)`` when the caller already made them (no second 8-bit/Y/shave pass)."""
        sr_c, hr_c = planes if planes is not None else self.planes(sr, hr)
        psnr, ssim = psnr_per_image(sr_c, hr_c), ssim_per_image(sr_c, hr_c)
        self.psnr_sum += psnr.sum()
        self.ssim_sum += ssim.sum()
        self.n_images += psnr.numel()
        if self.keep_per_image:
            self.psnr_list.append(psnr)
            self.ssim_list.append(ssim)

    def compute(self) -> dict[str, torch.Tensor]:
        n = self.n_images
        if int(n) == 0:
            nan = torch.tensor(math.nan, dtype=torch.float64, device=n.device)
            return {"psnr_y": nan, "ssim_y": nan.clone(), "n_images": n}
        return {"psnr_y": self.psnr_sum / n, "ssim_y": self.ssim_sum / n, "n_images": n}

    def per_image(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Gathered per-image (psnr, ssim); order follows update order (rank-interleaved under DDP)."""
        if not self.keep_per_image:
            raise RuntimeError("SRMetrics(keep_per_image=True) is needed for per_image()")

        def cat(v: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
            if isinstance(v, torch.Tensor):  # after a DDP sync the list state is one tensor
                return v
            return torch.cat(v) if v else torch.empty(0, dtype=torch.float64)

        return cat(self.psnr_list), cat(self.ssim_list)
