"""Parameter and FLOP counts of a model for one LR input (what `sr-summary` prints)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _hpf_filter_flops(model: nn.Module, x: torch.Tensor) -> tuple[int, list[Any]]:
    """The dynamic low-pass is k*k elementwise multiply-adds per output value: FlopCounterMode counts only
    matmul/conv ops, so add 2*k*k*C*H*W for every DynamicHPF call via forward hooks."""
    from sr_lit.models.blocks.hpf import DynamicHPF

    total = [0]
    handles = []

    def hook(mod: nn.Module, inputs: tuple[torch.Tensor, ...], _out: Any) -> None:
        n, c, h, w = inputs[0].shape
        total[0] += 2 * mod.kernel_size * mod.kernel_size * n * c * h * w

    for m in model.modules():
        if isinstance(m, DynamicHPF):
            handles.append(m.register_forward_hook(hook))
    return total, handles


@torch.no_grad()
def model_cost(model: nn.Module, lr_size: tuple[int, int]) -> dict[str, Any]:
    """Trainable params, total FLOPs (2 x multiply-adds) and FLOPs per top-level child for one (1,3,H,W) input."""
    model.eval()
    x = torch.rand(1, 3, *lr_size)
    extra, handles = _hpf_filter_flops(model, x)
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    per_module: dict[str, int] = defaultdict(int)
    for name, ops in counter.get_flop_counts().items():
        depth = name.count(".")
        if depth == 1:  # "Global.<child>" -> direct children of the model
            per_module[name.split(".", 1)[1]] += int(sum(ops.values()))
    matmul_flops = int(counter.get_total_flops())
    return {
        "params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "params_frozen": int(sum(p.numel() for p in model.parameters() if not p.requires_grad)),
        "flops": matmul_flops + extra[0],
        "flops_conv_matmul": matmul_flops,
        "flops_dynamic_filter": extra[0],
        "lr_size": list(lr_size),
        "sr_size": list(y.shape[-2:]),
        "flops_by_module": dict(per_module),
    }
