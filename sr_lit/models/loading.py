"""Load a model from a Lightning ``.ckpt``, an exported ``.safetensors``, or a released EDSR/RCAN file.

Our formats carry the model spec (``sr_lit.models.registry.model_spec``), so the architecture is
rebuilt from the file alone: no config needs to be passed next to a checkpoint. Plain state dicts
(EDSR-PyTorch / RCAN ``.pt``, BasicSR ``.pth`` with ``params_ema`` / ``params``) carry none: their
spec is read off the keys and shapes (``sr_lit.models.layouts.detect``). Everything is loaded with
``torch.load(weights_only=True)`` or safetensors; nothing is unpickled beyond tensors and containers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_lit.errors import CheckpointError
from sr_lit.utils.files import write_atomic

__all__ = [
    "BASICSR_PARAM_KEYS",
    "CheckpointError",
    "HashCheck",
    "InitMatch",
    "LoadedWeights",
    "TorchScriptFileError",
    "check_hash_prefix",
    "clean_state_dict",
    "fit_state",
    "is_torchscript_archive",
    "load_model",
    "load_state",
    "load_state_dict_any",
    "match_init_state",
    "read_init_weights",
    "read_weights",
    "save_safetensors",
]

_NET_PREFIX = "net."
_COMPILE_INFIX = "_orig_mod."  # torch.compile wraps the module; its state_dict keys gain this part
_SPEC_KEY = "model_spec"
_log = logging.getLogger(__name__)
# BasicSR .pth: {"params": ..., "params_ema": ...}; the EMA weights are the ones its tests evaluate
BASICSR_PARAM_KEYS = ("params_ema", "params")


def clean_state_dict(state: Mapping[str, torch.Tensor], prefix: str = _NET_PREFIX) -> dict[str, torch.Tensor]:
    """Model keys from a LightningModule state dict: keep ``prefix`` keys, strip it and ``_orig_mod.``."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if prefix and not key.startswith(prefix):
            continue  # loss modules, metrics, ... of the LightningModule
        out[key[len(prefix) :].replace(_COMPILE_INFIX, "")] = value
    return out


def _plain(obj: Any) -> Any:
    """DictConfig/containers -> plain JSON-able python (a spec may come back as an OmegaConf node)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, (DictConfig, ListConfig)):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _check_spec(path: Path, spec: Any) -> dict:
    spec = _plain(spec)
    if not isinstance(spec, dict):
        raise CheckpointError(path, f"'{_SPEC_KEY}' is not a mapping (got {type(spec).__name__})")
    missing = [k for k in ("backbone", "attention", "hpf", "scale") if k not in spec]
    if missing:
        raise CheckpointError(path, f"'{_SPEC_KEY}' lacks {', '.join(missing)}")
    return spec


class TorchScriptFileError(CheckpointError):
    """A TorchScript archive (``sr-export --format torchscript``) given where a checkpoint is expected."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(
            path, "a TorchScript export, not a checkpoint: give the .ckpt or an sr-export .safetensors file"
        )


def is_torchscript_archive(path: str | Path) -> bool:
    """A zip whose records include ``constants.pkl`` or ``code/`` (what ``torch.jit.save`` writes; a
    ``torch.save`` zip has neither). Reads the zip directory only; torch.load would warn and then fail."""
    try:
        with zipfile.ZipFile(path) as z:
            records = [name.partition("/")[2] for name in z.namelist()]
    except (zipfile.BadZipFile, OSError):
        return False
    return any(r == "constants.pkl" or r.startswith("code/") for r in records)


