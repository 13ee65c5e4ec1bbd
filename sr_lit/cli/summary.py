"""`sr-summary backbone=... attention=... hpf=... scale=... [lr_size=[H,W]]`: one JSON object on stdout.

Keys: params (trainable), flops (2 x multiply-adds for one LR input of lr_size, default 48x48), flops_by_module,
and the resolved model config (`model_spec`), so a variant's cost is known before a run.
"""

from __future__ import annotations

import json
import sys

import hydra
from omegaconf import DictConfig

from sr_lit.utils.config import CONFIG_DIR


def summarize(cfg: DictConfig) -> dict:
    from sr_lit.models.registry import build_model, model_spec_from_config
    from sr_lit.models.summary import model_cost

    spec = model_spec_from_config(cfg)
    lr_size = tuple(int(v) for v in cfg.lr_size)
    if len(lr_size) != 2 or min(lr_size) < 1:
        raise ValueError(f"lr_size={list(cfg.lr_size)}: expected [height, width] with positive values")
    cost = model_cost(build_model(**spec), lr_size)
    return {**cost, "model_spec": spec}


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="summary")
def main(cfg: DictConfig) -> None:
    try:
        result = summarize(cfg)
    except ValueError as e:
        print(f"sr-summary: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
