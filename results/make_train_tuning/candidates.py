"""Candidate settings for `make train` (configs/experiment/quickstart.yaml), shared by probe.py and tune.py.

Each candidate is a list of sr-train overrides applied on top of `experiment=quickstart`. The model stays the
`make train` model (edsr_tiny + MMCA + HPF, x2, data=sample); what varies is what the issue names: precision and
memory format, patch/batch, learning-rate schedule, width, and (through tune.py's budget) the number of steps.
"""

from __future__ import annotations

CANDIDATES: dict[str, list[str]] = {
    # today's default: fp32, batch 16 of 32 px, Adam 5e-4 cosine (50 warm-up steps), EMA 0.99, 1500 steps
    "base": [],
    # memory format only (checkpoints identical in kind)
    "cl": ["module.channels_last=true"],
    # bf16 autocast: pays only where bf16 is native (AVX-512 BF16/AMX); sr-train warns elsewhere
    "bf16": ["trainer.precision=bf16-mixed"],
    "bf16_cl": ["trainer.precision=bf16-mixed", "module.channels_last=true"],
    # smaller patches, more steps in the same time (the 400-step ablation's setting: b16 p24, lr 1e-3)
    "p24": ["data.patch_size=24"],
    "p24_lr1e-3": ["data.patch_size=24", "module.optimizer.lr=1.0e-3"],
    "lr1e-3": ["module.optimizer.lr=1.0e-3"],
    # fewer, larger patches per step (larger patches also run more pixels per second on the CPU)
    "b8p48": ["data.batch_size=8", "data.patch_size=48"],
    "b8p48_lr1e-3": ["data.batch_size=8", "data.patch_size=48", "module.optimizer.lr=1.0e-3"],
    "b4p64": ["data.batch_size=4", "data.patch_size=64"],
    "b8p64": ["data.batch_size=8", "data.patch_size=64"],
    "b16p48": ["data.patch_size=48"],
    # width/depth: 8 x 32 is today's edsr_tiny; 12 blocks (3 HPF units) / 40 features (HPF groups 8 divide 40)
    "blocks12": ["backbone.n_resblocks=12"],
    "feats40": ["backbone.n_feats=40"],
    # a slower EMA for a longer run
    "ema995": ["callbacks.ema.decay=0.995"],
}
