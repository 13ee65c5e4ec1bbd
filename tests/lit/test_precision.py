"""trainer.precision=bf16-mixed end to end on CPU: train under autocast, validate and score metrics.json in fp32,
resume, export; with module.channels_last=true (the fastest arm where bf16 is native, bench `precision`)."""

from __future__ import annotations

import json
import math
from contextlib import nullcontext

import pytest
import torch

from sr_lit.lit.pipeline import train
from sr_lit.models.blocks.precision import native_bf16


def test_bf16_mixed_trains_validates_in_fp32_resumes_and_exports(compose_train, tmp_path, monkeypatch):
    import sr_lit.lit.module as module_mod
    from sr_lit.cli.export import main as export_main
    from sr_lit.models.loading import load_model

    calls: list[
        tuple[bool, bool, torch.dtype]
    ] = []  # (training, autocast on, input dtype) per network forward
    build = module_mod.build_model

    def build_spied(**spec):
        net = build(**spec)
        net.register_forward_pre_hook(
            lambda mod, args: calls.append((mod.training, torch.is_autocast_enabled("cpu"), args[0].dtype))
        )
        return net

    monkeypatch.setattr(module_mod, "build_model", build_spied)
    run = tmp_path / "run"
    common = [
        "attention=mmca",
        "hpf=dynamic",
        "trainer.precision=bf16-mixed",
        "module.channels_last=true",
        "trainer.val_check_interval=2",
        "trainer.check_val_every_n_epoch=null",
        "+trainer.limit_val_batches=1",
    ]
    # where bf16 is emulated (no AVX-512 BF16/AMX) the run says it will be slow
    with pytest.warns(UserWarning, match="native bf16") if not native_bf16("cpu") else nullcontext():
        metrics = train(compose_train(*common, "trainer.max_steps=2", run_dir=run))
    train_calls = [c for c in calls if c[0]]
    eval_calls = [c for c in calls if not c[0]]
    assert train_calls and eval_calls
    assert all(autocast for _, autocast, _ in train_calls), "training steps must run under bf16 autocast"
    assert all(not autocast and dtype == torch.float32 for _, autocast, dtype in eval_calls), eval_calls
    on_disk = json.loads((run / "metrics.json").read_text())
    assert on_disk["global_step"] == 2 and math.isfinite(on_disk["val/psnr_y"])
    assert metrics["val/psnr_y"] == on_disk["val/psnr_y"]

    # the checkpoint holds fp32 weights (mixed precision keeps fp32 masters) and loads into a plain model
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert {v.dtype for v in ckpt["state_dict"].values() if v.is_floating_point()} == {torch.float32}
    assert ckpt["hyper_parameters"]["channels_last"] is True
    model, _ = load_model(run / "checkpoints" / "last.ckpt")
    assert next(model.parameters()).is_contiguous()  # memory format is a run setting, not part of the weights

    # resume under the same precision
    train(compose_train(*common, "trainer.max_steps=3", "ckpt_path=last", "final_eval=false", run_dir=run))
    resumed = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert resumed["global_step"] == 3

    # export the bf16-trained checkpoint: the weights file gives the checkpoint's network, output for output
    out = tmp_path / "model.safetensors"
    assert (
        export_main([str(run / "checkpoints" / "last.ckpt"), "--format", "safetensors", "--out", str(out)])
        == 0
    )
    exported, _ = load_model(out)
    model, _ = load_model(run / "checkpoints" / "last.ckpt")
    x = torch.rand(1, 3, 20, 18)
    with torch.no_grad():
        torch.testing.assert_close(exported.eval()(x), model.eval()(x), atol=0, rtol=0)


def test_make_train_runs_bf16_only_where_the_cpu_computes_it_natively(tmp_path) -> None:
    """`make train` asks sr_lit.cli.quickstart which run suits the CPU: quickstart_bf16 is quickstart under bf16
    autocast with more steps (same minutes where bf16 is native), and it is chosen only there."""
    import subprocess
    import sys

    from omegaconf import OmegaConf

    from sr_lit.cli.quickstart import QUICKSTART, QUICKSTART_BF16, choose
    from tests.conftest import compose

    assert choose(True) == QUICKSTART_BF16 and choose(False) == QUICKSTART
    printed = subprocess.run(
        [sys.executable, "-m", "sr_lit.cli.quickstart"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert printed == (QUICKSTART_BF16 if native_bf16("cpu") else QUICKSTART)

    def flat(name: str) -> dict:
        cfg = OmegaConf.to_container(compose("train", [f"experiment={name}"], tmp_path / name), resolve=False)
        out: dict = {}

        def walk(node, prefix=""):  # noqa: ANN001
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{prefix}{k}.")
            else:
                out[prefix[:-1]] = node

        walk(cfg)
        return out

    fp32, bf16 = flat(QUICKSTART), flat(QUICKSTART_BF16)
    changed = {k for k in fp32.keys() | bf16.keys() if fp32.get(k) != bf16.get(k)}
    # same model, data, optimizer and schedule: only the precision, the steps it buys and what follows from them
    assert changed == {"trainer.precision", "trainer.max_steps", "trainer.val_check_interval", "tags"}, (
        changed
    )
    assert fp32["trainer.precision"] == "32-true" and bf16["trainer.precision"] == "bf16-mixed"
    assert bf16["trainer.max_steps"] > fp32["trainer.max_steps"]
