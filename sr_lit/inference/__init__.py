"""Inference helpers: tiled forward, x8 self-ensemble and the ``Upscaler`` used by the CLIs."""

from sr_lit.inference.ensemble import self_ensemble
from sr_lit.inference.predictor import Upscaler
from sr_lit.inference.tiling import auto_tile, tiled_forward

__all__ = ["Upscaler", "auto_tile", "self_ensemble", "tiled_forward"]
