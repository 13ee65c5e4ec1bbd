"""Export trained models for deployment: ONNX, TorchScript and safetensors (``sr-export``).

Every export is checked against the PyTorch model it came from before it is kept; see docs/DEPLOYING.md.
"""

from sr_lit.export.common import ExportError, ExportResult

__all__ = ["ExportError", "ExportResult"]
