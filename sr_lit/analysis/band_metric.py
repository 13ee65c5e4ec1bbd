"""Per-band validation PSNR (``val/<Set>/band<k>_psnr_y``): a torchmetrics Metric, DDP-correct like SRMetrics.

States are sums over images of each image's band PSNR and an image count, reduced by sum: under DDP each image
counts once (as long as the sampler does not pad, DESIGN P3). Band definition: sr_lit.analysis.spectrum.
"""

from __future__ import annotations

import torch

from sr_lit.analysis.spectrum import DEFAULT_BANDS, band_errors, check_n_bands, image_band_errors
from sr_lit.metrics.sr_metrics import Float64Sums

__all__ = ["BandPSNR"]


class BandPSNR(Float64Sums):
    """Mean over images of the per-band Y-PSNR (shave = scale); ``compute()`` -> (n_bands,) float64.

    An image whose error in a band is exactly 0 adds inf to that band (as PSNR does for a perfect image).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    _float64_states = ("band_psnr_sum",)

    def __init__(self, scale: int, n_bands: int = DEFAULT_BANDS, gray_gt: str = "gray", **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = int(scale)
        self.gray_gt = gray_gt
        self.n_bands = check_n_bands(n_bands)
        self.add_state(
            "band_psnr_sum", default=torch.zeros(self.n_bands, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("n_images", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self, sr: torch.Tensor, hr: torch.Tensor, planes: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> None:
        """planes: SRMetrics.planes(sr, hr) of the same images (same shave and gray_gt), shared with it."""
        if planes is not None:
            be = band_errors(*planes, self.n_bands)
        else:
            be, _ = image_band_errors(sr, hr, self.scale, self.n_bands, self.gray_gt)
        # a band with no FFT bin (a tiny image) is NaN: it counts as 0 dB rather than poisoning the sum
        self.band_psnr_sum += torch.nan_to_num(be.psnr, nan=0.0, posinf=torch.inf).sum(dim=0)
        self.n_images += be.psnr.shape[0]

    def compute(self) -> torch.Tensor:
        n = self.n_images
        if int(n) == 0:
            return torch.full((self.n_bands,), float("nan"), dtype=torch.float64, device=n.device)
        return self.band_psnr_sum / n
