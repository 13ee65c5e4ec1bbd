"""Dynamic high-pass filter (SPEC 1.1), after Zou et al. 2020's content-aware low-pass.

A k x k conv predicts, per pixel and per channel group, a k*k low-pass kernel (softmax-normalised);
L = dynamic low-pass of x (reflect padding); HPF(x) = x - L.

Design: `DynamicHPF.forward(x)` returns the high-pass HPF(x) itself; `DynamicHPF.enhance(r)` applies the
configured combine to a residual-branch output (add: r + HPF(r), replace: HPF(r)); blocks call `enhance`.
Where a unit sits in a backbone (placement/every) is backbone business: `parse_hpf` splits a config into
an `HPFPlan` (placement, every, module options) that the backbones consume.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from sr_lit.models.blocks.common import check_choice, check_int, check_options, constructor_options

HPF_NAMES = ("none", "dynamic")
SOFTMAX_MODES = ("group", "joint")
COMBINE_MODES = ("add", "replace")
PLACEMENTS = ("auto", "every")


def _check_lowpass_args(x: torch.Tensor, weights: torch.Tensor, kernel_size: int, groups: int) -> None:
    n, c, h, w = x.shape
    expected = (n, groups * kernel_size * kernel_size, h, w)
    if c % groups or tuple(weights.shape) != expected:
        raise ValueError(
            f"dynamic low-pass: x {tuple(x.shape)} / weights {tuple(weights.shape)}, expected {expected}"
        )


def dynamic_lowpass_unfold(
    x: torch.Tensor, weights: torch.Tensor, kernel_size: int, groups: int
) -> torch.Tensor:
    """Reference: F.unfold the reflect-padded x (materialises k*k copies) and weight-sum the taps.

    weights: (N, G*k*k, H, W), group-major (channel g*k*k + t is tap t = row*k + col of group g).
    """
    _check_lowpass_args(x, weights, kernel_size, groups)
    n, c, h, w = x.shape
    taps = kernel_size * kernel_size
    pad = kernel_size // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    patches = F.unfold(padded, kernel_size).view(n, groups, c // groups, taps, h, w)
    return (patches * weights.reshape(n, groups, 1, taps, h, w)).sum(dim=3).view(n, c, h, w)


def _shift_operands(
    x: torch.Tensor, weights: torch.Tensor, kernel_size: int, groups: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(reflect-padded x as (N, G, C/G, H+2p, W+2p), weights as (N, G, k*k, 1, H, W)): the shift path's inputs."""
    _check_lowpass_args(x, weights, kernel_size, groups)
    n, c, h, w = x.shape
    pad = kernel_size // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect").unflatten(1, (groups, c // groups))
    return padded, weights.reshape(n, groups, kernel_size * kernel_size, 1, h, w)


def _shift_accumulate(padded: torch.Tensor, tap_weights: torch.Tensor, k: int) -> torch.Tensor:
    """sum over taps of padded[..., tap's window] * tap_weights[:, :, tap], into one accumulator in place.

    padded (N, G, C/G, H+2p, W+2p); tap_weights (N, G, k*k, 1, H, W); result (N, G, C/G, H, W).
    """
    h, w = tap_weights.shape[-2:]
    out = padded[..., :h, :w] * tap_weights[:, :, 0]
    for tap in range(1, k * k):
        dy, dx = divmod(tap, k)
        out.addcmul_(padded[..., dy : dy + h, dx : dx + w], tap_weights[:, :, tap])
    return out


class _ShiftLowpass(torch.autograd.Function):
    """The shift low-pass with a hand-written backward.

    Why: under plain autograd, each of the k*k slice/select views in the backward becomes a full-size zero
    tensor plus a copy, then all are summed: k*k full passes over the padded input and k^4 tap maps for the
    weights. Here each tap's gradient is written straight into one padded-input gradient and into its own
    slice of the weight gradient (sr_lit.bench.hpf measures it: ~2-3x faster than plain autograd on CPU).
    Saves only the padded input and a view of the weights.
    """

    @staticmethod
    def forward(ctx: Any, padded: torch.Tensor, tap_weights: torch.Tensor, k: int) -> torch.Tensor:
        ctx.save_for_backward(padded, tap_weights)
        ctx.k = k
        return _shift_accumulate(padded, tap_weights, k)

    @staticmethod
    @once_differentiable
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


