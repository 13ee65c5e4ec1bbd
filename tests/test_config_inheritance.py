"""configs/data/ uses inheritance: every dataset file extends `_base.yaml` and states only what differs, and the
composed configs are those of the flat files they replaced (fixture recorded from the flat files; a deliberate
change to a data option regenerates it with SR_LIT_UPDATE_FIXTURES=1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from sr_lit.utils.config import CONFIG_DIR, config_options

FIXTURE = Path(__file__).parent / "fixtures" / "data_configs_composed.json"


def _compose_all() -> dict[str, dict]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    out = {}
    for top in ("train", "eval"):
        for option in config_options("data"):
            GlobalHydra.instance().clear()
            with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
                cfg = compose(config_name=top, overrides=[f"data={option}"])
            out[f"{top}/{option}"] = OmegaConf.to_container(cfg.data, resolve=False)
    GlobalHydra.instance().clear()
    return out


def test_composed_data_configs_are_unchanged() -> None:
    composed = _compose_all()
    if os.environ.get("SR_LIT_UPDATE_FIXTURES") == "1":
        FIXTURE.write_text(json.dumps(composed, indent=1, sort_keys=True) + "\n")
    expected = json.loads(FIXTURE.read_text())
    assert sorted(composed) == sorted(expected), "data options added or removed: update the fixture"
    for name, cfg in composed.items():
        diff = {k: (expected[name].get(k), cfg.get(k)) for k in set(cfg) | set(expected[name])}
        diff = {k: v for k, v in diff.items() if v[0] != v[1]}
        assert not diff, f"{name}: (recorded, now) differ for {diff}"


@pytest.mark.parametrize("option", config_options("data"))
def test_dataset_files_extend_the_base_and_state_only_differences(option: str) -> None:
    base = yaml.safe_load((CONFIG_DIR / "data" / "_base.yaml").read_text())
    own = yaml.safe_load((CONFIG_DIR / "data" / f"{option}.yaml").read_text())
    assert own.pop("defaults") == ["_base", "_self_"]
    repeated = sorted(k for k, v in own.items() if k in base and base[k] == v)
    assert not repeated, f"configs/data/{option}.yaml repeats the base's values for {repeated}"
