"""Backbones built from the real config files: published parameter counts, every variant's forward/backward,
receptive margin (exact tiling), checkpoint-compatible layout, registry validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from sr_lit.models.registry import BACKBONES, build_model, count_params, model_spec, variant_grid

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# Small enough for 2 CPU cores; built from the real config files with overrides.
TEST_BACKBONES: dict[str, tuple[str, dict[str, Any]]] = {
    "edsr": ("edsr_tiny", {}),
    "rcan": ("rcan", {"n_resgroups": 2, "n_resblocks": 2, "n_feats": 16}),
}


def load(group: str, name: str, **overrides: Any) -> Any:
    cfg = OmegaConf.load(CONFIGS / group / f"{name}.yaml")
    return OmegaConf.merge(cfg, overrides)


def small_backbone(arch: str) -> Any:
    name, overrides = TEST_BACKBONES[arch]
    return load("backbone", name, **overrides)


@pytest.mark.parametrize(
    ("backbone", "attention", "counts"),
    [
        ("edsr_baseline", "none", {2: 1_369_859, 3: 1_554_499, 4: 1_517_571}),
        ("edsr", "none", {2: 40_729_603, 3: 43_680_003, 4: 43_089_923}),
        ("rcan", "ca", {2: 15_444_643, 3: 15_629_283, 4: 15_592_355}),
    ],
)
def test_published_parameter_counts(backbone: str, attention: str, counts: dict[int, int]) -> None:
    for scale, expected in counts.items():
        with torch.device("meta"):  # counting needs no weights
            model = build_model(
                load("backbone", backbone), load("attention", attention), load("hpf", "none"), scale
            )
        assert count_params(model) == expected, (backbone, scale)
        assert model.scale == scale


def test_meanshift_is_frozen_and_counted_out() -> None:
    model = build_model(load("backbone", "edsr_tiny"), None, None, 2)
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ["sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias"]
    torch.testing.assert_close(model.sub_mean.bias, -255 * torch.tensor([0.4488, 0.4371, 0.4040]))


@pytest.mark.parametrize(("arch", "attention", "hpf", "scale"), variant_grid())
def test_every_variant_forward_backward(arch: str, attention: str, hpf: str, scale: int) -> None:
    torch.manual_seed(0)
    model = build_model(small_backbone(arch), load("attention", attention), load("hpf", hpf), scale)
    x = torch.rand(2, 3, 17, 23)
    y = model(x)
    assert y.shape == (2, 3, 17 * scale, 23 * scale)
    assert torch.isfinite(y).all()
    (y - torch.rand_like(y)).abs().mean().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("arch", ["edsr", "rcan"])
@pytest.mark.parametrize(
    "hpf_overrides",
    [
        {"placement": "every", "every": 1, "combine": "replace", "softmax": "joint", "impl": "unfold"},
        {"kernel_size": 5, "groups": 4, "bn": False},
    ],
)
def test_hpf_options_run(arch: str, hpf_overrides: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = build_model(
        small_backbone(arch), load("attention", "mmca"), load("hpf", "dynamic", **hpf_overrides), 2
    )
    y = model(torch.rand(1, 3, 5, 6))  # smaller than the attention pool size
    assert y.shape == (1, 3, 10, 12) and torch.isfinite(y).all()


def test_hpf_placement() -> None:
    hpf = load("hpf", "dynamic")
    edsr = build_model(small_backbone("edsr"), None, hpf, 2)
    assert [i for i, block in enumerate(edsr.body[:-1]) if block.hpf is not None] == [3, 7]
    rcan = build_model(small_backbone("rcan"), None, hpf, 2)
    assert all(group.hpf is not None for group in rcan.body[:-1])
    assert not any(block.hpf is not None for group in rcan.body[:-1] for block in group.body[:-1])
    rcan_every = build_model(
        small_backbone("rcan"), None, load("hpf", "dynamic", placement="every", every=2), 2
    )
    for group in rcan_every.body[:-1]:
        assert group.hpf is None
        assert [block.hpf is not None for block in group.body[:-1]] == [False, True]


def test_receptive_margins() -> None:
    none, ca, no_hpf = load("attention", "none"), load("attention", "ca"), load("hpf", "none")
    with torch.device("meta"):
        margins = {
            (name, s): build_model(
                load("backbone", name), ca if name == "rcan" else none, no_hpf, s
            ).receptive_margin
            for name in ("edsr_baseline", "edsr", "rcan")
            for s in (2, 3, 4)
        }
    # head + 2 per block (+1 per RCAN group tail) + body tail + upsampler/tail convs (HR convs: fractions of a pixel)
    assert margins[("edsr_baseline", 2)] == 36 and margins[("edsr_baseline", 4)] == 36
    assert margins[("edsr", 3)] == 68
    assert margins[("rcan", 2)] == 414
    with torch.device("meta"):
        with_hpf = build_model(load("backbone", "edsr_baseline"), none, load("hpf", "dynamic"), 2)
    assert with_hpf.receptive_margin == 36 + 4  # 4 HPF units (every 4 of 16 blocks), radius k // 2 = 1 each


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("arch", ["edsr", "rcan"])
def test_receptive_margin_is_the_exact_tiling_overlap(arch: str, scale: int) -> None:
    # Attention none: CA/FCA/MMCA pool globally, so only the local model can tile exactly.
    torch.manual_seed(0)
    # float64: at random init the border effect that leaks in one pixel too far is tiny (~1e-11), but not zero.
    model = build_model(small_backbone(arch), load("attention", "none"), load("hpf", "dynamic"), scale)
    model = model.eval().double()
    margin = model.receptive_margin
    lo, hi = margin + 3, margin + 9  # a 6x6 LR tile, with more image than the margin around it
    x = torch.rand(1, 3, hi + margin + 3, hi + margin + 3, dtype=torch.float64)

    def tile_error(m: int) -> float:
        with torch.no_grad():
            full = model(x)[..., lo * scale : hi * scale, lo * scale : hi * scale]
            tile = model(x[..., lo - m : hi + m, lo - m : hi + m])[
                ..., m * scale : -m * scale, m * scale : -m * scale
            ]
        return (tile - full).abs().max().item()

    assert tile_error(margin) <= 1e-12
    assert tile_error(margin - 1) > 1e-13  # and the margin is tight


def test_checkpoint_compatible_state_dict_keys() -> None:
    edsr = build_model(load("backbone", "edsr_tiny"), None, None, 4).state_dict()
    assert {"head.0.weight", "body.0.body.0.weight", "body.0.body.2.bias", "body.8.weight"} <= edsr.keys()
    assert {"tail.0.0.weight", "tail.0.2.weight", "tail.1.weight", "sub_mean.weight"} <= edsr.keys()
    rcan = build_model(small_backbone("rcan"), load("attention", "ca"), None, 2).state_dict()
    assert {"body.0.body.1.body.3.conv_du.0.weight", "body.0.body.1.body.3.conv_du.2.bias"} <= rcan.keys()
    assert {"body.1.body.2.weight", "body.2.weight", "tail.0.0.weight", "tail.1.weight"} <= rcan.keys()


def test_model_spec_is_plain_and_rebuilds() -> None:
    spec = model_spec(
        small_backbone("rcan"), load("attention", "mmca", freq=[[0, 0], [1, 1]]), load("hpf", "dynamic"), 3
    )
    assert json.loads(json.dumps(spec)) == spec
    assert spec["attention"]["freq"] == [[0, 0], [1, 1]] and spec["scale"] == 3
    a, b = build_model(**spec), build_model(**spec)
    assert a.state_dict().keys() == b.state_dict().keys()
    assert model_spec(small_backbone("edsr"), None, None, 2)["hpf"] == {"name": "none"}


@pytest.mark.parametrize(
    ("backbone", "scale", "match"),
    [
        ({"arch": "srcnn"}, 2, "backbone.arch must be one of edsr, rcan"),
        ({"arch": "edsr", "n_resgroups": 2}, 2, r"unknown key backbone \(arch='edsr'\).'n_resgroups'"),
        ({"arch": "rcan", "depth": 2}, 2, "unknown key"),
        ({"arch": "edsr"}, 8, "scale must be 2, 3 or 4"),
    ],
)
def test_registry_rejects_bad_config(backbone: dict, scale: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_model(backbone, None, None, scale)


def test_variant_grid_covers_all_combinations() -> None:
    assert set(BACKBONES) == {"edsr", "rcan"}
    assert len(variant_grid()) == 2 * 4 * 2 * 3
