"""SRModule: the LightningModule that trains and validates one SR network.

The network itself comes from `sr_lit.models.registry.build_model(**model_spec)`; the spec is saved in the
checkpoint's hyper-parameters so `sr-eval`, `sr-upscale` and `sr-export` rebuild the model without Hydra.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch import nn

from sr_lit.errors import ConfigError, TrainingFault
from sr_lit.lit.guard import LossGuard
from sr_lit.lit.options import check_optimizer
from sr_lit.lit.schedules import build_scheduler
from sr_lit.metrics.sr_metrics import SRMetrics
from sr_lit.models.blocks.precision import native_bf16
from sr_lit.models.registry import build_model
from sr_lit.utils.values import is_int

# Our epoch-level validation values are already global (torchmetrics sums per-image states over ranks), so
# Lightning's advice to add sync_dist=True (a mean of per-rank means: wrong with uneven shards) does not apply.
warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed setting.*")


class NonFiniteLossError(TrainingFault):
    """Raised when the bad-batch guard gives up (too many skipped steps)."""


def charbonnier_loss(sr: torch.Tensor, hr: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((sr - hr) ** 2 + eps**2).mean()


LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "charbonnier": charbonnier_loss}


def _plain(obj: Any) -> Any:
    """DictConfig/ListConfig -> plain Python containers (checkpoints must load with weights_only=True)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, DictConfig | ListConfig):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


