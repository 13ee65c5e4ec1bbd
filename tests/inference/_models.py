"""Small models for the inference tests, built from the real configs (no Hydra needed)."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def group(name: str, option: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONFIGS / name / f"{option}.yaml"), resolve=True)


def tiny_spec(scale: int = 2, attention: str = "none", hpf: str = "dynamic") -> dict:
    from sr_lit.models.registry import model_spec

    return model_spec(group("backbone", "edsr_tiny"), group("attention", attention), group("hpf", hpf), scale)


def tiny_model(scale: int = 2, seed: int = 0, **kw) -> tuple[nn.Module, dict]:
    """edsr_tiny with random weights and non-trivial BN statistics (eval mode), plus its spec."""
    from sr_lit.models.registry import build_model

    spec = tiny_spec(scale, **kw)
    torch.manual_seed(seed)
    model = build_model(**spec).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # default stats (0, 1) would hide a BN applied per tile
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return model, spec


def lightning_ckpt(path: Path, model: nn.Module, spec: dict) -> Path:
    """``model`` saved as SRModule's checkpoints hold it: ``net.``-prefixed state dict + the model spec."""
    state = {f"net.{k}": v for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "hyper_parameters": {"model_spec": spec}}, path)
    return path


def to8(x01: torch.Tensor) -> torch.Tensor:
    """[0,1] -> [0,255] 8-bit values (the protocol's quantisation), float for diffs."""
    from sr_lit.metrics.y_channel import quantize

    return quantize(x01)
