"""Model registry: config-group mappings (configs/backbone|attention|hpf) -> model.

`model_spec` turns the mappings (dicts or Hydra DictConfigs) into a plain JSON-able dict that checkpoints store;
`build_model(**spec)` rebuilds the same model.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from torch import nn

from sr_lit.models.backbones import EDSR, RCAN
from sr_lit.models.blocks.attention import ATTENTION_NAMES, build_attention
from sr_lit.models.blocks.common import check_choice, check_options, constructor_options
from sr_lit.models.blocks.hpf import HPF_NAMES, parse_hpf
from sr_lit.models.blocks.upsample import SCALES, check_scale

BACKBONES: dict[str, type[nn.Module]] = {"edsr": EDSR, "rcan": RCAN}

# Constructor arguments that come from outside the backbone config group.
_EXTERNAL_ARGS = ("scale", "attention", "hpf")

ModelT = TypeVar("ModelT", bound=type[nn.Module])


def register_backbone(name: str) -> Callable[[ModelT], ModelT]:
    """Decorator adding a backbone class under `arch: name`; its __init__ takes the config keys plus
    scale, attention and hpf, and the instance exposes `.scale` and `.receptive_margin`."""

    def add(cls: ModelT) -> ModelT:
        if name in BACKBONES and BACKBONES[name] is not cls:
            raise ValueError(f"backbone {name!r} is already registered")
        BACKBONES[name] = cls
        return cls

    return add


def _plain(value: Any) -> Any:
    """Deep-convert mappings/sequences (incl. OmegaConf containers) to dicts/lists of plain values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value


def _backbone_options(backbone: Mapping[str, Any]) -> tuple[type[nn.Module], dict[str, Any]]:
    options = dict(backbone)
    arch = check_choice(options.pop("arch", None), "backbone.arch", BACKBONES)
    cls = BACKBONES[arch]
    check_options(options, constructor_options(cls, exclude=_EXTERNAL_ARGS), f"backbone (arch={arch!r})")
    return cls, options


def model_spec(
    backbone: Mapping[str, Any],
    attention: Mapping[str, Any] | None,
    hpf: Mapping[str, Any] | None,
    scale: int,
) -> dict[str, Any]:
    """Validated plain-dict form {"backbone", "attention", "hpf", "scale"}; `build_model(**spec)` rebuilds."""
    spec = {
        "backbone": _plain(backbone),
        "attention": _plain(attention) if attention is not None else {"name": "none"},
        "hpf": _plain(hpf) if hpf is not None else {"name": "none"},
        "scale": check_scale(scale),
    }
    _backbone_options(spec["backbone"])
    check_choice(spec["attention"].get("name"), "attention.name", ATTENTION_NAMES)
    parse_hpf(spec["hpf"])
    return spec


def build_model(
    backbone: Mapping[str, Any],
    attention: Mapping[str, Any] | None,
    hpf: Mapping[str, Any] | None,
    scale: int,
) -> nn.Module:
    """Build backbone[arch] with the given attention and hpf config nodes at `scale`."""
    spec = model_spec(backbone, attention, hpf, scale)
    cls, options = _backbone_options(spec["backbone"])
    return cls(**options, scale=spec["scale"], attention=spec["attention"], hpf=spec["hpf"])


def count_params(model: nn.Module) -> int:
    """Trainable parameters (frozen MeanShift excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def variant_grid(
    archs: Sequence[str] | None = None, scales: Sequence[int] = SCALES
) -> list[tuple[str, str, str, int]]:
    """Every (arch, attention name, hpf name, scale) combination the configs can select."""
    return list(itertools.product(archs or tuple(BACKBONES), ATTENTION_NAMES, HPF_NAMES, scales))


__all__ = [
    "ATTENTION_NAMES",
    "BACKBONES",
    "HPF_NAMES",
    "SCALES",
    "build_attention",
    "build_model",
    "count_params",
    "model_spec",
    "register_backbone",
    "variant_grid",
]
