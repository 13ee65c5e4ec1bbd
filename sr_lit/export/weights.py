"""Weights for sharing: the evaluation weights (EMA when it was on: what ``state_dict`` holds in our checkpoints)
plus the model spec in a pickle-free safetensors file, which sr-upscale/sr-eval load without the checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from sr_lit.export.common import EXPORT_HW, ExportError, ExportResult, check_against

__all__ = ["export_safetensors"]


def export_safetensors(model: nn.Module, spec: Mapping[str, Any], path: str | Path) -> ExportResult:
    """Write ``path`` and check that ``load_model`` rebuilds a model with bit-identical outputs."""
    from sr_lit.models.loading import load_model, save_safetensors

    path = save_safetensors(model.eval().cpu(), spec, path)
    reloaded, _ = load_model(path)
    diffs = check_against(model, reloaded, [EXPORT_HW], 0.0, f"{path} reloaded")
    if any(diffs.values()):
        raise ExportError(f"{path}: reloaded weights differ from the checkpoint's")
    return ExportResult(path=path, format="safetensors", fixed_hw=None, diffs=diffs)
