"""`sr-train`: the Hydra entry point. `train(cfg)` returns a metric dict; the Hydra main returns the optimised float.

sr-train backbone=rcan attention=mmca hpf=dynamic scale=4 data=div2k trainer=ddp trainer.devices=8
sr-train experiment=quickstart                         # what `make train` runs
sr-train hydra.run.dir=outputs/run1 ckpt_path=last     # resume a run
sr-train -m --config-dir conf_sweeps +sweep=ablation_modules

Exit codes of a single run: 0 done; 2 a problem the user can fix (config, data, checkpoint), printed as one
`sr-train: error: ...` line (the traceback goes to <run dir>/error.txt); 1 a training fault (non-finite losses,
one line too) or an unexpected error (traceback); 143 (128 + SIGTERM) pre-empted: `last.ckpt` was saved, resume
with the same `hydra.run.dir` and `ckpt_path=last`. Hydra's own composition errors exit 1 with Hydra's message.
torch and Lightning are imported lazily, so config mistakes are reported in about a second.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from sr_lit.errors import (
    EXIT_PREEMPTED,
    EXIT_TRAINING_FAULT,
    EXIT_USER_ERROR,
    UserError,
    exit_code,
    one_line,
)
from sr_lit.utils.config import CONFIG_DIR

if TYPE_CHECKING:
    import pytorch_lightning as pl

log = logging.getLogger("sr_lit.train")


def _rank() -> int:
    """Global rank without importing Lightning (it reads the same environment variables)."""
    rz = sys.modules.get("lightning_fabric.utilities.rank_zero")
    if rz is not None and getattr(rz.rank_zero_only, "rank", None) is not None:
        return int(rz.rank_zero_only.rank)
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


# ----------------------------------------------------------------------------------------------- pre-flight
def preflight(cfg: DictConfig) -> None:
    """Checks that cost nothing and would otherwise fail after minutes of work."""
    from omegaconf.errors import OmegaConfBaseException

    # `???` values, e.g. data=folder without data.root (reached directly or through an interpolation)
    try:
        missing = sorted(OmegaConf.missing_keys(cfg))
    except OmegaConfBaseException as e:
        missing = [str(e).splitlines()[0].rsplit("Missing mandatory value: ", 1)[-1]]
    if missing:
        raise UserError(f"missing value for {', '.join(missing)}: set it on the command line (key=value)")
    if cfg.scale not in (2, 3, 4):
        raise UserError(f"scale={cfg.scale}: must be 2, 3 or 4")
    data = cfg.get("data") or {}
    for key in ("patch_size", "batch_size", "repeat"):
        value = data.get(key)
        # LR patch side: the HR patch is patch_size * scale, so any positive integer is divisible by the scale
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"data.{key}={value}: must be a positive integer")
    ckpt = cfg.get("ckpt_path")
    if ckpt not in (None, "last") and not Path(str(ckpt)).is_file():
        raise UserError(f"ckpt_path={ckpt}: no such checkpoint file")
    init = cfg.get("init_from")
    if cfg.get("require_init_from") and not init:
        raise UserError(
            "missing value for init_from: this experiment fine-tunes the x2 model (SPEC 1.4); "
            "set init_from=<x2 checkpoint> (or require_init_from=false to train from scratch)"
        )
    if init is not None and not Path(str(init)).is_file():
        raise UserError(f"init_from={init}: no such checkpoint file")
    if ckpt == "last":
        # None on the first launch of a requeued job: Lightning then starts afresh
        ckpt = find_last_checkpoint(cfg)
    if ckpt is not None:
        check_same_architecture(str(ckpt), model_spec_from_cfg(cfg))


def find_last_checkpoint(cfg: DictConfig) -> Path | None:
    """The checkpoint `ckpt_path=last` resumes: Lightning takes the newest `last*.ckpt` of ModelCheckpoint's folder."""
    node = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    dirpath = node.get("dirpath") if "_target_" in node else None
    if not dirpath or not Path(str(dirpath)).is_dir():
        return None
    found = [p for p in Path(str(dirpath)).glob("last*.ckpt") if re.match(r"^last(-(\d+))?", p.stem)]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


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
    import torch

    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(
            f"ckpt_path={ckpt_path}: not a readable checkpoint ({type(e).__name__}: {first})"
        ) from e
    if not isinstance(ckpt, dict):
        raise UserError(f"ckpt_path={ckpt_path}: not a Lightning checkpoint")
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


def new_wandb_run_id() -> str:
    """8 characters of [a-z0-9], the form W&B gives its own run ids."""
    import secrets
    import string

    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def instantiate_loggers(cfg: DictConfig, run_dir: Path, identity: dict[str, Any]) -> list[Any]:
    from pytorch_lightning.utilities import rank_zero_only

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
            if node.get("id"):
                overrides["id"] = str(node.id)
            elif id_file.is_file() and id_file.read_text().strip() not in ("", "None"):
                overrides["id"] = id_file.read_text().strip()
                overrides["resume"] = "allow"
            else:
                # chosen here, not by W&B: the run does not exist yet, and the file must hold the real id
                overrides["id"] = new_wandb_run_id()
            # `config` would collide with instantiate()'s own first parameter: pass it to the partial
            run_config = overrides.pop("config")
            logger = hydra.utils.instantiate(node, _partial_=True, **overrides)(config=run_config)
            if rank_zero_only.rank == 0:
                (run_dir / "wandb_run_id.txt").write_text(overrides["id"])
            loggers.append(logger)
        else:
            loggers.append(hydra.utils.instantiate(node))
    return loggers