def _unpickling_reason(e: Exception) -> str:
    """torch's weights_only refusal is a paragraph; keep the line that says what it refused."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    detail = next((ln for ln in lines if "WeightsUnpickler error" in ln), "")
    detail = detail.split("WeightsUnpickler error:", 1)[-1].strip()
    return (
        "not a checkpoint, or it holds objects that safe loading (torch.load weights_only=True) refuses"
        + (f" ({detail})" if detail else "")
    )


def _torch_load(path: Path, map_location: Any) -> Any:
    """torch.load with weights_only=True (tensors and plain containers only), one-line errors."""
    if is_torchscript_archive(path):
        raise TorchScriptFileError(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(path, _unpickling_reason(e)) from e
    except Exception as e:  # torch.load fails in many ways on non-checkpoints (IndexError, EOFError, ...)
        raise CheckpointError(path, f"not a PyTorch/Lightning checkpoint ({type(e).__name__})") from e


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _plain_state(obj: Any) -> tuple[dict[str, torch.Tensor], str] | None:
    """(tensors, where) of a plain state dict or a BasicSR ``.pth`` (``params_ema`` preferred), else None."""
    if _is_tensor_dict(obj):
        return dict(obj), "state dict"
    if isinstance(obj, Mapping):
        for key in BASICSR_PARAM_KEYS:
            if _is_tensor_dict(obj.get(key)):
                return dict(obj[key]), f"'{key}'"
    return None


@dataclass(frozen=True)
class LoadedWeights:
    """A model file read: spec, our-named evaluation weights, and where they came from.

    ``source``: ``sr_lit`` (spec stored in the file) or the layout of a plain state dict (``official`` =
    EDSR-PyTorch/RCAN, ``basicsr``); ``where``: the part of the file read (``'params_ema'``, ...); ``assumed``: the
    values no file of that kind stores, with the value taken (see ``sr_lit.models.layouts.detect``).
    """

    spec: dict
    state: dict[str, torch.Tensor] = field(repr=False)
    source: str
    where: str = ""
    assumed: tuple[str, ...] = ()

    def describe(self) -> str:
        from sr_lit.models.layouts import variant_label

        origin = {
            "sr_lit": "sr_lit file",
            "official": "EDSR-PyTorch / RCAN layout",
            "basicsr": "BasicSR layout",
        }
        where = f", {self.where}" if self.where else ""
        return f"{variant_label(self.spec)} x{self.spec['scale']} ({origin.get(self.source, self.source)}{where})"


def _detected(
    path: Path, state: Mapping[str, torch.Tensor], where: str, hints: Mapping[str, Any]
) -> LoadedWeights:
    from sr_lit.models.layouts import detect

    try:
        found = detect(state, **hints)
    except ValueError as e:
        raise CheckpointError(path, str(e)) from None
    return LoadedWeights(found.spec, found.state, found.layout, where, found.assumed)


def _check_hints(path: Path, spec: dict, hints: Mapping[str, Any]) -> None:
    """Our files carry their spec: an explicit arch / scale / res_scale must agree with it."""
    backbone = spec.get("backbone") or {}
    given = {
        "arch": (hints.get("arch"), backbone.get("arch")),
        "scale": (hints.get("scale"), spec.get("scale")),
        "res_scale": (hints.get("res_scale"), backbone.get("res_scale")),
    }
    for name, (want, have) in given.items():
        if want is not None and want != have:
            raise CheckpointError(path, f"its model spec has {name} {have}, not {want}")


def _read_safetensors(path: Path, map_location: Any, hints: Mapping[str, Any]) -> LoadedWeights:
    from safetensors import SafetensorError, safe_open

    device = str(map_location) if map_location is not None else "cpu"
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(path, f"not a safetensors file ({e})") from e
    if _SPEC_KEY not in meta:
        # weights from elsewhere (a BasicSR/EDSR state dict saved as safetensors): read the spec off the keys
        return _detected(path, state, "safetensors without a model spec", hints)
    try:
        spec = json.loads(meta[_SPEC_KEY])
    except json.JSONDecodeError as e:
        raise CheckpointError(path, f"'{_SPEC_KEY}' metadata is not valid JSON ({e})") from e
    spec = _check_spec(path, spec)
    _check_hints(path, spec, hints)
    return LoadedWeights(spec, state, "sr_lit")


def _read_torch(path: Path, map_location: Any, hints: Mapping[str, Any]) -> LoadedWeights:
    obj = _torch_load(path, map_location)
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        hparams = obj.get("hyper_parameters") or {}
        if not isinstance(hparams, Mapping) or _SPEC_KEY not in hparams:
            raise CheckpointError(
                path, f"checkpoint has no hyper_parameters['{_SPEC_KEY}'] (not written by sr_lit's SRModule?)"
            )
        state = clean_state_dict(obj["state_dict"])
        if not state:
            raise CheckpointError(path, f"checkpoint state_dict has no '{_NET_PREFIX}*' model weights")
        spec = _check_spec(path, hparams[_SPEC_KEY])
        _check_hints(path, spec, hints)
        return LoadedWeights(spec, state, "sr_lit")
    plain = _plain_state(obj)
    if plain is None:
        raise CheckpointError(
            path,
            "neither an sr_lit checkpoint, a state dict of tensors, nor a BasicSR file ('params_ema'/'params')",
        )
    return _detected(path, plain[0], plain[1], hints)


def read_weights(
    path: str | Path,
    map_location: Any = "cpu",
    *,
    arch: str | None = None,
    scale: int | None = None,
    res_scale: float | None = None,
) -> LoadedWeights:
    """Spec + weights of any model file sr_lit reads: our ``.ckpt`` / ``.safetensors``, or a released EDSR/RCAN
    state dict (``.pt``, BasicSR ``.pth``, plain ``.safetensors``), whose spec is detected from keys and shapes.

    ``arch`` / ``scale`` are checked against the file; ``res_scale`` sets what a plain EDSR file cannot tell.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "file not found")
    if not path.is_file():
        raise CheckpointError(path, "not a file")
    hints = {"arch": arch, "scale": scale, "res_scale": res_scale}
    if path.suffix.lower() == ".safetensors":
        return _read_safetensors(path, map_location, hints)
    return _read_torch(path, map_location, hints)


