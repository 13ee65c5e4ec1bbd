"""Plain state dicts for the published code: a plain EDSR / RCAN trained here, loadable with ``strict=True`` by
EDSR-PyTorch / the RCAN code (``--layout official``: a bare state dict, as their released ``.pt`` files) or by
BasicSR (``--layout basicsr``: ``{"params": ...}`` with its key names). Key maps: ``sr_lit.models.layouts``.

Only the variants those codebases have: EDSR-baseline / EDSR (any depth and width, no attention), RCAN with CA;
HPF, FCA and MMCA are refused with a message naming what the target code lacks. Every file is read back through
the importer (``sr_lit.models.loading.read_weights``, the path ``sr-import`` takes) and must give identical
tensors and identical outputs before the export is reported done.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_lit.export.common import ExportError, ExportResult, check_against

__all__ = ["export_pth"]

# The read-back check compares tensors one by one; the forward pass only confirms the spec read back (res_scale,
# CA reduction, scale), so a small non-square input does.
_PROBE_HW = (12, 15)


def export_pth(
    model: nn.Module, spec: Mapping[str, Any], path: str | Path, layout: str = "official"
) -> ExportResult:
    from sr_lit.models import layouts
    from sr_lit.models.loading import CheckpointError, read_weights
    from sr_lit.models.registry import build_model
    from sr_lit.utils.files import write_atomic

    path = Path(path)
    state = model.state_dict()
    try:
        plain = layouts.from_ours(state, spec, layout)
        hint = layouts.loader_hint(spec, state, layout)
    except ValueError as e:
        raise ExportError(f"cannot write the {layout} layout: {e}") from None
    buf = io.BytesIO()
    torch.save(plain if layout == "official" else {"params": plain}, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buf.getvalue())

    backbone = spec["backbone"]
    try:
        back = read_weights(
            path,
            arch=backbone["arch"],
            scale=int(spec["scale"]),
            res_scale=float(backbone.get("res_scale", 1.0)),
        )
    except CheckpointError as e:
        raise ExportError(f"{path} does not read back: {e.reason}") from None
    ours = {k: v.detach().cpu() for k, v in state.items()}
    differ = sorted(k for k in ours if k not in back.state or not torch.equal(back.state[k], ours[k]))
    if differ or set(back.state) != set(ours):
        raise ExportError(f"{path}: tensors differ after reading it back ({', '.join(differ[:5])})")
    reloaded = build_model(**back.spec).eval()
    reloaded.load_state_dict(back.state, strict=True)
    diffs = check_against(model.eval().cpu(), reloaded, [_PROBE_HW], 0.0, f"{path} read back")
    return ExportResult(path=path, format="pth", fixed_hw=None, diffs=diffs, note=f"{layout} layout; {hint}")
