"""DDP (2 CPU processes, gloo, spawned): a rank that raises ends the whole job with the error, well within the
strategy's collective timeout (the healthy rank must not wait forever in an all-reduce)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability.cli import NO_VAL, run_sr_train

TIMEOUT_S = 45  # trainer.strategy.timeout for the test (configs/trainer/ddp_cpu.yaml: 300 s)


@pytest.mark.slow
def test_a_failing_rank_ends_the_job_without_a_hang(tmp_path: Path) -> None:
    run = tmp_path / "run"
    start = time.monotonic()
    proc = run_sr_train(
        "trainer=ddp_cpu",
        f"trainer.strategy.timeout.seconds={TIMEOUT_S}",
        "trainer.max_steps=20",
        *NO_VAL,
        "data.repeat=8",
        "+callbacks.fail._target_=tests.reliability.helpers.FailOnRank",
        "+callbacks.fail.rank=1",
        "+callbacks.fail.step=1",
        run_dir=run,
        timeout=240,  # a hang shows up as subprocess.TimeoutExpired here
    )
    elapsed = time.monotonic() - start
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert "injected failure on rank 1 at step 1" in proc.stderr, proc.stderr[-3000:]
    assert elapsed < 180, elapsed
    assert "injected failure on rank 1" in (run / "error.txt").read_text()


@pytest.mark.slow
def test_a_data_fault_in_spawned_workers_is_still_one_line(tmp_path: Path) -> None:
    """Under ddp_spawn the set-up runs in the workers; torch re-raises their error as text, main unwraps it."""
    from tests.reliability.checks import bad_image_folder
    from tests.reliability.cli import error_lines
    from tests.reliability.test_data_faults import folder_args

    root, run = bad_image_folder(tmp_path / "images"), tmp_path / "run"
    proc = run_sr_train(
        *folder_args(root, run), "trainer=ddp_cpu", f"trainer.strategy.timeout.seconds={TIMEOUT_S}", run_dir=run,
        timeout=240,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "2 bad image file(s) out of 5" in lines[0], proc.stderr[-3000:]
    assert f"{root / 'cut.png'}: corrupt or truncated image" in proc.stderr


@pytest.mark.slow
def test_ddp_spawn_runs_with_the_default_callbacks(tmp_path: Path) -> None:
    """EMA on (configs/callbacks/default.yaml): Lightning's EMAWeightAveraging could not be pickled into spawned
    workers; SpawnSafeEMA can. The EMA weights and the raw weights both reach last.ckpt."""
    from tests.reliability.checks import load_safe

    run = tmp_path / "run"
    proc = run_sr_train(
        "trainer=ddp_cpu", "trainer.max_steps=2", *NO_VAL, "data.repeat=2", run_dir=run, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_safe(run / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 2 and "current_model_state" in ckpt
    assert ckpt["callbacks"]["EMAWeightAveraging"]["latest_update_step"] == 2