def load_state(path: str | Path, map_location: Any = "cpu") -> tuple[dict, dict[str, torch.Tensor]]:
    """(spec, model state dict) of any model file ``read_weights`` reads, without building the model."""
    loaded = read_weights(path, map_location)
    return loaded.spec, loaded.state


@dataclass(frozen=True)
class InitWeights:
    state: dict[str, torch.Tensor] = field(repr=False)
    source: str  # sr_lit | official | basicsr | state dict


def read_init_weights(path: str | Path, map_location: Any = "cpu") -> InitWeights:
    """Our-named weights of any model file, spec or not, for ``init_from``: an sr_lit .ckpt/.safetensors, a plain
    state dict (ours or EDSR-PyTorch/RCAN), or a BasicSR file (renamed to our keys)."""
    from sr_lit.models.layouts import to_ours

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file not found" if not path.exists() else "not a file")
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt", device=str(map_location or "cpu")) as f:
                ours = _SPEC_KEY in (f.metadata() or {})
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(path, f"not a safetensors file ({e})") from e
        if ours:
            return InitWeights(state, "sr_lit")
    else:
        obj = _torch_load(path, map_location)
        if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
            state = clean_state_dict(obj["state_dict"])  # Lightning checkpoint
            if not state:
                raise CheckpointError(path, "holds no model weights")
            return InitWeights(state, "sr_lit")
        plain = _plain_state(obj)
        if plain is None:
            raise CheckpointError(path, "neither a Lightning checkpoint nor a state dict of tensors")
        state = plain[0]
    try:
        renamed, layout = to_ours(state, add_meanshift=False)
    except ValueError as e:
        raise CheckpointError(path, str(e)) from None
    return InitWeights(renamed, layout or "state dict")


def load_state_dict_any(path: str | Path, map_location: Any = "cpu") -> dict[str, torch.Tensor]:
    """Model weights (our key names) from any file ``read_init_weights`` reads; no model spec is required."""
    return read_init_weights(path, map_location).state


@dataclass(frozen=True)
class InitMatch:
    """What ``init_from`` takes from a file: ``loaded`` tensors, file keys ``skipped``, model keys left ``fresh``
    (their initialisation kept), and those fresh keys grouped by the module that owns them all."""

    loaded: dict[str, torch.Tensor] = field(repr=False)
    skipped: list[str]
    fresh: list[str]
    fresh_units: dict[str, int]  # "MMCAttention at body.*.body.*.body.3" -> count

    def summary(self) -> str:
        units = "; ".join(f"{n} x {what}" for what, n in self.fresh_units.items())
        return (
            f"loaded {len(self.loaded)} tensors; skipped {len(self.skipped)} from the file "
            f"({_few(self.skipped, 8) or 'none'}); {len(self.fresh)} tensors of this model start fresh"
            + (f": {units}" if units else "")
        )


