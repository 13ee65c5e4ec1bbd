"""sr-train end to end on the real configs: fast_dev_run, a short fit's run directory, resume, the loss guard."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from sr_lit.errors import UserError
from sr_lit.lit.pipeline import preflight, train


def _state(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def test_fast_dev_run_composes_and_runs(compose_train):
    cfg = compose_train("debug=fdr", "attention=mmca", "hpf=dynamic")
    metrics = train(cfg)
    assert metrics["global_step"] == 1


def test_every_logger_config_runs(compose_train, tmp_path):
    """logger=many (CSV + TensorBoard + offline W&B): each logger's files appear in the run directory."""
    run = tmp_path / "run"
    overrides = [
        "trainer.max_steps=2",
        "trainer.log_every_n_steps=1",
        "logger=many",
        "logger.wandb.offline=true",
    ]
    train(compose_train(*overrides, run_dir=run))
    assert list((run / "tensorboard").glob("events.out.tfevents.*")), sorted(p.name for p in run.iterdir())
    assert list(run.rglob("metrics.csv")) and list((run / "wandb").glob("offline-run-*"))


def test_short_fit_writes_run_dir_and_metrics(compose_train, tmp_path):
    run = tmp_path / "run"
    cfg = compose_train("trainer.max_steps=3", "attention=ca", "hpf=dynamic", "logger=csv", run_dir=run)
    metrics = train(cfg)
    assert (run / "config_resolved.yaml").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    best = [p for p in (run / "checkpoints").glob("best-*.ckpt")]
    assert len(best) == 1, list((run / "checkpoints").iterdir())
    on_disk = json.loads((run / "metrics.json").read_text())
    assert on_disk["global_step"] == 3
    first = cfg.data.val_sets[0] if cfg.data.get("val_sets") else None
    keys = [k for k in on_disk if k.startswith("val/") and k.endswith("/psnr_y") and k != "val/psnr_y"]
    assert keys, on_disk
    if first is not None and f"val/{first}/psnr_y" in on_disk:
        assert on_disk["val/psnr_y"] == on_disk[f"val/{first}/psnr_y"]
    assert math.isfinite(on_disk["val/psnr_y"]) and on_disk["val/psnr_y"] > 5
    assert metrics["val/psnr_y"] == on_disk["val/psnr_y"]
    # the checkpoint carries what the eval tools need to rebuild the model without Hydra
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["model_spec"]["backbone"]["n_feats"] == 32
    assert all(k.startswith("net.") for k in ckpt["state_dict"])


def test_sr_eval_on_last_ckpt_reproduces_metrics_json(compose_train, tmp_path):
    """metrics.json is computed with what last.ckpt holds for evaluation (EMA on), so sr-eval gives the same."""
    import subprocess
    import sys

    from tests._shared import require_shared_data

    data_dir = require_shared_data("Set5")
    run = tmp_path / "run"
    cfg = compose_train("trainer.max_steps=3", "callbacks.ema.decay=0.5", "data.val_sets=[Set5]", run_dir=run)
    train(cfg)
    on_disk = json.loads((run / "metrics.json").read_text())
    out = tmp_path / "eval.json"
    cmd = [
        sys.executable,
        "-m",
        "sr_lit.cli.eval",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        "data.sets=[Set5]",
        f"paths.data_dir={data_dir.parent}",
        f"json_out={out}",
        "progress=false",
        f"hydra.run.dir={tmp_path / 'eval_run'}",
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())["sets"]["Set5"]
    assert result["n_images"] == on_disk["val/Set5/n_images"] == 5
    assert result["psnr_y"] == pytest.approx(on_disk["val/Set5/psnr_y"], abs=1e-9)
    assert result["ssim_y"] == pytest.approx(on_disk["val/Set5/ssim_y"], abs=1e-9)
    # and EMA was really on: the evaluation weights differ from the raw weights
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    raw, ema = ckpt["current_model_state"], ckpt["state_dict"]
    assert any(not torch.equal(raw[k], ema[k]) for k in ema if ema[k].is_floating_point())


