"""`sr-train`: the Hydra entry point. `train(cfg)` returns a metric dict; the Hydra main returns the optimised float.

sr-train backbone=rcan attention=mmca hpf=dynamic scale=4 data=div2k trainer=ddp trainer.devices=8
sr-train experiment=quickstart                         # what `make train` runs
sr-train hydra.run.dir=outputs/run1 ckpt_path=last     # resume a run
sr-train -m --config-dir conf_sweeps +sweep=ablation_modules
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from sr_lit.utils.config import CONFIG_DIR

log = logging.getLogger("sr_lit.train")


class UserError(ValueError):
    """A problem the user can fix (config, paths, data): printed as one clear line, exit code 2."""


# ----------------------------------------------------------------------------------------------- pre-flight
def preflight(cfg: DictConfig) -> None:
    """Checks that cost nothing and would otherwise fail after minutes of work."""
    if cfg.scale not in (2, 3, 4):
        raise UserError(f"scale={cfg.scale}: must be 2, 3 or 4")
    ckpt = cfg.get("ckpt_path")
    if ckpt not in (None, "last") and not Path(str(ckpt)).is_file():
        raise UserError(f"ckpt_path={ckpt}: no such checkpoint file")
    init = cfg.get("init_from")
    if init is not None and not Path(str(init)).is_file():
        raise UserError(f"init_from={init}: no such checkpoint file")
    if ckpt not in (None, "last"):
        check_same_architecture(str(ckpt), model_spec_from_cfg(cfg))


def model_spec_from_cfg(cfg: DictConfig) -> dict[str, Any]:
    from sr_lit.models.registry import model_spec

    spec = model_spec(
        backbone=OmegaConf.to_container(cfg.backbone, resolve=True),
        attention=OmegaConf.to_container(cfg.attention, resolve=True),
        hpf=OmegaConf.to_container(cfg.hpf, resolve=True),
        scale=int(cfg.scale),
    )
    return spec


def check_same_architecture(ckpt_path: str, spec: dict[str, Any]) -> None:
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"ckpt_path={ckpt_path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    other = (ckpt.get("hyper_parameters") or {}).get("model_spec")
    if other is None:
        raise UserError(f"ckpt_path={ckpt_path}: not an sr_lit checkpoint (no hyper_parameters.model_spec)")
    if other != spec:
        diffs = [
            f"{part}: checkpoint {other.get(part)} vs config {spec.get(part)}"
            for part in sorted(set(other) | set(spec))
            if other.get(part) != spec.get(part)
        ]
        raise UserError(
            f"ckpt_path={ckpt_path} holds another architecture; resume needs the same model config. "
            + "; ".join(diffs)
            + ". To fine-tune from it instead, use init_from=<ckpt>."
        )


# ------------------------------------------------------------------------------------------------ building
def instantiate_callbacks(cfg: DictConfig, has_logger: bool) -> list[pl.Callback]:
    callbacks = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None or "_target_" not in node:
            continue
        if name == "model_checkpoint" and cfg.trainer.get("fast_dev_run"):
            continue
        if node._target_.endswith("LearningRateMonitor") and not has_logger:
            continue  # Lightning refuses it without a logger (logger=none)
        callbacks.append(hydra.utils.instantiate(node))
    return callbacks


def wandb_should_be_offline() -> bool:
    """Offline unless the user is logged in (API key in the environment or ~/.netrc) or chose a mode."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode in ("offline", "dryrun", "disabled")
    if os.environ.get("WANDB_API_KEY"):
        return False
    try:
        import netrc

        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return True


def instantiate_loggers(cfg: DictConfig, run_dir: Path, identity: dict[str, Any]) -> list[Any]:
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        if node is None or "_target_" not in node:
            continue
        if name == "wandb":
            overrides: dict[str, Any] = {
                "name": node.get("name") or identity["name"],
                "group": node.get("group") or identity["group"],
                "tags": list(node.get("tags") or identity["tags"]),
                "offline": node.get("offline")
                if node.get("offline") is not None
                else wandb_should_be_offline(),
                "config": OmegaConf.to_container(cfg, resolve=True),
            }
            # resume re-attaches the same W&B run: the id lives beside the checkpoints of the run
            id_file = run_dir / "wandb_run_id.txt"
            if cfg.get("ckpt_path") and cfg.ckpt_path != "last":
                candidate = Path(cfg.ckpt_path).resolve().parent.parent / "wandb_run_id.txt"
                id_file = candidate if candidate.is_file() else id_file
            if id_file.is_file():
                overrides["id"] = id_file.read_text().strip()
                overrides["resume"] = "allow"
            # `config` would collide with instantiate()'s own first parameter: pass it to the partial
            run_config = overrides.pop("config")
            logger = hydra.utils.instantiate(node, _partial_=True, **overrides)(config=run_config)
            if rank_zero_only.rank == 0:
                (run_dir / "wandb_run_id.txt").write_text(str(logger.version))
            loggers.append(logger)
        else:
            loggers.append(hydra.utils.instantiate(node))
    return loggers


