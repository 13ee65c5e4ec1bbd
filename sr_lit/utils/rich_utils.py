"""Rank-zero console output: the resolved config as a rich tree, results as rich tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

PRINT_ORDER = ("backbone", "attention", "hpf", "module", "data", "trainer", "callbacks", "logger", "paths")


@rank_zero_only
def print_config_tree(cfg: DictConfig, order: Sequence[str] = PRINT_ORDER) -> None:
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order]
    for key in keys:
        branch = tree.add(str(key), style="bold", guide_style="dim")
        node = cfg[key]
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        branch.add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    rich.print(tree)


def results_table(title: str, rows: Mapping[str, Mapping[str, Any]]) -> rich.table.Table:
    import rich.table

    table = rich.table.Table(title=title)
    for col in ("set", "images", "PSNR-Y (dB)", "SSIM-Y"):
        table.add_column(col, justify="right" if col != "set" else "left")
    for name, r in rows.items():
        table.add_row(name, str(int(r["n_images"])), f"{r['psnr_y']:.3f}", f"{r['ssim_y']:.4f}")
    return table
