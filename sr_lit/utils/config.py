"""OmegaConf resolvers and helpers shared by every CLI entry point."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"


def config_options(group: str) -> tuple[str, ...]:
    """The options of a config group: the names of configs/<group>/*.yaml, sorted; `_`-prefixed files (shared
    bases such as configs/data/_base.yaml) are not options."""
    return tuple(sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml") if not p.stem.startswith("_")))


def register_resolvers() -> None:
    """Register `${repo_root:}` once (idempotent; Hydra composes configs in several processes)."""
    if not OmegaConf.has_resolver("repo_root"):
        OmegaConf.register_new_resolver("repo_root", lambda: str(REPO_ROOT))


register_resolvers()