class SRModule(pl.LightningModule):
    """L1 (or MSE/Charbonnier) training of `net` on LR/HR patches; Y-PSNR/SSIM validation on whole images."""

    def __init__(
        self,
        model_spec: Mapping[str, Any],
        loss: str = "l1",
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        guard: Mapping[str, Any] | None = None,
        log_images: int = 4,
        loss_scale: float | None = None,
        val_bands: int = 0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        model_spec = _plain(model_spec)
        optimizer = _plain(optimizer) or {}
        scheduler = _plain(scheduler) or {}
        guard = _plain(guard) or {}
        if loss not in LOSSES:
            raise ConfigError(f"module.loss={loss}: not a loss; one of {', '.join(sorted(LOSSES))}")
        self.save_hyperparameters(
            {
                "model_spec": model_spec,
                "loss": loss,
                "optimizer": optimizer,
                "scheduler": scheduler,
                "guard": guard,
                "log_images": log_images,
                "loss_scale": loss_scale,
                "val_bands": val_bands,
                "channels_last": bool(channels_last),
            }
        )
        self.net: nn.Module = build_model(**model_spec)
        # NHWC activations and weights (module.channels_last; what it gains depends on the hardware: bench `precision`)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = self.net.to(memory_format=self.memory_format)
        self.scale = int(model_spec["scale"])
        self.loss_fn = LOSSES[loss]
        # the paper's L1 is computed on [0, rgb_range] pixels; our tensors are [0, 1]
        self.loss_scale = float(
            loss_scale if loss_scale is not None else model_spec["backbone"].get("rgb_range", 1)
        )
        self.guard = LossGuard(**guard)
        self.val_set_names: list[str] = []
        self.val_metrics = nn.ModuleList()
        # module.val_bands > 0: also val/<Set>/band<k>_psnr_y (sr_lit.analysis.band_metric), off by default
        if not is_int(val_bands) or val_bands < 0:
            raise ConfigError(f"module.val_bands={val_bands!r}: expected 0 (off) or a number of bands")
        self.val_bands = val_bands
        self.val_band_metrics = nn.ModuleList()
        self.best: dict[str, float] = {}
        self._skip_this_step = False

    # ------------------------------------------------------------------ setup
    def setup(self, stage: str) -> None:
        # Validation sets are known only once the DataModule is set up (it runs before this hook).
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        names = list(getattr(dm, "val_set_names", []) or [])
        if stage == "test":
            names = list(getattr(dm, "test_set_names", []) or names)
        if names != self.val_set_names or len(self.val_metrics) != len(names):
            self.val_set_names = names
            self.val_metrics = nn.ModuleList([SRMetrics(scale=self.scale) for _ in names])
            if self.val_bands:
                from sr_lit.analysis.band_metric import BandPSNR

                self.val_band_metrics = nn.ModuleList([BandPSNR(self.scale, self.val_bands) for _ in names])
        if stage == "fit":
            self._warn_emulated_bf16()

    def _warn_emulated_bf16(self) -> None:
        precision = str(getattr(self.trainer, "precision", ""))
        if precision.startswith("bf16") and not native_bf16(self.device):
            rank_zero_warn(
                f"trainer.precision={precision} on a {self.device.type.upper()} without native bf16 arithmetic "
                "(x86 needs AVX-512 BF16 or AMX): PyTorch falls back to slow reference convolutions, several "
                "times slower than trainer.precision=32-true here (bench/README.md, `precision`)"
            )

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.net(lr.contiguous(memory_format=self.memory_format))

    # --------------------------------------------------------------- training
    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        # under trainer.precision=bf16-mixed this runs in autocast: the network's units keep their reductions and
        # its output conv in fp32 (sr_lit.models.blocks.precision); the loss is computed on that fp32 output
        sr = self(batch["lr"])
        loss = self.loss_fn(sr * self.loss_scale, batch["hr"] * self.loss_scale)
        # decided here, acted on in optimizer_step (synchronised across ranks there); or-ed over the micro-batches
        # of gradient accumulation, whose gradients all reach that one step
        self._skip_this_step = self._skip_this_step or self.guard.is_bad(loss.detach())
        self.log(
            "train/loss", loss.detach(), prog_bar=True, on_step=True, on_epoch=False, batch_size=sr.shape[0]
        )
        return loss

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        # Run forward+backward ourselves, then decide to step. All ranks reach this point every step, so the
        # all-reduced skip decision cannot hang DDP (returning None from training_step would).
        loss = optimizer_closure()
        skip = torch.tensor(float(self._skip_this_step), device=self.device)
        self._skip_this_step = False  # the next accumulation window starts clean
        if self.trainer.world_size > 1:
            skip = self.trainer.strategy.reduce(skip, reduce_op="max")
        if skip.item() > 0:
            self.guard.record_skip(self.global_step)
            self.log("train/skipped_steps", float(self.guard.total_skipped), on_step=True, on_epoch=False)
            rank_zero_warn(
                f"step {self.global_step}: skipped a batch with a non-finite or exploding loss "
                f"({self.guard.consecutive} in a row, {self.guard.total_skipped} in total)"
            )
            if self.guard.should_stop():
                self._stop_on_fault()
            optimizer.zero_grad(set_to_none=True)
            return
        self.guard.record_ok()
        # the closure already ran; returning its loss keeps AMP's "backward happened" check true
        optimizer.step(closure=lambda: loss)

    def _stop_on_fault(self) -> None:
        # Weights were never updated with the bad batches, so a checkpoint now is "from before the fault".
        path = None
        ckpt_cb = self.trainer.checkpoint_callback
        if ckpt_cb is not None and getattr(ckpt_cb, "dirpath", None):
            path = f"{ckpt_cb.dirpath}/before_fault.ckpt"
            self.trainer.save_checkpoint(path)
        raise NonFiniteLossError(
            f"training stopped at step {self.global_step}: {self.guard.consecutive} consecutive / "
            f"{self.guard.total_skipped} total batches had a non-finite or exploding loss "
            f"(module.guard: max_consecutive={self.guard.max_consecutive}, max_total={self.guard.max_total}). "
            + (f"Checkpoint from before the fault: {path}. " if path else "")
            + "Lower the learning rate, enable gradient clipping (trainer.gradient_clip_val) or check the data."
        )

    def configure_optimizers(self) -> Any:
        cfg = dict(self.hparams.optimizer)
        check_optimizer(cfg)
        name = cfg.pop("name", "adam")
        params = [p for p in self.net.parameters() if p.requires_grad]
        kwargs = {
            "lr": float(cfg.get("lr", 1e-4)),
            "betas": tuple(cfg.get("betas", (0.9, 0.999))),
            "eps": float(cfg.get("eps", 1e-8)),
            "weight_decay": float(cfg.get("weight_decay", 0.0)),
        }
        opt = (torch.optim.AdamW if name == "adamw" else torch.optim.Adam)(params, **kwargs)
        total = self.trainer.max_steps if self._trainer is not None and self.trainer.max_steps > 0 else None
        sched = build_scheduler(opt, self.hparams.scheduler, total_steps=total)
        if sched is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}

    # ------------------------------------------------------------- validation
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if "pad" in batch and bool(batch["pad"].all()):
            return  # a rank with no image of this set (more ranks than images): nothing to score
        lr, hr = batch["lr"], batch["hr"]
        # Under bf16-mixed/16-mixed the network would run in autocast: its [0, 255]-scale output rounded to bf16
        # moves PSNR by hundredths of a dB at ~35-45 dB (bench/GPU.md). Validate in the weights' own precision,
        # as sr-eval and metrics.json do; validation is a small share of a run.
        with torch.autocast(device_type=lr.device.type, enabled=False):
            sr = self(lr.to(next(self.net.parameters()).dtype)).float().clamp_(0, 1)
        metric = self.val_metrics[dataloader_idx]
        if self.val_bands:  # both metrics score the same 8-bit Y planes: make them once
            planes = metric.planes(sr, hr)
            metric.update(sr, hr, planes=planes)
            self.val_band_metrics[dataloader_idx].update(sr, hr, planes=planes)
        else:
            metric.update(sr, hr)
        if dataloader_idx == 0 and batch_idx == 0 and self.hparams.log_images:
            self._log_crops(lr, sr, hr)

    def on_validation_epoch_end(self) -> None:
        # torchmetrics sums per-image values over ranks inside compute(): every rank must call it (no padding,
        # no mean of means). Values logged are already global, so no sync_dist here.
        for i, (name, metric) in enumerate(zip(self.val_set_names, self.val_metrics)):
            if self.trainer.sanity_checking:
                metric.reset()
                if self.val_bands:
                    self.val_band_metrics[i].reset()
                continue
            if self.val_bands:
                bands = self.val_band_metrics[i].compute()
                self.val_band_metrics[i].reset()
                for k, value in enumerate(bands.tolist()):
                    self.log(f"val/{name}/band{k}_psnr_y", value, sync_dist=False, add_dataloader_idx=False)
            vals = metric.compute()
            metric.reset()
            for key in ("psnr_y", "ssim_y"):
                value = float(vals[key])
                tag = f"val/{name}/{key}"
                self.log(tag, value, sync_dist=False, add_dataloader_idx=False)
                if not math.isnan(value):
                    self.best[tag] = max(self.best.get(tag, -math.inf), value)
                    self.log(f"{tag}_best", self.best[tag], sync_dist=False, add_dataloader_idx=False)
                if i == 0:
                    # the checkpoint/sweep metric: the first validation set
                    self.log(
                        f"val/{key}",
                        value,
                        prog_bar=key == "psnr_y",
                        sync_dist=False,
                        add_dataloader_idx=False,
                    )
            self.log(
                f"val/{name}/n_images", float(vals["n_images"]), sync_dist=False, add_dataloader_idx=False
            )

    test_step = validation_step
    on_test_epoch_end = on_validation_epoch_end

    def _log_crops(self, lr: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor) -> None:
        from sr_lit.lit.images import log_sr_crops

        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        log_sr_crops(
            self.loggers, lr, sr, hr, scale=self.scale, step=self.global_step, n=self.hparams.log_images
        )

    # ------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["sr_lit"] = {"best": dict(self.best), "guard": self.guard.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("sr_lit", {})
        self.best = dict(state.get("best", {}))
        if "guard" in state:
            self.guard.load_state_dict(state["guard"])
        # torch.compile prefixes keys with `_orig_mod.`; accept checkpoints written either way
        sd = checkpoint.get("state_dict", {})
        if any("._orig_mod." in k for k in sd):
            checkpoint["state_dict"] = {k.replace("._orig_mod.", "."): v for k, v in sd.items()}

    def load_init_weights(self, path: str, partial: bool = False) -> list[str]:
        """Fine-tuning (x2 -> x3/x4, DESIGN 1.4; a released EDSR/RCAN -> the same backbone + MMCA/HPF): load every
        tensor whose name and shape match (any layout: ours, EDSR-PyTorch/RCAN, BasicSR), except the upsampler when
        it differs from this model's (another scale): then all of it keeps its initialisation, even the x4
        upsampler's first conv, whose shape equals the x2 one. Logs what starts fresh; returns the skipped keys.

        A file that fills less than half of this model's weights (by element count) is another architecture:
        refused (ConfigError naming both) unless ``partial`` (`init_from_partial=true`). Counting elements, not
        tensors, lets a plain model initialise a variant with MMCA and HPF (82 % of the weights of edsr_tiny +
        MMCA + HPF, though only 44 of its 96 tensors).
        """
        from sr_lit.models.loading import CheckpointError, match_init_state, read_init_weights

        src = read_init_weights(path)
        match = match_init_state(self.net, src.state)
        own = self.net.state_dict()
        share = sum(v.numel() for v in match.loaded.values()) / max(1, sum(v.numel() for v in own.values()))
        if share < INIT_FROM_MIN_SHARE and not partial:
            raise ConfigError(
                f"init_from={path} fills {len(match.loaded)} of this model's {len(own)} tensors ({share:.1%} of "
                f"its weights): it holds {_file_architecture(path)}, this model is "
                f"{_architecture(self.hparams.model_spec)}. Give a checkpoint of this architecture, or "
                "init_from_partial=true to start from it anyway"
            )
        if not match.loaded:
            raise CheckpointError(
                path, "init_from: no tensor matches this model (is it the same architecture?)"
            )
        self.net.load_state_dict(match.loaded, strict=False)
        layout = {"official": " (EDSR-PyTorch / RCAN layout)", "basicsr": " (BasicSR layout)"}.get(
            src.source, ""
        )
        rank_zero_info(f"init_from={path}{layout}: {match.summary()} ({share:.1%} of the weights loaded)")
        return match.skipped


# init_from below this share of the target's weights (elements) is another architecture (init_from_partial=true)
INIT_FROM_MIN_SHARE = 0.5


def _architecture(spec: Mapping[str, Any]) -> str:
    from sr_lit.models.layouts import variant_label

    return f"{variant_label(spec)} x{spec.get('scale')}"


def _file_architecture(path: str) -> str:
    """What an init_from file holds, for the message: its spec (stored, or detected from a released layout)."""
    from sr_lit.models.loading import CheckpointError, read_weights

    try:
        return _architecture(read_weights(path).spec)
    except (CheckpointError, KeyError, ValueError):
        return "a state dict whose architecture is not recognised"