# ---------------------------------------------------------------------------------------------------- train
def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then evaluate `last.ckpt`'s evaluation weights on the validation sets; returns the metrics."""
    preflight(cfg)  # before the heavy imports: config mistakes are reported at once
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.utilities import rank_zero_only

    from sr_lit.lit.callbacks import AtomicCheckpointIO
    from sr_lit.lit.module import SRModule
    from sr_lit.utils.naming import run_identity
    from sr_lit.utils.rich_utils import print_config_tree

    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:
        stale = run_dir / "error.txt"
        if (
            stale.is_file()
        ):  # a failed run resumed in its dir: sr-report must not list it as failed once it works
            stale.replace(run_dir / "error.previous.txt")
        print_config_tree(cfg)
        # a shareable, fully resolved copy (no secrets live in the config: W&B reads its key from the environment)
        OmegaConf.save(cfg, run_dir / "config_resolved.yaml", resolve=True)

    spec = model_spec_from_cfg(cfg)
    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)
    module: SRModule = hydra.utils.instantiate(cfg.module, model_spec=spec, _recursive_=False)
    if cfg.get("init_from"):
        module.load_init_weights(str(cfg.init_from))
    if cfg.get("compile"):
        # in place: state_dict keys stay those of the plain network (torch.compile(net) would add `_orig_mod.`
        # and then refuse every checkpoint written without it, its own resumes included)
        module.net.compile()

    identity = run_identity(cfg)
    loggers = instantiate_loggers(cfg, run_dir, identity)
    callbacks = instantiate_callbacks(cfg, has_logger=bool(loggers))
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    n_params = sum(p.numel() for p in module.net.parameters() if p.requires_grad)
    for lg in loggers:
        lg.log_hyperparams({"params": n_params, "run_name": identity["name"]})

    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last" and find_last_checkpoint(cfg) is None:
        # the first launch of a requeued job; said here, as Lightning's own note blames save_last (it is on)
        log.info("ckpt_path=last: no checkpoint in this run directory yet; starting from scratch")
        ckpt_path = None
    # weights_only=True: resuming never unpickles arbitrary objects (our checkpoints hold plain containers only)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)

    ckpt_cb = trainer.checkpoint_callback
    last = Path(ckpt_cb.dirpath) / "last.ckpt" if ckpt_cb is not None and ckpt_cb.dirpath else None
    global_step, best = int(trainer.global_step), dict(module.best)
    skipped = getattr(getattr(datamodule, "train_set", None), "store", None)
    skipped = None if skipped is None else int(skipped.n_skipped)  # bad files skipped at set-up
    # Spawned DDP (trainer=ddp_cpu) trained in worker processes: the trainer, module and datamodule here never
    # stepped (Lightning sends back only weights and logged metrics). What rank 0 recorded is in last.ckpt.
    spawned = trainer.world_size > 1 and getattr(trainer.strategy, "_start_method", "popen") != "popen"
    if spawned and last is not None and last.is_file() and trainer.is_global_zero:
        state = torch.load(last, map_location="cpu", weights_only=True)
        global_step = int(state.get("global_step", global_step))
        best = dict((state.get("sr_lit") or {}).get("best", best))
        skipped = (state.get(type(datamodule).__qualname__) or {}).get("skipped_images", skipped)
    metrics: dict[str, Any] = {
        "params": n_params,
        "global_step": global_step,
        "run_name": identity["name"],
        "group": identity["group"],
        "tags": identity["tags"],
    }
    if skipped is not None:
        metrics["skipped_images"] = skipped
    metrics.update({f"best/{k}": v for k, v in best.items()})
    # the last in-loop validation (sharded across ranks under DDP), kept beside the final single-process scores
    in_loop = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    if trainer.world_size > 1:
        metrics["ddp_in_loop"] = in_loop
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


def classify_error(e: BaseException) -> tuple[str | None, str]:
    """("user" | "fault" | None, message): how `main` reports an exception of `train` (None: with a traceback)."""
    code = exit_code(e)
    kind = {EXIT_USER_ERROR: "user", EXIT_TRAINING_FAULT: "fault"}.get(code)  # type: ignore[arg-type]
    return kind, one_line(e)


def _is_sigterm(e: BaseException) -> bool:
    # Lightning turns SIGTERM into SIGTERMException (a SystemExit whose code is None, i.e. exit status 0)
    return type(e).__name__ == "SIGTERMException"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except SystemExit as e:
        if not _is_sigterm(e):
            raise
        finish_wandb()
        if _rank() == 0:
            # PreemptionCheckpoint saved last.ckpt unless the signal came during validation (then the periodic
            # one stands); either way this resumes from the newest one
            print(
                f"sr-train: error: terminated by SIGTERM (pre-empted); resume with "
                f"hydra.run.dir={cfg.paths.output_dir} ckpt_path=last",
                file=sys.stderr,
                flush=True,
            )
        sys.exit(EXIT_PREEMPTED)
    except Exception as e:  # noqa: BLE001
        finish_wandb()
        run_dir = Path(cfg.paths.output_dir)
        if _rank() == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.txt").write_text(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
        if _is_multirun():
            # a failed job must not kill the sweep: report it and let sr-report list it as failed
            log.error(f"job failed: {type(e).__name__}: {e} (details in {run_dir / 'error.txt'})")
            return float("nan")
        kind, message = classify_error(e)
        if kind is not None:
            print(f"sr-train: error: {message}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR if kind == "user" else EXIT_TRAINING_FAULT)
        raise
    value = metrics.get(cfg.get("optimized_metric") or "")
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else float("nan")


if __name__ == "__main__":
    main()
