"""Locate the real benchmark images shared by the team (../shared/data or $SR_DATA_DIR).

Tests that need them call ``require_shared_data()``: it skips locally when the data are absent,
but fails under CI=true, so a CI run can never pass by silently skipping the protocol checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("SR_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def require_shared_data(*parts: str) -> Path:
    """Path to shared_data_dir()/parts; skip (or fail under CI=true) when it does not exist."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        msg = f"shared data not found: {path} (set SR_DATA_DIR)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def read_png(path: Path) -> torch.Tensor:
    """uint8 (C, H, W), C = 1 for mode L; no mode conversion (tests must see the file as stored)."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.array(im)
    t = torch.from_numpy(a)
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def benchmark_triplets(set_name: str, scale: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """[(name, HR uint8, official LR uint8)] for Set5/Set14 in the EDSR benchmark layout."""
    root = require_shared_data(set_name)
    out = []
    for hr_path in sorted((root / "HR").glob("*.png")):
        lr_path = root / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}.png"
        out.append((hr_path.stem, read_png(hr_path), read_png(lr_path)))
    if not out:
        pytest.fail(f"no HR images under {root / 'HR'}")
    return out
