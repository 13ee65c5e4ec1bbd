"""A candidate for sr_lit.models.blocks.hpf: the shift low-pass with a hand-written backward.

Why: under plain autograd, `dynamic_lowpass_shift`'s backward turns each of the k*k slice/select views into a
full-size zero tensor plus a copy, then adds them up: k*k full-size passes over the padded input and k*k over
the whole weight tensor (k^4 tap maps for the weights). Here the backward writes each tap straight into one
padded-input gradient and into its own slice of the weight gradient. Same saved tensors as the shift path (the
padded input and a view of the weights), same forward arithmetic; benchmarked in sr_lit.bench.hpf.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class _ShiftLowpass(torch.autograd.Function):
    """out = sum over taps of padded[..., shifted window] * tap_weights[:, :, tap]."""

    @staticmethod
    def forward(ctx: Any, padded: torch.Tensor, tap_weights: torch.Tensor, k: int) -> torch.Tensor:
        # padded (N, G, C/G, H+2p, W+2p); tap_weights (N, G, k*k, 1, H, W)
        h, w = tap_weights.shape[-2:]
        out = padded[..., :h, :w] * tap_weights[:, :, 0]
        for tap in range(1, k * k):
            dy, dx = divmod(tap, k)
            out.addcmul_(padded[..., dy : dy + h, dx : dx + w], tap_weights[:, :, tap])
        ctx.save_for_backward(padded, tap_weights)
        ctx.k = k
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        padded, tap_weights = ctx.saved_tensors
        k = ctx.k
        h, w = grad.shape[-2:]
        grad_padded = torch.zeros_like(padded) if ctx.needs_input_grad[0] else None
        grad_weights = torch.empty_like(tap_weights) if ctx.needs_input_grad[1] else None
        for tap in range(k * k):
            dy, dx = divmod(tap, k)
            if grad_padded is not None:
                grad_padded[..., dy : dy + h, dx : dx + w].addcmul_(grad, tap_weights[:, :, tap])
            if grad_weights is not None:
                window = padded[..., dy : dy + h, dx : dx + w]
                grad_weights[:, :, tap] = (grad * window).sum(dim=2, keepdim=True)
        return grad_padded, grad_weights, None


def dynamic_lowpass_shift_fn(
    x: torch.Tensor, weights: torch.Tensor, kernel_size: int, groups: int
) -> torch.Tensor:
    """Drop-in for dynamic_lowpass_shift (same arguments, same result to float rounding)."""
    from sr_lit.models.blocks.hpf import _check_lowpass_args

    _check_lowpass_args(x, weights, kernel_size, groups)
    n, c, h, w = x.shape
    pad = kernel_size // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect").unflatten(1, (groups, c // groups))
    tap_weights = weights.reshape(n, groups, kernel_size * kernel_size, 1, h, w)
    return _ShiftLowpass.apply(padded, tap_weights, kernel_size).reshape(n, c, h, w)