def _few(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def _fresh_units(model: nn.Module, fresh: set[str]) -> dict[str, int]:
    """Fresh keys grouped by the outermost module all of whose tensors are fresh: e.g. 200 x MMCAttention."""
    state_keys: dict[str, list[str]] = {}
    for key in model.state_dict():
        parts = key.split(".")
        for i in range(len(parts)):  # every ancestor module, the root ("") included
            state_keys.setdefault(".".join(parts[:i]), []).append(key)
    owners: dict[str, str] = {}
    for name, module in model.named_modules():  # parents come before their children
        keys = state_keys.get(name)
        inside_owner = "" in owners or any(name.startswith(f"{o}.") for o in owners)
        if keys and not inside_owner and all(k in fresh for k in keys):
            owners[name] = type(module).__name__
    counts: dict[str, int] = {}
    for name, cls in owners.items():
        where = re.sub(r"\.\d+(?=\.|$)", ".*", name) or "(root)"
        label = f"{cls} at {where}"
        counts[label] = counts.get(label, 0) + 1
    return counts


def match_init_state(model: nn.Module, src: Mapping[str, torch.Tensor]) -> InitMatch:
    """Fine-tuning (x2 -> x3/x4, DESIGN 1.4; a released RCAN -> RCAN + MMCA + HPF): every tensor whose name and
    shape match, except the upsampler when it differs from this model's (another scale): then all of it keeps its
    initialisation, even the x4 upsampler's first conv, whose shape equals the x2 one."""
    from sr_lit.models.blocks.upsample import Upsampler

    own = model.state_dict()
    prefixes = tuple(f"{name}." for name, m in model.named_modules() if isinstance(m, Upsampler))
    own_up = {k: v.shape for k, v in own.items() if k.startswith(prefixes)}
    src_up = {k: v.shape for k, v in src.items() if k.startswith(prefixes)}
    skip_upsampler = own_up != src_up
    loaded: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for k, v in src.items():
        if k in own and own[k].shape == v.shape and not (skip_upsampler and k in src_up):
            loaded[k] = v
        else:
            skipped.append(k)
    fresh = [k for k in own if k not in loaded]
    return InitMatch(loaded, skipped, fresh, _fresh_units(model, set(fresh)))


def check_hash_prefix(path: str | Path) -> HashCheck | None:
    """The sha256 prefix in a released file's name (``edsr_baseline_x2-1bc95232.pt``, BasicSR's
    ``..._official-3ba7b086.pth``; torch.hub's convention) checked against the file; None without one."""
    path = Path(path)
    m = _HASH_IN_NAME.search(path.stem)
    if m is None:
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    actual = digest.hexdigest()
    return HashCheck(expected=m.group(1).lower(), actual=actual)


_HASH_IN_NAME = re.compile(r"-([0-9a-fA-F]{8,64})$")


@dataclass(frozen=True)
class HashCheck:
    expected: str  # the prefix in the file name
    actual: str  # the file's full sha256

    @property
    def matches(self) -> bool:
        return self.actual.startswith(self.expected)

    def describe(self) -> str:
        if self.matches:
            return f"sha256 starts with {self.expected}, as its name says"
        if self.expected.isdigit():  # a date or a step count looks like a hash too: no verdict
            return f"the {self.expected} in its name is not its sha256 prefix (a date or number, not a hash?)"
        return (
            f"sha256 {self.actual[: len(self.expected)]}... does NOT match the {self.expected} in its name "
            "(a damaged or different file)"
        )


def fit_state(path: Path, model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Strict load with a readable error: which keys are missing/unexpected/mis-shaped."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:

        def _few(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_few(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch (file vs model): {_few(shapes)}")
        raise CheckpointError(path, "weights do not fit the model spec; " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def load_model(path: str | Path, map_location: Any = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model from its spec and load the evaluation weights (EMA when it was on); eval mode.

    Released EDSR/RCAN files load too (spec detected, ``read_weights``); the returned spec then records what was
    assumed (EDSR's res_scale from the width): ``sr-import --res-scale`` writes a file with another value."""
    from sr_lit.models.registry import build_model

    path = Path(path)
    loaded = read_weights(path, map_location)
    spec, state = loaded.spec, loaded.state
    try:
        model = build_model(**spec)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(path, f"cannot build the model from its spec ({e})") from e
    fit_state(path, model, state)
    if loaded.source != "sr_lit":
        assumed = "; ".join(loaded.assumed)
        _log.info("%s: %s%s", path, loaded.describe(), f"; assumed {assumed}" if assumed else "")
    if isinstance(map_location, (str, torch.device)):
        model = model.to(map_location)
    return model.eval(), spec


def save_safetensors(model: nn.Module, spec: Mapping, path: str | Path) -> Path:
    """Export weights + spec (JSON in the metadata) so ``load_model`` can rebuild it without pickle."""
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # clone: safetensors refuses tensors that share storage (views, tied weights).
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    write_atomic(path, save(state, metadata={_SPEC_KEY: json.dumps(_plain(spec)), "format": "sr_lit"}))
    return path