# ---------------------------------------------------------------------------------------------------- train
def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then evaluate `last.ckpt`'s evaluation weights on the validation sets; returns the metrics."""
    from sr_lit.lit.callbacks import AtomicCheckpointIO
    from sr_lit.lit.module import SRModule
    from sr_lit.utils.naming import run_identity
    from sr_lit.utils.rich_utils import print_config_tree

    preflight(cfg)
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:
        print_config_tree(cfg)
        # a shareable, fully resolved copy (no secrets live in the config: W&B reads its key from the environment)
        OmegaConf.save(cfg, run_dir / "config_resolved.yaml", resolve=True)

    spec = model_spec_from_cfg(cfg)
    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)
    module: SRModule = hydra.utils.instantiate(cfg.module, model_spec=spec, _recursive_=False)
    if cfg.get("init_from"):
        module.load_init_weights(str(cfg.init_from))
    if cfg.get("compile"):
        module.net = torch.compile(module.net)

    identity = run_identity(cfg)
    loggers = instantiate_loggers(cfg, run_dir, identity)
    callbacks = instantiate_callbacks(cfg, has_logger=bool(loggers))
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    n_params = sum(p.numel() for p in module.net.parameters() if p.requires_grad)
    for lg in loggers:
        lg.log_hyperparams({"params": n_params, "run_name": identity["name"]})

    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))

    metrics: dict[str, Any] = {
        "params": n_params,
        "global_step": int(trainer.global_step),
        "run_name": identity["name"],
        "group": identity["group"],
        "tags": identity["tags"],
    }
    metrics.update({f"best/{k}": v for k, v in module.best.items()})
    # the last in-loop validation (sharded across ranks under DDP), kept beside the final single-process scores
    in_loop = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    if trainer.world_size > 1:
        metrics["ddp_in_loop"] = in_loop
    ckpt_cb = trainer.checkpoint_callback
    last = Path(ckpt_cb.dirpath) / "last.ckpt" if ckpt_cb is not None and ckpt_cb.dirpath else None
    if cfg.get("final_eval", True) and last is not None and last.is_file() and trainer.is_global_zero:
        metrics.update(final_evaluation(last, datamodule))
        metrics["ckpt"] = str(last)
        if ckpt_cb.best_model_path:
            metrics["best_ckpt"] = str(ckpt_cb.best_model_path)
    else:
        metrics.update(in_loop)

    if trainer.is_global_zero:
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        for lg in loggers:
            if type(lg).__name__ == "WandbLogger":
                lg.experiment.summary.update({k: v for k, v in metrics.items() if isinstance(v, int | float)})
    finish_wandb()
    return metrics


def final_evaluation(ckpt: Path, datamodule: Any) -> dict[str, float]:
    """Score what `ckpt` holds for evaluation (EMA when on) with the code and defaults of `sr-eval`."""
    from sr_lit.inference.evaluate import evaluate_datasets
    from sr_lit.inference.predictor import Upscaler
    from sr_lit.models.loading import load_model

    model, spec = load_model(ckpt)
    if getattr(datamodule, "val_datasets", None) is None:
        datamodule.setup("validate")  # ddp_spawn: the datasets were built in the worker processes only
    # sr-eval's defaults (configs/eval.yaml): whole images up to 1 MP LR, tiled above
    upscaler = Upscaler(model, spec=spec, device="auto", max_pixels=1048576)
    results = evaluate_datasets(upscaler, datamodule.val_datasets, scale=int(spec["scale"]))
    out: dict[str, float] = {}
    for i, (name, r) in enumerate(results.items()):
        for key in ("psnr_y", "ssim_y", "n_images"):
            out[f"val/{name}/{key}"] = float(r[key])
            if i == 0 and key != "n_images":
                out[f"val/{key}"] = float(r[key])
    return out


def finish_wandb() -> None:
    # one W&B run per job: close it before the next job of a sweep starts (pitfall 8)
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


# ----------------------------------------------------------------------------------------------- hydra main
def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except Exception as e:  # noqa: BLE001
        finish_wandb()
        run_dir = Path(cfg.paths.output_dir)
        if rank_zero_only.rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.txt").write_text(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
        if _is_multirun():
            # a failed job must not kill the sweep: report it and let sr-report list it as failed
            log.error(f"job failed: {type(e).__name__}: {e} (details in {run_dir / 'error.txt'})")
            return float("nan")
        if isinstance(e, UserError | FileNotFoundError) or type(e).__name__ in ("ImageError", "ConfigError"):
            print(f"sr-train: error: {e}", file=sys.stderr)
            sys.exit(2)
        raise
    value = metrics.get(cfg.get("optimized_metric") or "")
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else float("nan")


if __name__ == "__main__":
    main()
