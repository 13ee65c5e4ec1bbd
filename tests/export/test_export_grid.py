"""Every backbone x attention x hpf config exports to ONNX and TorchScript with dynamic H/W, equal to PyTorch
within 1e-4 at the traced size and at two other (odd) sizes (the exporters verify; the test re-checks at one more
size through the files). Slow: ~32 variants x 2 formats; `make test-full` runs it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from sr_lit.export.onnx import export_onnx
from sr_lit.export.runtime import OnnxSR
from sr_lit.export.torchscript import export_torchscript, load_torchscript
from tests.export._variants import ATTENTIONS, BACKBONES, HPFS, variant_model, variant_spec

ATOL = 1e-4
GRID = [(*v, 2) for v in itertools.product(BACKBONES, ATTENTIONS, HPFS)] + [
    ("edsr_tiny", "mmca", "dynamic", 3),
    ("edsr_tiny", "mmca", "dynamic", 4),
    ("rcan", "fca", "dynamic", 4),
    ("rcan", "ca", "none", 3),
]


@pytest.mark.slow
@pytest.mark.parametrize(("backbone", "attention", "hpf", "scale"), GRID)
def test_every_variant_exports_dynamic(
    tmp_path: Path, backbone: str, attention: str, hpf: str, scale: int
) -> None:
    spec = variant_spec(backbone, attention, hpf, scale)
    model = variant_model(spec)
    onnx_result = export_onnx(model, spec, tmp_path / "m.onnx")
    ts_result = export_torchscript(model, spec, tmp_path / "m.pt")
    x = torch.rand(1, 3, 15, 26)
    with torch.inference_mode():
        ref = model(x)
        onnx_diff = float((OnnxSR(onnx_result.path)(x) - ref).abs().max())
        ts_diff = float((load_torchscript(ts_result.path)[0](x) - ref).abs().max())
    print(
        f"{backbone}/{attention}/{hpf}/x{scale}: onnx dynamic max {max(onnx_result.max_diff, onnx_diff):.1e}, "
        f"torchscript dynamic max {max(ts_result.max_diff, ts_diff):.1e}"
    )
    assert onnx_result.fixed_hw is None and ts_result.fixed_hw is None
    assert max(onnx_result.max_diff, onnx_diff, ts_result.max_diff, ts_diff) <= ATOL
