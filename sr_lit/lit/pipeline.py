"""The training pipeline behind `sr-train`: pre-flight checks, build, fit, final evaluation, metrics.json.

`train(cfg)` takes a composed config (configs/train.yaml) and returns the metric dict; the Hydra entry point
(sr_lit/cli/train.py) only adds exit codes and messages. torch and Lightning are imported inside the functions, so
`preflight` reports config mistakes in about a second.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from sr_lit.errors import CheckpointError, ConfigError
from sr_lit.lit.loggers import finish_wandb, instantiate_loggers
from sr_lit.lit.options import check_training_options
from sr_lit.lit.run_dir import RunLock, check_run_folder, claim_run_folder
from sr_lit.utils.files import write_atomic
from sr_lit.utils.values import is_int

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from sr_lit.lit.module import SRModule

log = logging.getLogger("sr_lit.train")


# ----------------------------------------------------------------------------------------------- pre-flight
def preflight(cfg: DictConfig) -> None:
    """Checks that cost nothing and would otherwise fail after minutes of work: the config's values first, then
    the files they name (run folder, checkpoints), so a config mistake is reported whatever the disk holds."""
    from omegaconf.errors import OmegaConfBaseException

    # `???` values, e.g. data=folder without data.root (reached directly or through an interpolation)
    try:
        missing = sorted(OmegaConf.missing_keys(cfg))
    except OmegaConfBaseException as e:
        missing = [str(e).splitlines()[0].rsplit("Missing mandatory value: ", 1)[-1]]
    if missing:
        raise ConfigError(f"missing value for {', '.join(missing)}: set it on the command line (key=value)")
    if cfg.scale not in (2, 3, 4):
        raise ConfigError(f"scale={cfg.scale}: must be 2, 3 or 4")
    data = cfg.get("data") or {}
    for key in ("patch_size", "batch_size", "repeat"):
        value = data.get(key)
        # LR patch side: the HR patch is patch_size * scale, so any positive integer is divisible by the scale
        if value is not None and (not is_int(value) or value < 1):
            raise ConfigError(f"data.{key}={value}: must be a positive integer")
    check_training_options(cfg)
    for key in ("overwrite", "init_from_partial"):
        if not isinstance(cfg.get(key, False), bool):
            raise ConfigError(f"{key}={cfg.get(key)}: must be true or false")
    ckpt = cfg.get("ckpt_path")
    if ckpt not in (None, "last") and not Path(str(ckpt)).is_file():
        raise ConfigError(f"ckpt_path={ckpt}: no such checkpoint file")
    init = cfg.get("init_from")
    if cfg.get("require_init_from") and not init:
        raise ConfigError(
            "missing value for init_from: this experiment fine-tunes the x2 model (DESIGN 1.4); "
            "set init_from=<x2 checkpoint> (or require_init_from=false to train from scratch)"
        )
    if init is not None and not Path(str(init)).is_file():
        raise ConfigError(f"init_from={init}: no such checkpoint file")
    check_run_folder(cfg)  # a file, a live run's folder, or another run's results: refused before any work
    if ckpt == "last":
        # None on the first launch of a requeued job: Lightning then starts afresh
        ckpt = find_last_checkpoint(cfg)
    if ckpt is not None:
        from sr_lit.models.registry import model_spec_from_config

        check_same_architecture(str(ckpt), model_spec_from_config(cfg))


def find_last_checkpoint(cfg: DictConfig) -> Path | None:
    """The checkpoint `ckpt_path=last` resumes: Lightning takes the newest `last*.ckpt` of ModelCheckpoint's folder."""
    node = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    dirpath = node.get("dirpath") if "_target_" in node else None
    if not dirpath or not Path(str(dirpath)).is_dir():
        return None
    found = [p for p in Path(str(dirpath)).glob("last*.ckpt") if re.match(r"^last(-(\d+))?", p.stem)]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def check_same_architecture(ckpt_path: str, spec: dict[str, Any]) -> None:
    import torch

    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(
            f"ckpt_path={ckpt_path}", f"not a readable checkpoint ({type(e).__name__}: {first})"
        ) from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"ckpt_path={ckpt_path}", "not a Lightning checkpoint")
    other = (ckpt.get("hyper_parameters") or {}).get("model_spec")
    if other is None:
        raise CheckpointError(
            f"ckpt_path={ckpt_path}",
            "not an sr_lit training checkpoint (no hyper_parameters.model_spec), so there is no run to resume; "
            "to start from these weights (e.g. a released EDSR/RCAN file) use init_from=<file>",
        )
    if other != spec:
        diffs = [
            f"{part}: checkpoint {other.get(part)} vs config {spec.get(part)}"
            for part in sorted(set(other) | set(spec))
            if other.get(part) != spec.get(part)
        ]
        raise ConfigError(  # the model config differs from the checkpoint's: the config is what to change
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


# ---------------------------------------------------------------------------------------------------- train
@dataclass
class Run:
    """What `build` makes of a config: the objects `trainer.fit` needs, and the run's identity."""

    run_dir: Path
    datamodule: pl.LightningDataModule
    module: SRModule
    trainer: pl.Trainer
    loggers: list[Any]
    identity: dict[str, Any]

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.module.net.parameters() if p.requires_grad)

    @property
    def last_ckpt(self) -> Path | None:
        cb = self.trainer.checkpoint_callback
        return Path(cb.dirpath) / "last.ckpt" if cb is not None and cb.dirpath else None


