#!/usr/bin/env bash
# Small-budget CPU reproduction of `ablation_modules`, 400 steps per job (2 CPU cores): run from the repository root.
# Each job ends with the final evaluation of last.ckpt (final_eval, on by default): metrics.json then holds every
# image's scores and the per-band error spectra (final_spectrum), which sr-report pairs image by image.
set -euo pipefail
export OMP_NUM_THREADS=2 WANDB_MODE=offline WANDB_SILENT=true
export MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296
DIR=${DIR:-outputs/sweeps/ablation_modules_edsr_tiny_x2_400steps}
OUT=results/ablation_modules_edsr_tiny_x2_400steps
.venv/bin/sr-train -m --config-dir conf_sweeps +sweep=ablation_modules \
  backbone=edsr_tiny scale=2 data=t91 'data.val_sets=[Set5,Set14]' \
  data.patch_size=24 data.batch_size=16 data.num_workers=0 data.cache=memory \
  trainer.max_steps=400 trainer.val_check_interval=400 trainer.check_val_every_n_epoch=null \
  module.optimizer.lr=1e-3 module.scheduler.name=cosine module.scheduler.warmup_steps=20 module.scheduler.min_lr=1e-5 \
  callbacks.ema.decay=0.99 module.log_images=0 \
  logger=csv callbacks.progress_bar=null callbacks.model_summary=null \
  hydra.sweep.dir="$DIR"
.venv/bin/sr-report "$DIR" --out "$OUT" --overwrite --title ablation_modules_edsr_tiny_x2_400steps
