"""Non-finite and exploding losses (tests/lit/test_train.py covers repeated NaN in-process): an inf loss is
skipped and counted and the run goes on; a loss x1e6 after warm-up is caught as exploding; through the CLI the
stop is one clear line with the checkpoint from before the fault."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sr_lit.lit.pipeline import train
from tests.reliability.checks import load_safe
from tests.reliability.cli import NO_VAL, PLAIN, error_lines, run_sr_train


def poison(kind: str, after: int, count: int | None = None) -> list[str]:
    out = [
        "+callbacks.poison._target_=tests.reliability.helpers.PoisonBatch",
        f"+callbacks.poison.kind={kind}",
        f"+callbacks.poison.after={after}",
    ]
    return out + ([f"+callbacks.poison.count={count}"] if count is not None else [])


def assert_finite_weights(ckpt: dict) -> None:
    for key in ("state_dict", "current_model_state"):
        for name, value in ckpt.get(key, {}).items():
            if value.is_floating_point():
                assert torch.isfinite(value).all(), f"{key}/{name}"


def test_inf_losses_are_skipped_counted_and_training_goes_on(compose_train, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = compose_train(
        *PLAIN, "trainer.max_steps=5", *NO_VAL, "data.repeat=4", *poison("inf", 2, 2), run_dir=run
    )
    metrics = train(cfg)
    assert (
        metrics["global_step"] == 5
    )  # a skipped batch still counts as a step (Lightning's loop counts batches)
    ckpt = load_safe(run / "checkpoints" / "last.ckpt")
    guard = ckpt["sr_lit"]["guard"]
    assert guard["total_skipped"] == 2 and guard["consecutive"] == 0  # the next clean batch reset the streak
    assert guard["skipped_steps"] == [2, 3]
    assert_finite_weights(ckpt)


def test_exploding_loss_after_warmup_stops_with_checkpoint_before_fault(
    compose_train, tmp_path: Path
) -> None:
    from sr_lit.lit.module import NonFiniteLossError

    run = tmp_path / "run"
    cfg = compose_train(
        *PLAIN,
        "trainer.max_steps=30",
        *NO_VAL,
        "data.repeat=4",
        "+module.guard.warmup=3",  # a running mean after 3 accepted steps (default 20)
        "module.guard.max_consecutive=3",
        *poison("explode", 5),  # loss x ~1e6 from the 6th batch on: finite, but > explode_factor (1e4) x mean
        run_dir=run,
    )
    with pytest.raises(NonFiniteLossError, match="before_fault.ckpt") as err:
        train(cfg)
    assert "training stopped at step 7" in str(err.value)  # skipped batches count as steps: 5, 6, 7
    ckpt = load_safe(run / "checkpoints" / "before_fault.ckpt")
    assert ckpt["global_step"] == 7
    assert ckpt["sr_lit"]["guard"]["skipped_steps"] == [5, 6, 7]
    assert_finite_weights(ckpt)


def test_cli_reports_the_stop_as_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_sr_train(
        "trainer.max_steps=20",
        *NO_VAL,
        "data.repeat=4",
        "module.guard.max_consecutive=2",
        *poison("nan", 1),
        run_dir=run,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "training stopped at step 2" in lines[0], proc.stderr[-3000:]
    assert str(run / "checkpoints" / "before_fault.ckpt") in lines[0]
    assert_finite_weights(load_safe(run / "checkpoints" / "before_fault.ckpt"))
    assert "NonFiniteLossError" in (run / "error.txt").read_text()
