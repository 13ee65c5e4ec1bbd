"""Assertions shared by the reliability tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

_PLAIN = (str, int, float, bool, type(None))


def assert_plain(obj: Any, where: str = "hyper_parameters") -> None:
    """Only builtin containers and scalars (what weights_only=True accepts without allow-listing)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, str | int), f"{where}: key {k!r} is a {type(k).__name__}"
            assert_plain(v, f"{where}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            assert_plain(v, f"{where}[{i}]")
    else:
        assert isinstance(obj, _PLAIN), f"{where} is a {type(obj).__name__}, not a plain value"


def load_safe(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True (fails on anything but tensors and plain containers)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(ckpt, dict), path
    assert_plain(ckpt.get("hyper_parameters", {}))
    assert "state_dict" in ckpt, path
    return ckpt


def write_png(path: Path, h: int, w: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def truncate(path: Path) -> Path:
    """Cut a file in half: what an interrupted copy or download leaves."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def bad_image_folder(root: Path) -> Path:
    """3 good 48x48 images, a truncated PNG and an image too small for a 16-pixel LR patch at x2."""
    for i in range(3):
        write_png(root / f"good{i}.png", 48, 48, seed=i)
    truncate(write_png(root / "cut.png", 48, 48, seed=7))
    write_png(root / "tiny.png", 20, 20, seed=8)
    return root
