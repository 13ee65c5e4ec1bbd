"""What the exporters share: errors, the check against PyTorch, and the metadata every export carries."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_lit.errors import ExportError

__all__ = [
    "DEFAULT_ATOL",
    "EXPORT_HW",
    "ExportError",
    "ExportResult",
    "check_against",
    "export_metadata",
    "first_line",
    "probe_sizes",
    "size_key",
    "variant_name",
]

# fp32 exports must match PyTorch within this (max abs diff on [0, 1] images; measured ~1e-6 or less).
DEFAULT_ATOL = 1e-4
# LR size traced for dynamic exports; non-square so that a swapped H/W cannot pass unnoticed.
EXPORT_HW = (32, 40)
# Odd sizes that differ from the export size: a graph with baked-in shapes fails on them.
_SMALL_ODD = (17, 11)


@dataclass
class ExportResult:
    path: Path
    format: str
    fixed_hw: tuple[int, int] | None  # None: dynamic H/W
    diffs: dict[str, float] = field(default_factory=dict)  # "HxW" -> max |export - pytorch|
    note: str = ""  # format-specific: e.g. how the target code loads a pth export

    @property
    def max_diff(self) -> float:
        return max(self.diffs.values(), default=float("nan"))

    def summary(self) -> str:
        if self.format == "safetensors":
            return f"wrote {self.path} (safetensors: weights + model spec; reloaded model gives identical outputs)"
        if self.format == "pth":
            return (
                f"wrote {self.path} (plain state dict, {self.note}); read back: identical tensors and outputs"
            )
        shape = "dynamic H/W" if self.fixed_hw is None else f"fixed LR tile {size_key(self.fixed_hw)}"
        sizes = ", ".join(self.diffs)
        return f"wrote {self.path} ({self.format}, {shape}); max |diff| vs PyTorch {self.max_diff:.1e} at {sizes}"


def size_key(hw: Sequence[int]) -> str:
    return f"{int(hw[0])}x{int(hw[1])}"


def probe_sizes(export_hw: tuple[int, int]) -> list[tuple[int, int]]:
    """The export size plus a larger and a smaller size, both odd (baked-in shapes or parity show up)."""
    h, w = export_hw
    larger = (h + 13, w + 7 if (w + 7) % 2 else w + 8)
    return [export_hw, larger, _SMALL_ODD]


def check_against(
    model: nn.Module,
    run: Callable[[torch.Tensor], torch.Tensor],
    sizes: Sequence[tuple[int, int]],
    atol: float,
    what: str,
    seed: int = 0,
) -> dict[str, float]:
    """Max |run(x) - model(x)| on random [0, 1] inputs (batch 2) of each size; ExportError beyond ``atol``."""
    gen = torch.Generator().manual_seed(seed)
    diffs: dict[str, float] = {}
    for hw in sizes:
        x = torch.rand(2, 3, *hw, generator=gen)
        with torch.inference_mode():
            ref = model(x)
        try:
            with torch.inference_mode():
                out = run(x)
        except Exception as e:  # noqa: BLE001 - a runtime failure at this size is the answer we need
            raise ExportError(
                f"{what} fails on a {size_key(hw)} input ({type(e).__name__}: {first_line(e)})"
            ) from e
        if tuple(out.shape) != tuple(ref.shape):
            raise ExportError(
                f"{what} gives shape {tuple(out.shape)} for a {size_key(hw)} input, PyTorch {tuple(ref.shape)}"
            )
        diff = float((out.float() - ref).abs().max())
        if not diff <= atol:
            raise ExportError(
                f"{what} differs from PyTorch by {diff:.2e} > {atol:g} on a {size_key(hw)} input"
            )
        diffs[size_key(hw)] = diff
    return diffs


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def export_metadata(
    spec: Mapping[str, Any], model: nn.Module, fixed_hw: tuple[int, int] | None, diffs: Mapping[str, float]
) -> dict[str, str]:
    """String key/values stored inside every export (ONNX metadata_props, TorchScript extra file)."""
    return {
        "producer": "sr_lit",
        "model_spec": json.dumps(spec, sort_keys=True),
        "scale": str(int(spec["scale"])),
        "input_size": "dynamic" if fixed_hw is None else size_key(fixed_hw),
        "receptive_margin": str(int(getattr(model, "receptive_margin", 0))),
        "max_abs_diff": json.dumps({k: float(f"{v:.3e}") for k, v in diffs.items()}),
        "io": "lr: float32 (N, 3, H, W) RGB in [0, 1] -> sr: float32 (N, 3, H*scale, W*scale), not clamped",
    }


def variant_name(spec: Mapping[str, Any]) -> str:
    arch = spec["backbone"].get("arch", "?")
    return f"{arch} attention={spec['attention'].get('name')} hpf={spec['hpf'].get('name')} x{spec['scale']}"