def prepare_run_dir(cfg: DictConfig) -> tuple[Path, RunLock | None]:
    """Create and lock the run dir (sr_lit/lit/run_dir.py); rank 0 sets aside a previous failure's error.txt and
    writes the resolved config. Returns the folder and the lock to release when the run ends (None: rank > 0)."""
    from pytorch_lightning.utilities import rank_zero_only

    from sr_lit.utils.rich_utils import print_config_tree

    run_dir = Path(cfg.paths.output_dir)
    lock = claim_run_folder(cfg, run_dir)
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
    return run_dir, lock


def build(cfg: DictConfig, run_dir: Path) -> Run:
    """Data, model (+ init_from, compile), loggers, callbacks and the Trainer, from the composed config."""
    from sr_lit.lit.callbacks import AtomicCheckpointIO
    from sr_lit.models.registry import model_spec_from_config
    from sr_lit.utils.naming import run_identity

    datamodule = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.module, model_spec=model_spec_from_config(cfg), _recursive_=False)
    if cfg.get("init_from"):
        module.load_init_weights(str(cfg.init_from), partial=bool(cfg.get("init_from_partial")))
    if cfg.get("compile"):
        # in place: state_dict keys stay those of the plain network (torch.compile(net) would add `_orig_mod.`
        # and then refuse every checkpoint written without it, its own resumes included; DESIGN P9)
        module.net.compile()
    identity = run_identity(cfg)
    loggers = instantiate_loggers(cfg, run_dir, identity)
    callbacks = instantiate_callbacks(cfg, has_logger=bool(loggers))
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    run = Run(run_dir, datamodule, module, trainer, loggers, identity)
    for lg in loggers:
        lg.log_hyperparams({"params": run.n_params, "run_name": identity["name"]})
    return run


def resume_path(cfg: DictConfig) -> str | None:
    """The checkpoint `trainer.fit` resumes from: `ckpt_path`, with `last` resolved (None: start afresh)."""
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last" and find_last_checkpoint(cfg) is None:
        # the first launch of a requeued job; said here, as Lightning's own note blames save_last (it is on)
        log.info("ckpt_path=last: no checkpoint in this run directory yet; starting from scratch")
        return None
    return None if ckpt_path is None else str(ckpt_path)


