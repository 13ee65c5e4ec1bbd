"""One tiny real training run through the CLI, shared by the safety and checkpoint-mismatch tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.cli import FAKE_WANDB_KEY, run_sr_train

# a second made-up secret: nothing from the environment may end up in run files
FAKE_OTHER_SECRET = "sk-test-" + "9f" * 16


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 steps (= one epoch of the 12 sample images at batch 4) of the default model with validation, CSV +
    offline W&B logging and fake secrets in the environment; returns the run directory."""
    run = tmp_path_factory.mktemp("tiny") / "run"
    proc = run_sr_train(
        "attention=mmca",  # the default model (TINY runs plain EDSR): its checkpoints must load safely too
        "hpf=dynamic",
        "logger=[csv,wandb]",
        "module.log_images=2",
        "trainer.max_steps=3",
        "final_eval=false",
        run_dir=run,
        env={"WANDB_API_KEY": FAKE_WANDB_KEY, "HF_TOKEN": FAKE_OTHER_SECRET},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run
