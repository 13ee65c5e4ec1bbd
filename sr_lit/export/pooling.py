"""A traceable adaptive average pooling, swapped into FCA/MMCA while exporting.

The TorchScript-based ONNX exporter turns ``F.adaptive_avg_pool2d(x, 7)`` into an AveragePool whose kernel is
computed from the *trace-time* input size: it refuses dynamic H/W ("input size not accessible") and, at a fixed
size, anything that is not a multiple of 7. Written as two small averaging matrices built from the runtime size,
the same pooling exports with dynamic H/W and is exact (same bins as PyTorch, also for inputs smaller than 7).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["adaptive_avg_pool2d_traceable", "traceable_adaptive_pooling"]


def _bin_matrix(n: Any, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, n) row-normalised 0/1 matrix: bin i averages [floor(i*n/bins), ceil((i+1)*n/bins)) as PyTorch does.

    Integer comparisons only (i*n < (j+1)*bins and j*bins < (i+1)*n), so no float rounding decides a bin.
    """
    j = torch.arange(n, device=like.device).unsqueeze(0)
    i = torch.arange(bins, device=like.device).unsqueeze(1)
    member = ((i * n) < (j + 1) * bins) & ((j * bins) < (i + 1) * n)
    weights = member.to(like.dtype)
    return weights / weights.sum(dim=1, keepdim=True)


def adaptive_avg_pool2d_traceable(x: torch.Tensor, output_size: int | tuple[int, int]) -> torch.Tensor:
    """``F.adaptive_avg_pool2d`` as ``P_h @ x @ P_w^T``; the runtime H/W stay symbolic under tracing."""
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    rows = _bin_matrix(x.shape[-2], int(out_h), x)
    cols = _bin_matrix(x.shape[-1], int(out_w), x)
    return torch.matmul(torch.matmul(rows, x), cols.t())


class _TraceableFunctional:
    """``torch.nn.functional`` with adaptive_avg_pool2d replaced; every other name falls through."""

    adaptive_avg_pool2d = staticmethod(adaptive_avg_pool2d_traceable)

    def __getattr__(self, name: str) -> Any:
        return getattr(F, name)


@contextmanager
def traceable_adaptive_pooling() -> Iterator[None]:
    """Within the block, the attention units (FCA/MMCA call ``F.adaptive_avg_pool2d``) pool traceably.

    Patches the ``F`` the attention module sees instead of copying their forward code, so an export can never
    drift from the model's own forward; the export is then checked against the unpatched model anyway.
    """
    from sr_lit.models.blocks import attention

    saved = attention.F
    attention.F = _TraceableFunctional()  # type: ignore[assignment]
    try:
        yield
    finally:
        attention.F = saved
