"""Tiny random-weight models of every config choice, saved as Lightning-style checkpoints (as SRModule writes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

from sr_lit.models.registry import ATTENTION, HPF
from sr_lit.utils.config import config_options
from tests.inference._models import lightning_ckpt

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

BACKBONES = config_options("backbone")  # every backbone config (presets of the registered archs)
ATTENTIONS = ATTENTION.names()
HPFS = HPF.names()
# the real config files with fewer/narrower blocks (keeps res_scale, rgb_range, ...); 4 EDSR blocks keep one HPF
_SHRINK = {
    "edsr_tiny": {},
    "edsr_baseline": {"n_resblocks": 4, "n_feats": 32},
    "edsr": {"n_resblocks": 4, "n_feats": 32},
    "rcan": {"n_resgroups": 2, "n_resblocks": 2, "n_feats": 16},
}


def _group(name: str, option: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONFIGS / name / f"{option}.yaml"), resolve=True)


def variant_spec(backbone: str, attention: str, hpf: str, scale: int = 2) -> dict:
    from sr_lit.models.registry import model_spec

    bb = {**_group("backbone", backbone), **_SHRINK[backbone]}
    return model_spec(bb, _group("attention", attention), _group("hpf", hpf), scale)


def variant_model(spec: dict, seed: int = 0) -> nn.Module:
    """Random weights and non-trivial BN statistics (default (0, 1) stats would hide a wrong BN export)."""
    from sr_lit.models.registry import build_model

    torch.manual_seed(seed)
    model = build_model(**spec).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return model


def save_ckpt(path: Path, spec: dict, seed: int = 0) -> Path:
    return lightning_ckpt(path, variant_model(spec, seed), spec)


def png(path: Path, h: int, w: int, seed: int = 0) -> Path:
    """A smooth-ish RGB image (upscaled noise), so that SR outputs are not saturated."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 4 + 2, w // 4 + 2, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(base).resize((w, h), Image.BICUBIC).save(path)
    return path


def read8(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).astype(np.int16)
