"""Checkpoints written before the registry/pipeline refactor (main at f7ff43c) still load, give the same output
and resume. The fixture is a 3-step `sr-train experiment=quickstart` run of that commit with a shrunken edsr_tiny
(4 blocks x 8 features, MMCA reduction 4, one dynamic HPF); `.expected.pt` holds that code's output for a fixed
input, recorded when the fixture was made."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

FIXTURES = Path(__file__).parent / "fixtures"
OLD_CKPT = FIXTURES / "main_f7ff43c_edsr_tiny8_mmca_hpf_x2.ckpt"
EXPECTED = FIXTURES / "main_f7ff43c_edsr_tiny8_mmca_hpf_x2.expected.pt"


def test_old_checkpoint_loads_and_gives_the_recorded_output() -> None:
    from sr_lit.models.loading import load_model

    expected = torch.load(EXPECTED, weights_only=True)
    model, spec = load_model(OLD_CKPT)
    assert spec == expected["spec"]
    with torch.no_grad():
        out = model.eval()(expected["input"])
    assert out.shape == expected["output"].shape
    assert float((out - expected["output"]).abs().max()) < 1e-6


def test_old_checkpoint_resumes_with_the_same_config(compose_train, tmp_path: Path) -> None:
    from sr_lit.lit.pipeline import train

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(OLD_CKPT, run_dir / "checkpoints" / "last.ckpt")
    cfg = compose_train(
        "experiment=quickstart",
        "logger=none",
        "backbone.n_resblocks=4",
        "backbone.n_feats=8",
        "attention.reduction=4",
        "data.batch_size=2",
        "data.patch_size=16",
        "data.val_sets=[]",
        "trainer.max_steps=5",
        "ckpt_path=last",
        run_dir=run_dir,
    )
    metrics = train(cfg)
    assert metrics["global_step"] == 5  # continued from the old run's step 3
