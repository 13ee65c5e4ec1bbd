"""Run an sr-export ONNX file like a model: ``OnnxSR(path)(lr)`` -> sr, for ``Upscaler`` (sr-upscale --onnx).

A fixed-size export only takes its own LR size: smaller inputs are padded (reflect, bottom/right) and the
output cropped; ``tile_plan`` sizes tiles so that a tile plus its overlap context always fits.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sr_lit.export.common import ExportError, first_line
from sr_lit.export.onnx import INPUT_NAME, OUTPUT_NAME

__all__ = ["OnnxSR", "pad_to"]


def pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad (N, C, h, w) at the bottom/right to (height, width): reflect (repeatedly, as reflect pads < side)."""
    while x.shape[-2] < height or x.shape[-1] < width:
        h, w = x.shape[-2], x.shape[-1]
        ph, pw = min(height - h, h - 1), min(width - w, w - 1)
        if (h < height and ph == 0) or (w < width and pw == 0):  # a 1-px side has nothing to reflect
            return F.pad(x, (0, width - w, 0, height - h), mode="replicate")
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return x


def _providers(device: str) -> list:
    import onnxruntime as ort

    available = ort.get_available_providers()
    dev = str(device)
    if dev == "auto":
        dev = "cuda" if "CUDAExecutionProvider" in available else "cpu"
    if dev == "cpu":
        return ["CPUExecutionProvider"]
    if dev.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise ExportError(
                f"device {device!r}: this onnxruntime has no CUDA provider (install onnxruntime-gpu)"
            )
        index = int(dev.split(":", 1)[1]) if ":" in dev else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise ExportError(f"unknown device {device!r} for ONNX (use auto, cpu, cuda or cuda:N)")


class OnnxSR(nn.Module):
    """An ONNX export behind the ``nn.Module`` interface ``Upscaler`` expects (scale, receptive_margin, spec).

    Holds no parameters: ``.to()`` is a no-op and inputs travel to onnxruntime as NumPy arrays.
    """

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ExportError(f"{self.path}: {'not a file' if self.path.exists() else 'file not found'}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=_providers(device))
        except ExportError:
            raise
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ExportError(f"{self.path}: not a readable ONNX model ({first_line(e)})") from e
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("producer") != "sr_lit" or "model_spec" not in meta:
            raise ExportError(f"{self.path}: ONNX model without sr_lit metadata (export it with sr-export)")
        self.meta = dict(meta)
        self.spec = json.loads(meta["model_spec"])
        self.scale = int(meta["scale"])
        self.receptive_margin = int(meta.get("receptive_margin", 0))
        size = meta.get("input_size", "dynamic")
        self.fixed_hw: tuple[int, int] | None = (
            None if size == "dynamic" else tuple(int(v) for v in size.split("x"))  # type: ignore[assignment]
        )

    def tile_plan(self, overlap: int | None, max_overlap: int) -> tuple[int, int]:
        """(tile, overlap) for a fixed-size export: tile + 2 * overlap fits the fixed side, core >= half of it."""
        assert self.fixed_hw is not None
        side = min(self.fixed_hw)
        if overlap is None:
            overlap = min(self.receptive_margin, max_overlap, side // 4)
        tile = side - 2 * overlap
        if tile < 1:
            raise ExportError(
                f"overlap {overlap} leaves no tile inside the fixed {side} px input of {self.path}"
            )
        return tile, overlap

    def fits(self, h: int, w: int) -> bool:
        return self.fixed_hw is None or (h <= self.fixed_hw[0] and w <= self.fixed_hw[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        if self.fixed_hw is not None:
            if not self.fits(h, w):
                raise ValueError(f"{self.path} takes LR inputs up to {self.fixed_hw}, got {(h, w)}: tile it")
            x = pad_to(x, *self.fixed_hw)
        lr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        sr = torch.from_numpy(self.session.run([OUTPUT_NAME], {INPUT_NAME: lr})[0])
        return sr[..., : h * self.scale, : w * self.scale].to(x.device)