def test_resume_gives_the_same_weights(compose_train, tmp_path):
    common = ["attention=mmca", "hpf=dynamic", "trainer.max_steps=-1", "data.repeat=1", "final_eval=false"]
    straight = tmp_path / "straight"
    train(compose_train(*common, "trainer.max_epochs=2", run_dir=straight))
    split = tmp_path / "split"
    train(compose_train(*common, "trainer.max_epochs=1", run_dir=split))
    train(compose_train(*common, "trainer.max_epochs=2", "ckpt_path=last", run_dir=split))
    a = torch.load(straight / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(split / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] > 0
    for key in ("state_dict", "current_model_state"):  # EMA (evaluation) weights and the raw weights
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            torch.testing.assert_close(a[key][k], b[key][k], atol=1e-6, rtol=0, msg=f"{key}/{k}")
    assert a["sr_lit"]["best"] == pytest.approx(b["sr_lit"]["best"])


def test_resume_mid_epoch_trains_on_the_same_batches(compose_train, tmp_path):
    """3 batches per epoch; stop after 4 steps (epoch 1, batch 1) and resume to 8: the resumed part must see the
    batches an uninterrupted run sees, not replay epoch 1 from its start. Two data workers: Lightning draws
    their first indices before it sets the sampler's epoch. One run logs to offline W&B: its id must carry over."""
    common = ["attention=mmca", "hpf=dynamic", "data.repeat=1", "final_eval=false", "data.num_workers=2"]
    common += [
        "data.persistent_workers=false",
        "trainer.val_check_interval=null",
        "trainer.check_val_every_n_epoch=100",
    ]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(compose_train(*common, "trainer.max_steps=8", run_dir=straight))
    wandb = ["logger=wandb", "logger.wandb.offline=true"]
    train(compose_train(*common, *wandb, "trainer.max_steps=4", run_dir=split))
    run_id = (split / "wandb_run_id.txt").read_text()
    train(compose_train(*common, *wandb, "trainer.max_steps=8", "ckpt_path=last", run_dir=split))
    a = torch.load(straight / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(split / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] == 8
    for key in ("state_dict", "current_model_state"):
        for k in a[key]:
            torch.testing.assert_close(a[key][k], b[key][k], atol=1e-6, rtol=0, msg=f"{key}/{k}")
    assert len(run_id) == 8 and run_id != "None" and (split / "wandb_run_id.txt").read_text() == run_id
    runs = sorted(p.name for p in (split / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(name.endswith(f"-{run_id}") for name in runs), runs


def test_nan_losses_are_skipped_then_the_run_stops_with_a_checkpoint(compose_train, tmp_path, monkeypatch):
    import sr_lit.lit.module as module_lib

    calls = {"n": 0}

    def flaky_l1(sr, hr):
        calls["n"] += 1
        loss = torch.nn.functional.l1_loss(sr, hr)
        return loss * float("nan") if calls["n"] >= 3 else loss

    monkeypatch.setitem(module_lib.LOSSES, "l1", flaky_l1)
    run = tmp_path / "run"
    cfg = compose_train(
        "trainer.max_steps=20", "module.guard.max_consecutive=3", "callbacks.ema=null", run_dir=run
    )
    with pytest.raises(module_lib.NonFiniteLossError, match="before_fault.ckpt"):
        train(cfg)
    ckpt = torch.load(run / "checkpoints" / "before_fault.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["sr_lit"]["guard"]["total_skipped"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_last_ckpt_is_written_at_the_final_step(compose_train, tmp_path):
    # 3 batches per epoch; resumed at step 2: validation (and a last.ckpt save) at step 3, the fit ends at step 4
    run = tmp_path / "run"
    common = ["final_eval=false", "callbacks.ema=null"]
    train(compose_train(*common, "trainer.max_steps=2", run_dir=run))
    metrics = train(compose_train(*common, "trainer.max_steps=4", "ckpt_path=last", run_dir=run))
    assert metrics["global_step"] == 4
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 4
    assert list(
        (run / "checkpoints").glob("best-step0000003-*.ckpt")
    )  # the validation's own save still happened


@pytest.mark.slow
def test_compiled_run_resumes(compose_train, tmp_path):
    # compile=true compiles the network in place: checkpoint keys are the plain ones, so its own resume loads
    # (torch.compile(net) wrote `_orig_mod.` keys, and the strip on load then broke the compiled model's load)
    run = tmp_path / "run"
    common = ["compile=true", "callbacks.ema=null", "final_eval=false"]
    train(compose_train(*common, "trainer.max_steps=2", run_dir=run))
    keys = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in k for k in keys)
    train(compose_train(*common, "trainer.max_steps=4", "ckpt_path=last", run_dir=run))
    assert (
        torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"]
        == 4
    )


def test_guard_sees_every_micro_batch_of_gradient_accumulation(compose_train, tmp_path, monkeypatch):
    # a NaN in the first micro-batch of a window reaches the step through the accumulated gradient: skip the step
    import sr_lit.lit.module as module_lib

    calls = {"n": 0}

    def nan_on_first_call(sr, hr):
        calls["n"] += 1
        loss = torch.nn.functional.l1_loss(sr, hr)
        return loss * float("nan") if calls["n"] == 1 else loss

    monkeypatch.setitem(module_lib.LOSSES, "l1", nan_on_first_call)
    run = tmp_path / "run"
    overrides = [
        "trainer.max_steps=2",
        "trainer.accumulate_grad_batches=2",
        "callbacks.ema=null",
        "final_eval=false",
    ]
    train(compose_train(*overrides, run_dir=run))
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["sr_lit"]["guard"]["skipped_steps"] == [0]  # the window holding the NaN, and only it
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("scale=5", "scale=5"),
        ("ckpt_path=/nonexistent.ckpt", "no such checkpoint"),
        ("init_from=/x.ckpt", "init_from"),
        ("experiment=paper_rcan_x4", "fine-tunes the x2 model"),  # its x2 checkpoint forgotten
    ],
)
def test_preflight_rejects_bad_config(compose_train, override, message):
    with pytest.raises(UserError, match=message):
        preflight(compose_train(override))


@pytest.mark.parametrize(
    "max_epochs, max_steps, label",
    [(-1, 1500, "Epoch 5 · step 1200/1500"), (10, -1, "Epoch 5/9"), (None, 1500, "Epoch 5 · step 1200/1500")],
)
def test_progress_bar_label_in_step_bound_runs(max_epochs, max_steps, label):
    # Lightning 2.6's RichProgressBar prints "Epoch 5/-2" when max_epochs is -1 (all our step-bound runs)
    from types import SimpleNamespace

    from sr_lit.lit.callbacks import SRProgressBar

    bar = SRProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=max_epochs, max_steps=max_steps, global_step=1200)
    assert bar._get_train_description(5).strip() == label


def test_ema_warm_up_forgets_the_first_weights_and_pickles() -> None:
    import pickle

    from sr_lit.lit.callbacks import EMAUpdate, SpawnSafeEMA

    # a weight at 0 for the first step and 1 after: what share of 1 does the average hold after 1000 updates?
    def average(update: EMAUpdate, steps: int = 1000) -> float:
        ema = torch.zeros(())
        for n in range(1, steps):
            ema = update(ema, torch.ones(()), torch.tensor(n))
        return float(ema)

    assert average(EMAUpdate(0.999, warmup=False)) == pytest.approx(
        1 - 0.999**999, abs=1e-4
    )  # 0.63: Lightning's
    assert average(EMAUpdate(0.999)) > 0.99
    ema = pickle.loads(
        pickle.dumps(SpawnSafeEMA(decay=0.99))
    )  # trainer=ddp_cpu pickles callbacks into workers
    assert ema._kwargs["avg_fn"].decay == 0.99 and ema._kwargs["avg_fn"].warmup