def dynamic_lowpass_shift(
    x: torch.Tensor, weights: torch.Tensor, kernel_size: int, groups: int
) -> torch.Tensor:
    """Memory-lean: k*k shifted views of the reflect-padded x, each times its tap's weight map, accumulated.

    Nothing k*k-sized is materialised, forward or backward. With gradients on, a custom autograd Function
    (hand-written backward); without (inference, ONNX/TorchScript export) the same arithmetic as plain ops,
    so tracers see only standard operators.
    """
    padded, tap_weights = _shift_operands(x, weights, kernel_size, groups)
    if torch.is_grad_enabled() and (padded.requires_grad or tap_weights.requires_grad):
        out = _ShiftLowpass.apply(padded, tap_weights, kernel_size)
    else:
        out = _shift_accumulate(padded, tap_weights, kernel_size)
    return out.reshape(x.shape)


LOWPASS_IMPLS: dict[str, Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]] = {
    "shift": dynamic_lowpass_shift,
    "unfold": dynamic_lowpass_unfold,
}


class DynamicHPF(nn.Module):
    """HPF(x) = x - L(x), L a per-pixel, per-group predicted low-pass kernel (SPEC 1.1).

    predictor: conv k x k, C -> G*k*k, no bias, reflect padding; BatchNorm2d(G*k*k) if bn; softmax over each
    group's k*k taps (`group`: zero DC gain, constant in -> 0 out, up to float rounding of the softmax's sum)
    or over all G*k*k channels (`joint`).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        groups: int = 8,
        softmax: str = "group",
        bn: bool = True,
        combine: str = "add",
        impl: str = "shift",
    ) -> None:
        super().__init__()
        check_int(channels, "channels")
        check_int(kernel_size, "kernel_size")
        check_int(groups, "groups")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd; got {kernel_size}")
        if channels % groups:
            raise ValueError(f"groups={groups} must divide channels={channels} (contiguous channel groups)")
        if not isinstance(bn, bool):
            raise ValueError(f"bn must be true or false; got {bn!r}")
        self.kernel_size = kernel_size
        self.groups = groups
        self.softmax = check_choice(softmax, "softmax", SOFTMAX_MODES)
        self.combine = check_choice(combine, "combine", COMBINE_MODES)
        self.impl = check_choice(impl, "impl", tuple(LOWPASS_IMPLS))
        n_weights = groups * kernel_size * kernel_size
        self.predictor = nn.Conv2d(
            channels, n_weights, kernel_size, padding=kernel_size // 2, padding_mode="reflect", bias=False
        )
        self.norm: nn.Module = nn.BatchNorm2d(n_weights) if bn else nn.Identity()

    @property
    def receptive_radius(self) -> int:
        """Input pixels on each side that one output pixel depends on.

        The predictor and the filter both read x directly (in parallel, not in series), so the radius is k // 2.
        """
        return self.kernel_size // 2

    def kernels(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised low-pass kernels (N, G*k*k, H, W), group-major."""
        logits = self.norm(self.predictor(x))
        if self.softmax == "joint":
            return logits.softmax(dim=1)
        taps = self.kernel_size * self.kernel_size
        return logits.unflatten(1, (self.groups, taps)).softmax(dim=2).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lowpass = LOWPASS_IMPLS[self.impl](x, self.kernels(x), self.kernel_size, self.groups)
        return x - lowpass

    def enhance(self, r: torch.Tensor) -> torch.Tensor:
        """Apply the configured combine to a branch output: r + HPF(r) (add) or HPF(r) (replace)."""
        high = self(r)
        return r + high if self.combine == "add" else high


@dataclass(frozen=True)
class HPFPlan:
    """A parsed hpf config: where units go (placement, every) and the DynamicHPF options."""

    placement: str = "auto"
    every: int = 4
    options: Mapping[str, Any] = field(default_factory=dict)

    def build(self, channels: int) -> DynamicHPF:
        return DynamicHPF(channels, **self.options)

    def in_block(self, index: int) -> bool:
        """True for block `index` (0-based) under `every` placement: (index + 1) % every == 0."""
        return (index + 1) % self.every == 0


def parse_hpf(cfg: Mapping[str, Any] | None) -> HPFPlan | None:
    """Validate an hpf config (configs/hpf/*.yaml); None for `none`."""
    if cfg is None:
        return None
    options = dict(cfg)
    name = check_choice(options.pop("name", None), "hpf.name", HPF_NAMES)
    if name == "none":
        check_options(options, (), "hpf (name='none')")
        return None
    placement = check_choice(options.pop("placement", "auto"), "hpf.placement", PLACEMENTS)
    every = check_int(options.pop("every", 4), "hpf.every")
    check_options(
        options, ("placement", "every", *constructor_options(DynamicHPF, exclude=("channels",))), "hpf"
    )
    return HPFPlan(placement=placement, every=every, options=options)
