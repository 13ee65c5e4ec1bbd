"""Fixture files in the published EDSR / RCAN layouts, built from tests/models/fixtures/published_layouts.json (the
key lists written down from the official modules), plus a reference forward pass computed straight from an
official-layout state dict with torch.nn.functional, independent of sr_lit's modules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

FIXTURE = Path(__file__).resolve().parent / "models" / "fixtures" / "published_layouts.json"
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def layouts_fixture() -> dict:
    return json.loads(FIXTURE.read_text())


@dataclass(frozen=True)
class Dims:
    arch: str  # edsr | rcan
    n_feats: int
    n_blocks: int  # EDSR blocks / RCABs per group
    n_groups: int = 0  # RCAN only
    reduction: int = 16


def _shape(template: list, dims: Dims) -> tuple[int, ...]:
    values = {
        "F": dims.n_feats,
        "4F": 4 * dims.n_feats,
        "9F": 9 * dims.n_feats,
        "R": dims.n_feats // dims.reduction,
    }
    return tuple(values[t] if isinstance(t, str) else int(t) for t in template)


def published_rows(dims: Dims, scale: int) -> list[tuple[str, str | None, tuple[int, ...]]]:
    """[(official key, BasicSR key or None, shape)] of the published module with these dimensions."""
    fx = layouts_fixture()
    n = dims.n_blocks if dims.arch == "edsr" else dims.n_groups
    out = []
    for official, basicsr, shape, repeat in fx["common"] + fx[dims.arch]:
        if repeat in ("x2", "x3", "x4") and repeat != f"x{scale}":
            continue
        if repeat == "block":
            combos = [{"i": i} for i in range(dims.n_blocks)]
        elif repeat == "group":
            combos = [{"g": g} for g in range(dims.n_groups)]
        elif repeat == "group_block":
            combos = [{"g": g, "b": b} for g in range(dims.n_groups) for b in range(dims.n_blocks)]
        else:
            combos = [{}]
        for c in combos:
            fmt = {"n": n, "nb": dims.n_blocks, **c}
            out.append(
                (official.format(**fmt), basicsr.format(**fmt) if basicsr else None, _shape(shape, dims))
            )
    return out


def random_published_state(dims: Dims, scale: int, layout: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights (small, so outputs stay finite) in the official or BasicSR layout; MeanShift as released
    (identity weights, -/+ 255 * DIV2K mean) so both layouts hold the same network."""
    gen = torch.Generator().manual_seed(seed)
    mean = torch.tensor(DIV2K_MEAN) * 255.0
    state: dict[str, torch.Tensor] = {}
    for official, basicsr, shape in published_rows(dims, scale):
        if official.endswith("_mean.weight"):
            value = torch.eye(3).view(3, 3, 1, 1)
        elif official.endswith("_mean.bias"):
            value = -mean if official.startswith("sub_") else mean.clone()
        else:
            value = torch.randn(shape, generator=gen) * 0.05
        if layout == "official":
            state[official] = value
        elif basicsr is not None:
            state[basicsr] = value
    return state


def reference_forward(
    sd: dict[str, torch.Tensor], dims: Dims, scale: int, x01: torch.Tensor, res_scale: float = 1.0
) -> torch.Tensor:
    """The published forward pass on an official-layout state dict ([0, 1] in and out, rgb_range 255)."""

    def conv(x: torch.Tensor, name: str) -> torch.Tensor:
        w = sd[f"{name}.weight"]
        return F.conv2d(x, w, sd[f"{name}.bias"], padding=w.shape[-1] // 2)

    def branch(x: torch.Tensor, name: str) -> torch.Tensor:  # conv - ReLU - conv
        return conv(F.relu(conv(x, f"{name}.0")), f"{name}.2")

    h = conv(conv(x01 * 255.0, "sub_mean"), "head.0")
    y = h
    if dims.arch == "edsr":
        for i in range(dims.n_blocks):
            y = y + branch(y, f"body.{i}.body") * res_scale
        y = conv(y, f"body.{dims.n_blocks}")
    else:
        for g in range(dims.n_groups):
            z = y
            for b in range(dims.n_blocks):
                r = branch(z, f"body.{g}.body.{b}.body")
                pooled = r.mean(dim=(2, 3), keepdim=True)
                du = f"body.{g}.body.{b}.body.3.conv_du"
                z = z + r * torch.sigmoid(conv(F.relu(conv(pooled, f"{du}.0")), f"{du}.2"))
            y = conv(z, f"body.{g}.body.{dims.n_blocks}") + y
        y = conv(y, f"body.{dims.n_groups}")
    y = y + h
    factors = [2, 2] if scale == 4 else [scale]
    for j, factor in enumerate(factors):
        y = F.pixel_shuffle(conv(y, f"tail.0.{2 * j}"), factor)
    return conv(conv(y, "tail.1"), "add_mean") / 255.0
