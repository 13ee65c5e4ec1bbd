"""2-process CPU DDP (gloo, spawned): a short fit + validation; each validation image is counted once, so the
sharded in-loop Y-PSNR equals a single-process evaluation of the same checkpoint."""

from __future__ import annotations

import json

import pytest
import torch


def test_ddp_cpu_validation_equals_single_process(compose_train, tmp_path):
    from sr_lit.lit.pipeline import train

    run = tmp_path / "ddp"
    cfg = compose_train(
        "trainer=ddp_cpu",
        "trainer.max_steps=2",
        "callbacks.ema=null",  # validated weights == last.ckpt weights, so the two numbers must agree
        "attention=mmca",
        "hpf=dynamic",
        "logger=csv",
        run_dir=run,
    )
    metrics = train(cfg)
    on_disk = json.loads((run / "metrics.json").read_text())
    val_keys = [k for k in on_disk if k.startswith("val/") and k.endswith("/n_images")]
    assert val_keys, on_disk
    for key in val_keys:
        name = key.split("/")[1]
        # in-loop (2 ranks, unpadded shards, torchmetrics sum-sync) vs final single-process evaluation of last.ckpt
        in_loop_psnr = float(metrics["ddp_in_loop"][f"val/{name}/psnr_y"])
        in_loop_n = float(metrics["ddp_in_loop"][f"val/{name}/n_images"])
        assert in_loop_n == on_disk[key], (name, in_loop_n, on_disk[key])
        assert in_loop_psnr == pytest.approx(on_disk[f"val/{name}/psnr_y"], abs=1e-6)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2
    # the workers' record, not the never-stepped trainer of the launching process: same schema as one process
    assert on_disk["global_step"] == 2 and on_disk["skipped_images"] == 0
    best = {k.removeprefix("best/"): v for k, v in on_disk.items() if k.startswith("best/")}
    assert ckpt["sr_lit"]["best"] and best == pytest.approx(ckpt["sr_lit"]["best"])
    # only rank 0 writes: one metrics file from the CSV logger
    assert len(list(run.rglob("metrics.csv"))) == 1


def test_ddp_cpu_validation_set_smaller_than_the_world(compose_train, tmp_path):
    # 2 ranks, a 1-image validation set: rank 1 gets a placeholder (not an empty loader, which Lightning refuses
    # and which would leave rank 0 waiting in the metric sync); the image is scored once
    import numpy as np
    from PIL import Image

    from sr_lit.lit.pipeline import train

    one = tmp_path / "one"
    one.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(one / "only.png")
    run = tmp_path / "ddp"
    cfg = compose_train(
        "trainer=ddp_cpu",
        "trainer.max_steps=2",
        "callbacks.ema=null",
        "logger=csv",
        f"data.val_sets=[{{name:one,kind:folder,root:'{one}'}}]",
        run_dir=run,
    )
    metrics = train(cfg)
    assert metrics["ddp_in_loop"]["val/one/n_images"] == 1.0
    assert metrics["ddp_in_loop"]["val/one/psnr_y"] == pytest.approx(metrics["val/one/psnr_y"], abs=1e-6)
