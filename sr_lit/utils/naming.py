"""Run names, groups and tags built from the Hydra config choices (W&B, CSV/TensorBoard folders, sr-report)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def hydra_choices() -> dict[str, str]:
    """The chosen option of every config group (`backbone: rcan`, ...); empty outside a Hydra run."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if v is not None}
    except Exception:  # noqa: BLE001 - naming must never break a run
        pass
    return {}


def run_identity(cfg: Mapping[str, Any], choices: Mapping[str, str] | None = None) -> dict[str, Any]:
    """name/group/tags: `edsr_tiny-mmca-hpf_dynamic-x2-s0`, group = sweep or experiment name, tags = the choices."""
    choices = dict(choices if choices is not None else hydra_choices())
    backbone = choices.get("backbone", cfg.get("backbone", {}).get("arch", "model"))
    attention = choices.get("attention", cfg.get("attention", {}).get("name", "none"))
    hpf = choices.get("hpf", cfg.get("hpf", {}).get("name", "none"))
    scale, seed = cfg.get("scale"), cfg.get("seed")
    name = f"{backbone}-{attention}-hpf_{hpf}-x{scale}-s{seed}"
    group = choices.get("sweep") or choices.get("experiment") or "default"
    tags = [f"backbone:{backbone}", f"attention:{attention}", f"hpf:{hpf}", f"x{scale}", f"seed:{seed}"]
    if choices.get("experiment"):
        tags.append(f"experiment:{choices['experiment']}")
    tags += [str(t) for t in (cfg.get("tags") or [])]
    return {"name": name, "group": str(group), "tags": tags}
