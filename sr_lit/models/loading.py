"""Load a trained model from a Lightning ``.ckpt`` or an exported ``.safetensors`` file.

Both formats carry the model spec (``sr_lit.models.registry.model_spec``), so the architecture is
rebuilt from the file alone: no config needs to be passed next to a checkpoint.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_lit.errors import CheckpointError
from sr_lit.utils.files import write_atomic

__all__ = [
    "CheckpointError",
    "TorchScriptFileError",
    "clean_state_dict",
    "is_torchscript_archive",
    "load_model",
    "load_state",
    "load_state_dict_any",
    "save_safetensors",
]

_NET_PREFIX = "net."
_COMPILE_INFIX = "_orig_mod."  # torch.compile wraps the module; its state_dict keys gain this part
_SPEC_KEY = "model_spec"


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


def _read_ckpt(path: Path, map_location: Any) -> tuple[dict, dict[str, torch.Tensor]]:
    if is_torchscript_archive(path):
        raise TorchScriptFileError(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(path, _unpickling_reason(e)) from e
    except Exception as e:  # torch.load fails in many ways on non-checkpoints (IndexError, EOFError, ...)
        raise CheckpointError(path, f"not a PyTorch/Lightning checkpoint ({type(e).__name__})") from e
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise CheckpointError(path, "not a Lightning checkpoint (no 'state_dict')")
    hparams = ckpt.get("hyper_parameters") or {}
    if not isinstance(hparams, Mapping) or _SPEC_KEY not in hparams:
        raise CheckpointError(
            path, f"checkpoint has no hyper_parameters['{_SPEC_KEY}'] (not written by sr_lit's SRModule?)"
        )
    state = clean_state_dict(ckpt["state_dict"])
    if not state:
        raise CheckpointError(path, f"checkpoint state_dict has no '{_NET_PREFIX}*' model weights")
    return _check_spec(path, hparams[_SPEC_KEY]), state


def _read_safetensors(path: Path, map_location: Any) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors import SafetensorError, safe_open

    device = str(map_location) if map_location is not None else "cpu"
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(path, f"not a safetensors file ({e})") from e
    if _SPEC_KEY not in meta:
        raise CheckpointError(path, f"safetensors metadata has no '{_SPEC_KEY}' (not exported by sr_lit?)")
    try:
        spec = json.loads(meta[_SPEC_KEY])
    except json.JSONDecodeError as e:
        raise CheckpointError(path, f"'{_SPEC_KEY}' metadata is not valid JSON ({e})") from e
    return _check_spec(path, spec), state


def load_state(path: str | Path, map_location: Any = "cpu") -> tuple[dict, dict[str, torch.Tensor]]:
    """(spec, model state dict) from a ``.ckpt`` or ``.safetensors`` file, without building the model."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "file not found")
    if not path.is_file():
        raise CheckpointError(path, "not a file")
    if path.suffix.lower() == ".safetensors":
        return _read_safetensors(path, map_location)
    return _read_ckpt(path, map_location)


def load_state_dict_any(path: str | Path, map_location: Any = "cpu") -> dict[str, torch.Tensor]:
    """Model weights from an sr_lit .ckpt/.safetensors, or a plain torch state dict (e.g. official EDSR .pt).

    For fine-tuning (``init_from``): no model spec is required; keys are model keys (no ``net.``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file not found" if not path.exists() else "not a file")
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device=str(map_location or "cpu"))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(path, f"not a safetensors file ({e})") from e
    if is_torchscript_archive(path):
        raise TorchScriptFileError(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(path, _unpickling_reason(e)) from e
    except Exception as e:  # torch.load fails in many ways on non-checkpoints
        raise CheckpointError(path, f"not a PyTorch checkpoint ({type(e).__name__})") from e
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        state = clean_state_dict(obj["state_dict"])  # Lightning checkpoint
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        # plain state dict; DataParallel adds "module."
        state = {k.removeprefix("module.").replace(_COMPILE_INFIX, ""): v for k, v in obj.items()}
    else:
        raise CheckpointError(path, "neither a Lightning checkpoint nor a state dict of tensors")
    if not state:
        raise CheckpointError(path, "holds no model weights")
    return state


def _fit_state(path: Path, model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
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
    """Rebuild the model from its spec and load the evaluation weights (EMA when it was on); eval mode."""
    from sr_lit.models.registry import build_model

    path = Path(path)
    spec, state = load_state(path, map_location)
    try:
        model = build_model(**spec)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(path, f"cannot build the model from its spec ({e})") from e
    _fit_state(path, model, state)
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