def fit_record(run: Run) -> dict[str, Any]:
    """Step, best-so-far values and skipped files of the fit, as rank 0 recorded them.

    Spawned DDP (trainer=ddp_cpu) trained in worker processes: the trainer, module and datamodule here never
    stepped (Lightning sends back only weights and logged metrics), so what rank 0 recorded is read from last.ckpt.
    """
    import torch

    trainer, datamodule = run.trainer, run.datamodule
    global_step, best = int(trainer.global_step), dict(run.module.best)
    store = getattr(getattr(datamodule, "train_set", None), "store", None)
    skipped = None if store is None else int(store.n_skipped)  # bad files skipped at set-up
    spawned = trainer.world_size > 1 and getattr(trainer.strategy, "_start_method", "popen") != "popen"
    last = run.last_ckpt
    if spawned and last is not None and last.is_file() and trainer.is_global_zero:
        state = torch.load(last, map_location="cpu", weights_only=True)
        global_step = int(state.get("global_step", global_step))
        best = dict((state.get("sr_lit") or {}).get("best", best))
        skipped = (state.get(type(datamodule).__qualname__) or {}).get("skipped_images", skipped)
    record: dict[str, Any] = {"global_step": global_step}
    if skipped is not None:
        record["skipped_images"] = skipped
    record.update({f"best/{k}": v for k, v in best.items()})
    return record


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then evaluate `last.ckpt`'s evaluation weights on the validation sets; returns the metrics."""
    preflight(cfg)  # before the heavy imports: config mistakes are reported at once
    import pytorch_lightning as pl

    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_dir, lock = prepare_run_dir(cfg)
    try:
        return _fit_and_record(cfg, run_dir)
    finally:  # also on SIGTERM (Lightning raises SystemExit) and errors; a SIGKILL leaves a stale lock
        if lock is not None:
            lock.release()


def _fit_and_record(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    from sr_lit.analysis.records import log_spectra_to_wandb, write_record_beside

    run = build(cfg, run_dir)
    # weights_only=True: resuming never unpickles arbitrary objects (our checkpoints hold plain containers only)
    run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=resume_path(cfg), weights_only=True)

    trainer, identity = run.trainer, run.identity
    metrics: dict[str, Any] = {
        "params": run.n_params,
        "run_name": identity["name"],
        "group": identity["group"],
        "tags": identity["tags"],
        **fit_record(run),
    }
    # the last in-loop validation (sharded across ranks under DDP), kept beside the final single-process scores
    in_loop = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    if trainer.world_size > 1:
        metrics["ddp_in_loop"] = in_loop
    last = run.last_ckpt
    if cfg.get("final_eval", True) and last is not None and last.is_file() and trainer.is_global_zero:
        metrics.update(final_evaluation(last, run.datamodule, spectrum=bool(cfg.get("final_spectrum", True))))
        metrics["ckpt"] = str(last)
        if trainer.checkpoint_callback.best_model_path:
            metrics["best_ckpt"] = str(trainer.checkpoint_callback.best_model_path)
    else:
        metrics.update(in_loop)

    if trainer.is_global_zero:
        write_atomic(run.run_dir / "metrics.json", json.dumps(metrics, indent=2, sort_keys=True).encode())
        # metrics_per_image.csv, metrics_spectrum.png beside metrics.json (sr_lit.analysis.records)
        pictures = write_record_beside(run.run_dir / "metrics.json", metrics, title=identity["name"])
        for lg in run.loggers:
            if type(lg).__name__ == "WandbLogger":
                lg.experiment.summary.update({k: v for k, v in metrics.items() if isinstance(v, int | float)})
                log_spectra_to_wandb(lg.experiment, metrics.get("spectrum"), pictures.get("spectrum"))
    finish_wandb()
    return metrics


def final_evaluation(ckpt: Path, datamodule: Any, spectrum: bool = True) -> dict[str, Any]:
    """Score what `ckpt` holds for evaluation (EMA when on) with the code and defaults of `sr-eval`; also the
    per-image rows and (spectrum) the per-set band tables and error spectra vs bicubic (sr_lit.analysis)."""
    from sr_lit.analysis.evaluation import evaluate_with_spectra
    from sr_lit.analysis.records import final_record
    from sr_lit.inference.predictor import Upscaler
    from sr_lit.models.loading import load_model

    model, spec = load_model(ckpt)
    if getattr(datamodule, "val_datasets", None) is None:
        datamodule.setup("validate")  # ddp_spawn: the datasets were built in the worker processes only
    # sr-eval's defaults (configs/eval.yaml): whole images up to 1 MP LR, tiled above
    upscaler = Upscaler(model, spec=spec, device="auto", max_pixels=1048576)
    results = evaluate_with_spectra(upscaler, datamodule.val_datasets, int(spec["scale"]), spectrum=spectrum)
    out: dict[str, Any] = final_record(results)
    for i, (name, r) in enumerate(results.items()):
        for key in ("psnr_y", "ssim_y", "n_images"):
            out[f"val/{name}/{key}"] = float(r[key])
            if i == 0 and key != "n_images":
                out[f"val/{key}"] = float(r[key])
    return out
