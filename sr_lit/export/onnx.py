"""ONNX export through PyTorch's TorchScript-based exporter (``dynamo=False``: it needs no onnxscript and handles
every sr_lit variant), checked with onnxruntime against the PyTorch model before the file is written.

Dynamic H/W is the default and is kept only if the graph matches PyTorch at sizes other than the traced one;
``tile=(H, W)`` exports a fixed LR input size instead (the batch stays dynamic).
"""

from __future__ import annotations

import inspect
import io
import warnings
from collections.abc import Callable, Mapping
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
from sr_lit.export.pooling import traceable_adaptive_pooling
from sr_lit.utils.files import write_atomic

__all__ = ["DEFAULT_OPSET", "INPUT_NAME", "OUTPUT_NAME", "export_onnx", "ort_runner"]

DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "lr", "sr"


def _to_onnx_bytes(model: nn.Module, hw: tuple[int, int], opset: int, dynamic: bool) -> bytes:
    axes: dict[str, dict[int, str]] = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    if dynamic:
        axes[INPUT_NAME].update({2: "height", 3: "width"})
        axes[OUTPUT_NAME].update({2: "out_height", 3: "out_width"})
    kwargs: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # torch >= 2.9 defaults to the dynamo exporter, which needs onnxscript
    buf = io.BytesIO()
    with warnings.catch_warnings(), traceable_adaptive_pooling(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings from shape checks; the result is verified instead
        torch.onnx.export(
            model,
            (torch.rand(1, 3, *hw),),
            buf,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=int(opset),
            dynamic_axes=axes,
            do_constant_folding=True,
            **kwargs,
        )
    return buf.getvalue()


def ort_runner(model_bytes: bytes) -> Callable[[torch.Tensor], torch.Tensor]:
    """An onnxruntime CPU session as a tensor -> tensor function (threads as torch's, for small machines)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.float().contiguous().numpy()})[0])

    return run


def _export_checked(
    model: nn.Module, hw: tuple[int, int], opset: int, dynamic: bool, atol: float, what: str
) -> tuple[bytes, dict[str, float]]:
    try:
        data = _to_onnx_bytes(model, hw, opset, dynamic)
    except Exception as e:  # noqa: BLE001 - the exporter raises many types; the user needs its message
        hint = "; export a fixed LR tile instead with --tile H W" if dynamic else ""
        raise ExportError(f"{what}: the exporter failed ({type(e).__name__}: {first_line(e)}){hint}") from e
    run = ort_runner(data)
    diffs = check_against(model, run, [hw], atol, what)
    if dynamic:  # correct at the traced size but not elsewhere: shapes were baked into the graph
        try:
            diffs.update(check_against(model, run, probe_sizes(hw)[1:], atol, what))
        except ExportError as e:
            raise ExportError(f"{e}; export a fixed LR tile instead with --tile H W") from e
    return data, diffs


def export_onnx(
    model: nn.Module,
    spec: Mapping[str, Any],
    path: str | Path,
    tile: tuple[int, int] | None = None,
    opset: int = DEFAULT_OPSET,
    atol: float = DEFAULT_ATOL,
) -> ExportResult:
    """Write ``path`` (.onnx) with sr_lit metadata; ExportError when no export matches PyTorch within ``atol``."""
    import onnx

    model = model.eval().cpu()
    name = variant_name(spec)
    if tile is None:
        data, diffs = _export_checked(model, EXPORT_HW, opset, True, atol, f"{name}: ONNX (dynamic H/W)")
    else:
        data, diffs = _export_checked(
            model, tile, opset, False, atol, f"{name}: ONNX (fixed {tile[0]}x{tile[1]})"
        )
    proto = onnx.load_from_string(data)
    for key, value in export_metadata(spec, model, tile, diffs).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"sr_lit {name}"
    onnx.checker.check_model(proto)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, proto.SerializeToString())  # a reader never sees half a model; no temp file left
    return ExportResult(path=path, format="onnx", fixed_hw=tile, diffs=diffs)
