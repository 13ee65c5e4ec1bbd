#!/usr/bin/env bash
# The small-budget reproduction (2 shared CPU cores, ~35 min for 24 jobs): run from the repository root.
set -euo pipefail
export OMP_NUM_THREADS=2 WANDB_MODE=offline WANDB_SILENT=true
DIR=${DIR:-outputs/sweeps/ablation_modules_edsr_tiny_x2}
.venv/bin/sr-train -m --config-dir conf_sweeps +sweep=ablation_modules \
  backbone=edsr_tiny scale=2 data=t91 'data.val_sets=[Set5,Set14]' \
  data.patch_size=16 data.batch_size=8 data.num_workers=0 data.cache=disk data.cache_dir=outputs/cache \
  trainer.max_steps=40 trainer.val_check_interval=40 trainer.check_val_every_n_epoch=null \
  module.optimizer.lr=1e-3 module.scheduler.name=constant module.log_images=0 \
  callbacks.ema=null final_eval=false logger=csv callbacks.progress_bar=null callbacks.model_summary=null \
  hydra.sweep.dir="$DIR"
.venv/bin/sr-report "$DIR" --out results/ablation_modules_edsr_tiny_x2 --title ablation_modules_edsr_tiny_x2
