"""The registries are the one list of what the configs can select: config files and registered classes agree,
and a new unit is one decorated class plus one YAML file (docs/DESIGN.md section 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from sr_lit.models.registry import ATTENTION, BACKBONES, HPF, register_attention
from sr_lit.utils.config import CONFIG_DIR, config_options


def _load(group: str, option: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / group / f"{option}.yaml").read_text()) or {}


@pytest.mark.parametrize(("group", "registry"), [("attention", ATTENTION), ("hpf", HPF)])
def test_unit_config_files_and_registry_agree(group: str, registry) -> None:
    files = config_options(group)
    assert set(files) == set(registry.names()), f"configs/{group}/ vs registry: {files} vs {registry.names()}"
    for option in files:
        assert _load(group, option).get("name") == option, (
            f"configs/{group}/{option}.yaml: name must be {option}"
        )


def test_every_backbone_config_names_a_registered_arch_and_every_arch_has_one() -> None:
    archs = {option: _load("backbone", option).get("arch") for option in config_options("backbone")}
    unregistered = {o: a for o, a in archs.items() if a not in BACKBONES}
    assert not unregistered, f"backbone configs naming unregistered archs: {unregistered}"
    assert set(BACKBONES.names()) <= set(archs.values()), "a registered backbone has no configs/backbone file"


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_attention("mmca")(nn.Identity)


def test_unknown_names_are_config_errors_listing_the_choices() -> None:
    from sr_lit.errors import ConfigError

    with pytest.raises(ConfigError, match="attention.name must be one of none, ca, fca, mmca"):
        ATTENTION.check("se")


class ToyGate(nn.Module):
    """A throw-away attention unit: a learned per-channel gate (what a user's new unit would look like)."""

    def __init__(self, channels: int, init: float = 0.0) -> None:
        super().__init__()
        self.logit = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.logit)[None, :, None, None]


@pytest.fixture
def toy_unit(tmp_path: Path):
    """Register ToyGate as `toy_gate` and write its YAML into an extra config dir, as the recipe says."""
    register_attention("toy_gate")(ToyGate)
    extra = tmp_path / "extra_configs"
    (extra / "attention").mkdir(parents=True)
    (extra / "attention" / "toy_gate.yaml").write_text("name: toy_gate\ninit: 1.0\n")
    yield extra
    ATTENTION.remove("toy_gate")


def test_a_new_unit_is_one_class_and_one_yaml(toy_unit: Path, compose_train, tmp_path: Path) -> None:
    from sr_lit.cli.summary import summarize
    from sr_lit.lit.pipeline import train
    from sr_lit.models.registry import build_model, model_spec_from_config, variant_grid
    from tests.conftest import compose

    assert "toy_gate" in ATTENTION and any(v[1] == "toy_gate" for v in variant_grid())
    searchpath = f"hydra.searchpath=[file://{toy_unit}]"
    cfg = compose_train("attention=toy_gate", "hpf=none", searchpath, "debug=fdr")
    spec = model_spec_from_config(cfg)
    assert spec["attention"] == {"name": "toy_gate", "init": 1.0}
    # build: one 32-channel gate per residual block of edsr_tiny, nothing else changed
    plain = build_model(**{**spec, "attention": {"name": "none"}})
    model = build_model(**spec)
    n_blocks = spec["backbone"]["n_resblocks"]
    extra = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == n_blocks * spec["backbone"]["n_feats"]
    # summary (sr-summary's code path) counts it
    summary = summarize(
        compose("summary", ["backbone=edsr_tiny", "attention=toy_gate", "hpf=none", searchpath], tmp_path)
    )
    assert summary["params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    # one training step through the real pipeline
    metrics = train(cfg)
    assert metrics["global_step"] == 1
