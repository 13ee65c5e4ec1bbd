"""Dynamic high-pass filter (DESIGN 1.1), after Zou et al. 2020's content-aware low-pass.

A k x k conv predicts, per pixel and per channel group, a k*k low-pass kernel (softmax-normalised);
L = dynamic low-pass of x (reflect padding); HPF(x) = x - L, computed as sum_t w_t (x - x_t) (see DynamicHPF.forward).

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

from sr_lit.errors import ConfigError
from sr_lit.models.blocks.common import check_choice, check_int, check_options, constructor_options
from sr_lit.models.blocks.precision import reflect_pad
from sr_lit.models.registry import HPF, register_hpf

SOFTMAX_MODES = ("group", "joint")
COMBINE_MODES = ("add", "replace")
PLACEMENTS = ("auto", "every")


def _check_filter_args(x: torch.Tensor, weights: torch.Tensor, kernel_size: int, groups: int) -> None:
    n, c, h, w = x.shape
    expected = (n, groups * kernel_size * kernel_size, h, w)
    if c % groups or tuple(weights.shape) != expected:
        raise ValueError(
            f"dynamic low-pass: x {tuple(x.shape)} / weights {tuple(weights.shape)}, expected {expected}"
        )


def _padded(x: torch.Tensor, kernel_size: int, padded: torch.Tensor | None) -> torch.Tensor:
    """x reflect-padded by k // 2 in x's dtype (see precision.reflect_pad), or the caller's copy of it."""
    return reflect_pad(x, kernel_size // 2) if padded is None else padded


def dynamic_lowpass_unfold(
    x: torch.Tensor, weights: torch.Tensor, kernel_size: int, groups: int, padded: torch.Tensor | None = None
) -> torch.Tensor:
    """Reference: F.unfold the reflect-padded x (materialises k*k copies) and weight-sum the taps.

    weights: (N, G*k*k, H, W), group-major (channel g*k*k + t is tap t = row*k + col of group g).
    """
    _check_filter_args(x, weights, kernel_size, groups)
    n, c, h, w = x.shape
    taps = kernel_size * kernel_size
    patches = F.unfold(_padded(x, kernel_size, padded), kernel_size).view(n, groups, c // groups, taps, h, w)
    weights = weights.to(patches.dtype)
    return (patches * weights.reshape(n, groups, 1, taps, h, w)).sum(dim=3).view(n, c, h, w)


def dynamic_highpass_unfold(
    x: torch.Tensor, weights: torch.Tensor, kernel_size: int, groups: int, padded: torch.Tensor | None = None
) -> torch.Tensor:
    """Reference high-pass: sum over taps of w_t * (x - x_t), on F.unfold's k*k copies of the reflect-padded x.

    Equals x - L when each group's kernel sums to 1 (`softmax: group`), and maps a constant to exactly 0 (every
    difference is 0), where x - L leaves the rounding of the softmax's sum.
    """
    _check_filter_args(x, weights, kernel_size, groups)
    n, c, h, w = x.shape
    taps = kernel_size * kernel_size
    patches = F.unfold(_padded(x, kernel_size, padded), kernel_size).view(n, groups, c // groups, taps, h, w)
    centre = x.view(n, groups, c // groups, 1, h, w)
    weights = weights.to(patches.dtype)
    return ((centre - patches) * weights.reshape(n, groups, 1, taps, h, w)).sum(dim=3).view(n, c, h, w)


def _shift_operands(
    x: torch.Tensor, weights: torch.Tensor, kernel_size: int, groups: int, padded: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(reflect-padded x as (N, G, C/G, H+2p, W+2p), weights as (N, G, k*k, 1, H, W)): the shift path's inputs.

    Both in x's dtype: under autocast the kernels may come out of their softmax in fp32 (CUDA runs softmax in fp32)
    while the features are bf16; the filter is elementwise work on feature-sized tensors, done in the features'
    dtype (sr_lit.models.blocks.precision).
    """
    _check_filter_args(x, weights, kernel_size, groups)
    n, c, h, w = x.shape
    padded = _padded(x, kernel_size, padded).unflatten(1, (groups, c // groups))
    return padded, weights.to(x.dtype).reshape(n, groups, kernel_size * kernel_size, 1, h, w)


def _off_centre_taps(k: int) -> list[tuple[int, int, int]]:
    """(tap, dy, dx) of every tap but the centre one, whose difference x - x_t is 0."""
    return [(tap, *divmod(tap, k)) for tap in range(k * k) if tap != (k * k) // 2]


def _shift_highpass(padded: torch.Tensor, tap_weights: torch.Tensor, k: int) -> torch.Tensor:
    """sum over off-centre taps of (centre - padded[..., tap's window]) * tap_weights[:, :, tap], accumulated.

    padded (N, G, C/G, H+2p, W+2p); tap_weights (N, G, k*k, 1, H, W); result (N, G, C/G, H, W).
    """
    h, w = tap_weights.shape[-2:]
    p = k // 2
    centre = padded[..., p : p + h, p : p + w]
    out = torch.zeros_like(centre)
    for tap, dy, dx in _off_centre_taps(k):
        out.addcmul_(centre - padded[..., dy : dy + h, dx : dx + w], tap_weights[:, :, tap])
    return out


class _ShiftHighpass(torch.autograd.Function):
    """The shift high-pass with a hand-written backward.

    Why: under plain autograd, each of the k*k slice/select views in the backward becomes a full-size zero
    tensor plus a copy, then all are summed: k*k full passes over the padded input and k^4 tap maps for the
    weights. Here each tap's gradient is written straight into one padded-input gradient and into its own
    slice of the weight gradient (sr_lit.bench.hpf measures it against plain autograd and unfold).
    Saves only the padded input and a view of the weights.

    Autocast: forward and backward compute in the inputs' dtype, which `_shift_operands` makes the features'
    one (bf16 under bf16 autocast). That is what `torch.amp.custom_fwd`/`custom_bwd` without `cast_inputs` would
    give: they only replay the forward's autocast state in the backward, and autocast leaves the elementwise ops
    used here alone. Gradients come back in the inputs' dtypes (autograd casts them to each input's own).
    """

    @staticmethod
    def forward(ctx: Any, padded: torch.Tensor, tap_weights: torch.Tensor, k: int) -> torch.Tensor:
        if padded.dtype != tap_weights.dtype:  # a caller bypassing _shift_operands: one dtype, the features'
            raise TypeError(f"shift high-pass: x is {padded.dtype} but the kernels are {tap_weights.dtype}")
        ctx.save_for_backward(padded, tap_weights)
        ctx.k = k
        return _shift_highpass(padded, tap_weights, k)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        padded, tap_weights = ctx.saved_tensors
        k = ctx.k
        h, w = grad.shape[-2:]
        p, mid = k // 2, (k * k) // 2
        centre = padded[..., p : p + h, p : p + w]
        grad_padded = grad_weights = None
        if ctx.needs_input_grad[0]:
            # out = sum_t w_t (centre - x_t): the centre gets grad * sum of the off-centre weights ...
            grad_padded = torch.zeros_like(padded)
            off_centre_sum = tap_weights.sum(dim=2) - tap_weights[:, :, mid]
            grad_padded[..., p : p + h, p : p + w].addcmul_(grad, off_centre_sum)
        if ctx.needs_input_grad[1]:
            grad_weights = torch.zeros_like(tap_weights)  # the centre tap's stays 0
        for tap, dy, dx in _off_centre_taps(k):
            window = padded[..., dy : dy + h, dx : dx + w]
            if grad_padded is not None:  # ... and each neighbour -grad * its tap's weight
                grad_padded[..., dy : dy + h, dx : dx + w].addcmul_(grad, tap_weights[:, :, tap], value=-1)
            if grad_weights is not None:  # from the differences, not a difference of two sums (cancellation)
                grad_weights[:, :, tap] = (grad * (centre - window)).sum(dim=2, keepdim=True)
        return grad_padded, grad_weights, None


def dynamic_highpass_shift(
    x: torch.Tensor, weights: torch.Tensor, kernel_size: int, groups: int, padded: torch.Tensor | None = None
) -> torch.Tensor:
    """Memory-lean high-pass sum_t w_t * (x - x_t): k*k - 1 shifted views of the reflect-padded x, accumulated.

    Nothing k*k-sized is materialised, forward or backward. With gradients on, a custom autograd Function
    (hand-written backward); without (inference, ONNX/TorchScript export) the same arithmetic as plain ops,
    so tracers see only standard operators. `padded`: x reflect-padded by k // 2 when the caller has it already.
    """
    padded, tap_weights = _shift_operands(x, weights, kernel_size, groups, padded)
    if torch.is_grad_enabled() and (padded.requires_grad or tap_weights.requires_grad):
        out = _ShiftHighpass.apply(padded, tap_weights, kernel_size)
    else:
        out = _shift_highpass(padded, tap_weights, kernel_size)
    return out.reshape(x.shape)


HIGHPASS_IMPLS: dict[str, Callable[..., torch.Tensor]] = {
    "shift": dynamic_highpass_shift,
    "unfold": dynamic_highpass_unfold,
}


@register_hpf("dynamic")
class DynamicHPF(nn.Module):
    """HPF(x) = x - L(x), L a per-pixel, per-group predicted low-pass kernel (DESIGN 1.1).

    predictor: conv k x k, C -> G*k*k, no bias, reflect padding; BatchNorm2d(G*k*k) if bn; softmax over each
    group's k*k taps (`group`: zero DC gain, a constant maps to exactly 0) or over all G*k*k channels (`joint`).
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
            raise ConfigError(f"kernel_size must be odd; got {kernel_size}")
        if channels % groups:
            raise ConfigError(f"groups={groups} must divide channels={channels} (contiguous channel groups)")
        if not isinstance(bn, bool):
            raise ConfigError(f"bn must be true or false; got {bn!r}")
        self.kernel_size = kernel_size
        self.groups = groups
        self.softmax = check_choice(softmax, "softmax", SOFTMAX_MODES)
        self.combine = check_choice(combine, "combine", COMBINE_MODES)
        self.impl = check_choice(impl, "impl", tuple(HIGHPASS_IMPLS))
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

    @property
    def min_input_side(self) -> int:
        """Smallest input side it accepts: reflect padding by k // 2 needs more pixels than that."""
        return self.kernel_size // 2 + 1

    def kernels(self, x: torch.Tensor, padded: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised low-pass kernels (N, G*k*k, H, W), group-major. `padded`: x reflect-padded by k // 2."""
        # the predictor's own reflect padding, done once for it and the filter (and kept in x's dtype)
        padded = _padded(x, self.kernel_size, padded)
        logits = self.norm(F.conv2d(padded, self.predictor.weight, self.predictor.bias))
        if self.softmax == "joint":
            return logits.softmax(dim=1)
        taps = self.kernel_size * self.kernel_size
        return logits.unflatten(1, (self.groups, taps)).softmax(dim=2).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x - L computed as sum_t w_t (x - x_t): equal when a group's kernel sums to 1 (`group`), and a constant
        # then maps to exactly 0 instead of to the rounding error of the softmax's sum
        padded = reflect_pad(x, self.kernel_size // 2)
        weights = self.kernels(x, padded)
        high = HIGHPASS_IMPLS[self.impl](x, weights, self.kernel_size, self.groups, padded=padded)
        if self.softmax == "joint":
            # kernels do not sum to 1 per group: x - L = x (1 - sum_t w_t) + the above
            sums = weights.unflatten(1, (self.groups, -1)).sum(dim=2, keepdim=True)  # (N, G, 1, H, W)
            # in x's dtype: the fp32 kernels of CUDA autocast must not promote x
            keep = (1 - sums).to(x.dtype)
            high = high + (x.unflatten(1, (self.groups, -1)) * keep).flatten(1, 2)
        return high

    def enhance(self, r: torch.Tensor) -> torch.Tensor:
        """Apply the configured combine to a branch output: r + HPF(r) (add) or HPF(r) (replace)."""
        high = self(r)
        return r + high if self.combine == "add" else high


@dataclass(frozen=True)
class HPFPlan:
    """A parsed hpf config: the unit's class, where units go (placement, every) and the unit's options."""

    placement: str = "auto"
    every: int = 4
    options: Mapping[str, Any] = field(default_factory=dict)
    unit: type[nn.Module] = DynamicHPF

    def build(self, channels: int) -> nn.Module:
        return self.unit(channels, **self.options)

    def in_block(self, index: int) -> bool:
        """True for block `index` (0-based) under `every` placement: (index + 1) % every == 0."""
        return (index + 1) % self.every == 0


def parse_hpf(cfg: Mapping[str, Any] | None) -> HPFPlan | None:
    """Validate an hpf config (configs/hpf/*.yaml); None for `none`."""
    if cfg is None:
        return None
    options = dict(cfg)
    name = HPF.check(options.pop("name", None))
    unit = HPF[name]
    if unit is None:  # `none`
        check_options(options, (), f"hpf (name={name!r})")
        return None
    placement = check_choice(options.pop("placement", "auto"), "hpf.placement", PLACEMENTS)
    every = check_int(options.pop("every", 4), "hpf.every")
    check_options(
        options,
        ("placement", "every", *constructor_options(unit, exclude=("channels",))),
        "hpf",
    )
    return HPFPlan(placement=placement, every=every, options=options, unit=unit)
