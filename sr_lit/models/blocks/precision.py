"""Mixed-precision policy of the plug-in units (HPF, FCA, MMCA) under ``torch.autocast``.

Large tensors (the N x C x H x W features and the per-pixel HPF kernels) are computed in the features' dtype, bf16
under autocast: that is where the time goes, and elementwise products / short sums of them lose nothing that the
bf16 convolutions around them do not lose already. Small tensors that carry reductions (the attention units'
pooled DCT coefficients, channel MLP, frequency softmax and gate logits: N x C x K numbers) run in the
parameters' dtype, fp32 under mixed precision, and cost nothing. Both helpers are no-ops without autocast, so
fp32 training, inference and exports (tracing) see exactly the plain operators.
"""

from __future__ import annotations

import platform
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F


def autocast_off(x: torch.Tensor) -> AbstractContextManager[None]:
    """A context that disables autocast for x's device when it is on (a null context otherwise)."""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        return torch.autocast(device_type=device, enabled=False)
    return nullcontext()


def reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-pad H and W by `pad`, in x's dtype.

    Why: CPU autocast lists reflection_pad2d among the ops it runs in fp32, so under bf16 autocast a plain F.pad
    returns an fp32 copy, and everything computed from it (the HPF filter, then through r + HPF(r) the rest of the
    residual stream) would stay fp32. Padding only copies values: it is exact in any dtype.
    """
    with autocast_off(x):
        return F.pad(x, (pad, pad, pad, pad), mode="reflect")


def native_bf16(device: torch.device | str) -> bool:
    """Whether `device` computes bf16 natively: CUDA with bf16 support, or a CPU whose oneDNN has bf16 kernels
    (x86 AVX-512 BF16 / AMX). Elsewhere PyTorch's CPU bf16 convolutions fall back to slow reference code."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        if not torch.backends.mkldnn.is_available():
            return False
        if platform.machine().lower() in ("x86_64", "amd64", "x86", "i686"):
            # the instructions themselves: oneDNN's own flag is also true on AVX-512 CPUs without BF16 (Skylake to
            # Ice Lake), where bf16 is emulated and slower than fp32
            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # e.g. Arm with its bf16 extension
    return True  # other accelerators: trust the user's choice
