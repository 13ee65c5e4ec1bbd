"""SR evaluation metrics with the MATLAB protocol of the published tables (Y channel, shave, per image)."""

from sr_lit.metrics.sr_metrics import SRMetrics, evaluate_pair, psnr_per_image, ssim_per_image
from sr_lit.metrics.y_channel import quantize, rgb_to_y, shave

__all__ = ["SRMetrics", "evaluate_pair", "psnr_per_image", "ssim_per_image", "quantize", "rgb_to_y", "shave"]
