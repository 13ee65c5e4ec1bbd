"""Shared fixtures: compose the REAL configs (configs/*.yaml) the way `sr-train` does, into a temp run dir."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from omegaconf import DictConfig, open_dict

# small CPU runs: keep the tests from fighting over the 2 cores, and never touch the network
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("OMP_NUM_THREADS", "2")


def compose(config_name: str, overrides: Sequence[str], run_dir: Path) -> DictConfig:
    """Compose configs/<config_name>.yaml with overrides; set hydra.runtime.output_dir = run_dir."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from sr_lit.utils.config import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.fixture
def compose_train(tmp_path: Path) -> Callable[..., DictConfig]:
    """compose_train(*overrides, run_dir=None) -> train config, tiny and quick by default."""

    def _compose(*overrides: str, run_dir: Path | None = None) -> DictConfig:
        base = [
            "backbone=edsr_tiny",
            "logger=none",
            "trainer=cpu",
            "data=sample",
            "data.patch_size=16",
            "data.batch_size=4",
            "data.repeat=1",
            "module.log_images=0",
            "callbacks.progress_bar=null",
            "callbacks.model_summary=null",
        ]
        return compose("train", base + list(overrides), run_dir or tmp_path / "run")

    yield _compose
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
