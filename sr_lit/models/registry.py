"""The registries of what the configs can select, and the spec <-> model round trip.

Three registries, one per config group that names a class: `BACKBONES` (configs/backbone/*.yaml, key `arch`),
`ATTENTION` (configs/attention/*.yaml, key `name`) and `HPF` (configs/hpf/*.yaml, key `name`). Each class is
registered once, where it is defined, with a decorator (`@register_attention("mmca")`); `none` is registered
here and builds no unit. Everything that lists variants (the config checks, `variant_grid`, sr-summary, the bench,
the export checks and the tests) reads these registries. Recipe for a new unit: docs/DESIGN.md section 6.

`model_spec` turns the config mappings (dicts or Hydra DictConfigs) into the plain JSON-able dict that
checkpoints store; `build_model(**spec)` rebuilds the same model.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from torch import nn

from sr_lit.errors import ConfigError
from sr_lit.models.blocks.common import check_choice, check_options, constructor_options
from sr_lit.models.blocks.upsample import SCALES, check_scale

T = TypeVar("T")


def _load_builtins() -> None:
    """Import the modules whose classes register themselves (idempotent; after the registries exist)."""
    import sr_lit.models.backbones  # noqa: F401 - imports the blocks too


class Registry(Generic[T]):
    """Names -> classes of one kind, filled by the `register` decorator where each class is defined.

    `None` as the registered object means "no unit" (the `none` option of attention/hpf).
    """

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind  # the config group: backbone, attention, hpf
        self.key = key  # the key that selects an entry: backbone.arch, attention.name, hpf.name
        self._entries: dict[str, T | None] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: `@ATTENTION.register("mmca")`."""

        def add(obj: T) -> T:
            self.add(name, obj)
            return obj

        return add

    def add(self, name: str, obj: T | None) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"{self.kind} name {name!r}: must be a Python identifier (it is a config file name)"
            )
        if name in self._entries and self._entries[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is already registered ({self._entries[name]!r})")
        self._entries[name] = obj

    def remove(self, name: str) -> None:
        """Forget an entry (tests that register a throw-away unit clean up with this)."""
        self._entries.pop(name, None)

    def names(self) -> tuple[str, ...]:
        _load_builtins()
        return tuple(self._entries)

    def check(self, name: Any) -> str:
        """`name` if registered, else a ConfigError naming the key and the choices."""
        return check_choice(name, self.key, self.names())

    def __getitem__(self, name: str) -> T | None:
        return self._entries[self.check(name)]

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"


BACKBONES: Registry[type[nn.Module]] = Registry("backbone", "backbone.arch")
ATTENTION: Registry[type[nn.Module]] = Registry("attention", "attention.name")
HPF: Registry[type[nn.Module]] = Registry("hpf", "hpf.name")
ATTENTION.add("none", None)
HPF.add("none", None)

ModelT = TypeVar("ModelT", bound=type[nn.Module])


def register_backbone(name: str) -> Callable[[ModelT], ModelT]:
    """A backbone class under `arch: name`; its __init__ takes the backbone config keys plus scale, attention
    and hpf, and the instance exposes `.scale` and `.receptive_margin` (docs/CONTRACTS.md)."""
    return BACKBONES.register(name)


def register_attention(name: str) -> Callable[[ModelT], ModelT]:
    """A channel-attention unit under `attention.name: name`: __init__(channels, **config keys); x -> x * a."""
    return ATTENTION.register(name)


def register_hpf(name: str) -> Callable[[ModelT], ModelT]:
    """A high-pass unit under `hpf.name: name`: __init__(channels, **config keys), `.enhance(r)` and
    `.receptive_radius` (the backbones place it per `placement`/`every`, see blocks/hpf.py HPFPlan)."""
    return HPF.register(name)


# Constructor arguments that come from outside the backbone config group.
_EXTERNAL_ARGS = ("scale", "attention", "hpf")


def _plain(value: Any) -> Any:
    """Deep-convert mappings/sequences (incl. OmegaConf containers) to dicts/lists of plain values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value


def _backbone_options(backbone: Mapping[str, Any]) -> tuple[type[nn.Module], dict[str, Any]]:
    options = dict(backbone)
    arch = BACKBONES.check(options.pop("arch", None))
    cls = BACKBONES[arch]
    assert cls is not None
    check_options(options, constructor_options(cls, exclude=_EXTERNAL_ARGS), f"backbone (arch={arch!r})")
    return cls, options


def model_spec(
    backbone: Mapping[str, Any],
    attention: Mapping[str, Any] | None,
    hpf: Mapping[str, Any] | None,
    scale: int,
) -> dict[str, Any]:
    """Validated plain-dict form {"backbone", "attention", "hpf", "scale"}; `build_model(**spec)` rebuilds."""
    from sr_lit.models.blocks.hpf import parse_hpf

    spec = {
        "backbone": _plain(backbone),
        "attention": _plain(attention) if attention is not None else {"name": "none"},
        "hpf": _plain(hpf) if hpf is not None else {"name": "none"},
        "scale": check_scale(scale),
    }
    _backbone_options(spec["backbone"])
    ATTENTION.check(spec["attention"].get("name"))
    parse_hpf(spec["hpf"])
    return spec


def model_spec_from_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The spec of a composed train/summary config (its `backbone`, `attention`, `hpf` nodes and `scale`).

    Reading a DictConfig's items resolves its interpolations, so this needs no OmegaConf import.
    """
    for key in ("backbone", "scale"):
        if key not in cfg:
            raise ConfigError(f"the config has no `{key}`: a model needs backbone, attention, hpf and scale")
    return model_spec(
        backbone=cfg["backbone"], attention=cfg.get("attention"), hpf=cfg.get("hpf"), scale=cfg["scale"]
    )


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
    """Every registered (arch, attention name, hpf name, scale) combination."""
    return list(itertools.product(archs or BACKBONES.names(), ATTENTION.names(), HPF.names(), scales))


__all__ = [
    "ATTENTION",
    "BACKBONES",
    "HPF",
    "SCALES",
    "Registry",
    "build_model",
    "count_params",
    "model_spec",
    "model_spec_from_config",
    "register_attention",
    "register_backbone",
    "register_hpf",
    "variant_grid",
]
