"""Weights for sharing: the evaluation weights (EMA when it was on: what ``state_dict`` holds in our checkpoints)
plus the model spec in a pickle-free safetensors file, which sr-upscale/sr-eval load without the checkpoint;
and the way in for released EDSR/RCAN weights (``import_weights``, ``sr-import``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from sr_lit.export.common import EXPORT_HW, ExportError, ExportResult, check_against

if TYPE_CHECKING:
    from sr_lit.models.loading import HashCheck, LoadedWeights

__all__ = ["ImportResult", "export_safetensors", "import_weights"]


def export_safetensors(model: nn.Module, spec: Mapping[str, Any], path: str | Path) -> ExportResult:
    """Write ``path`` and check that ``load_model`` rebuilds a model with bit-identical outputs."""
    from sr_lit.models.loading import load_model, save_safetensors

    path = save_safetensors(model.eval().cpu(), spec, path)
    reloaded, _ = load_model(path)
    diffs = check_against(model, reloaded, [EXPORT_HW], 0.0, f"{path} reloaded")
    if any(diffs.values()):
        raise ExportError(f"{path}: reloaded weights differ from the checkpoint's")
    return ExportResult(path=path, format="safetensors", fixed_hw=None, diffs=diffs)


@dataclass
class ImportResult:
    """What ``import_weights`` read and wrote: the source described, what was assumed, the hash check."""

    source: Path
    loaded: LoadedWeights
    hash_check: HashCheck | None
    export: ExportResult

    def lines(self) -> list[str]:
        out = [f"{self.source}: {self.loaded.describe()}"]
        out += [f"  assumed: {a}" for a in self.loaded.assumed]
        if self.hash_check is not None and self.hash_check.matches:
            out.append(f"  {self.hash_check.describe()}")
        out.append(self.export.summary())
        return out

    def warnings(self) -> list[str]:
        if self.hash_check is not None and not self.hash_check.matches:
            return [f"{self.source}: {self.hash_check.describe()}"]
        return []


def import_weights(
    source: str | Path,
    out: str | Path,
    *,
    arch: str | None = None,
    scale: int | None = None,
    res_scale: float | None = None,
) -> ImportResult:
    """A released EDSR/RCAN file (EDSR-PyTorch/RCAN ``.pt``, BasicSR ``.pth``) or one of ours -> our
    ``.safetensors`` (weights + model spec), detected from keys and shapes (``sr_lit.models.layouts.detect``).

    ``arch`` / ``scale`` are checked against the file, ``res_scale`` sets what EDSR files do not store. A sha256
    prefix in the file name (``edsr_x2-0edfb8a3.pt``) is checked and reported, not enforced.
    """
    from sr_lit.models.loading import check_hash_prefix, fit_state, read_weights
    from sr_lit.models.registry import build_model

    source = Path(source)
    loaded = read_weights(source, "cpu", arch=arch, scale=scale, res_scale=res_scale)
    model = build_model(**loaded.spec)
    fit_state(source, model, loaded.state)
    hash_check = check_hash_prefix(source)
    return ImportResult(source, loaded, hash_check, export_safetensors(model.eval(), loaded.spec, out))
