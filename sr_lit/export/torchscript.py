"""TorchScript export by tracing. ``torch.jit.script`` cannot compile the models (config mappings, dynamic module
lists), while a trace records the sizes it reads as graph ops, so one trace serves every H/W; that is verified at
sizes other than the traced one before the file is kept. (torch.jit is deprecated upstream but still the format
C++/LibTorch deployments load.)
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_lit.export.common import (
    DEFAULT_ATOL,
    EXPORT_HW,
    ExportError,
    ExportResult,
    check_against,
    export_metadata,
    first_line,
    probe_sizes,
    variant_name,
)
from sr_lit.utils.files import write_atomic

__all__ = ["METADATA_FILE", "export_torchscript", "load_torchscript"]

METADATA_FILE = (
    "sr_lit.json"  # extra file inside the archive: torch.jit.load(f, _extra_files={METADATA_FILE: ""})
)


def _trace(model: nn.Module, hw: tuple[int, int]) -> torch.jit.ScriptModule:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings from shape checks; the trace is verified instead
        traced = torch.jit.trace(model, torch.rand(1, 3, *hw), check_trace=False)
    # round-trip through bytes: verify what a user will load, not the in-memory trace
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    buf.seek(0)
    return torch.jit.load(buf)


def export_torchscript(
    model: nn.Module,
    spec: Mapping[str, Any],
    path: str | Path,
    tile: tuple[int, int] | None = None,
    atol: float = DEFAULT_ATOL,
) -> ExportResult:
    """Write ``path`` (.pt) with the metadata in ``sr_lit.json``; ExportError when it does not match PyTorch."""
    import json

    model = model.eval().cpu()
    hw = tile or EXPORT_HW
    what = (
        f"{variant_name(spec)}: TorchScript ({'dynamic H/W' if tile is None else f'fixed {hw[0]}x{hw[1]}'})"
    )
    try:
        traced = _trace(model, hw)
    except Exception as e:  # noqa: BLE001
        raise ExportError(f"{what}: tracing failed ({type(e).__name__}: {first_line(e)})") from e
    diffs = check_against(model, traced, [hw], atol, what)
    if tile is None:  # correct at the traced size but not elsewhere: sizes were recorded as constants
        try:
            diffs.update(check_against(model, traced, probe_sizes(hw)[1:], atol, what))
        except ExportError as e:
            raise ExportError(f"{e}; export a fixed LR tile instead with --tile H W") from e
    meta = export_metadata(spec, model, tile, diffs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.jit.save(traced, buf, _extra_files={METADATA_FILE: json.dumps(meta, indent=2)})
    write_atomic(path, buf.getvalue())
    return ExportResult(path=path, format="torchscript", fixed_hw=tile, diffs=diffs)


def load_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, str]]:
    """(module, metadata) of an sr-export TorchScript file."""
    import json

    extra = {METADATA_FILE: ""}
    module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return module.eval(), json.loads(extra[METADATA_FILE] or "{}")
