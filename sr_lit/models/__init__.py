"""SR models: backbones (EDSR, RCAN), plug-in units (dynamic HPF, CA/FCA/MMCA) and the config registry."""

from sr_lit.models.registry import BACKBONES, build_model, count_params, model_spec, register_backbone

__all__ = ["BACKBONES", "build_model", "count_params", "model_spec", "register_backbone"]
