"""sr-summary: trainable params equal DESIGN 1.3; FLOPs count the convs and the dynamic filter."""

from __future__ import annotations

import json
import subprocess
import sys


def _summary(*overrides: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "sr_lit.cli.summary", *overrides], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def test_summary_params_flops_and_spec():
    plain = _summary("backbone=edsr_baseline", "attention=none", "hpf=none", "scale=2")
    assert plain["params"] == 1_369_859  # DESIGN 1.3
    # 2 x multiply-adds of the LR-resolution convs dominate: >= 2 * params * 48 * 48 minus the upsampler share
    assert plain["flops"] > 2 * 1_000_000 * 48 * 48
    assert plain["flops_dynamic_filter"] == 0
    assert plain["model_spec"]["scale"] == 2 and plain["sr_size"] == [96, 96]
    hpf = _summary("backbone=edsr_baseline", "attention=none", "hpf=dynamic", "scale=2", "lr_size=[17,23]")
    # 4 HPF units (every 4th of 16 blocks), k=3: 2 * 9 * 64 * 17 * 23 multiply-adds each
    assert hpf["flops_dynamic_filter"] == 4 * 2 * 9 * 64 * 17 * 23
    assert hpf["lr_size"] == [17, 23] and hpf["params"] > plain["params"]


def test_summary_bad_lr_size_is_a_clear_error():
    proc = subprocess.run(
        [sys.executable, "-m", "sr_lit.cli.summary", "lr_size=[0,5]"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "lr_size" in proc.stderr
