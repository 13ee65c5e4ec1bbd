"""Crashes and pre-emption: SIGKILL mid-epoch then `ckpt_path=last`, SIGTERM saving a checkpoint, and checkpoint
writes that a kill can interrupt without corrupting the previous `last.ckpt`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.reliability.checks import load_safe
from tests.reliability.cli import NO_VAL, PLAIN, run_sr_train, start_sr_train

# 12 images x repeat 20 / batch 4 = 60 steps per epoch: every signal below lands mid-epoch
LONG_EPOCH = (*NO_VAL, "data.repeat=20")


def probe(folder: Path, sleep: float) -> list[str]:
    return [
        "+callbacks.probe._target_=tests.reliability.helpers.StepProbe",
        f"+callbacks.probe.folder={folder}",
        f"+callbacks.probe.sleep={sleep}",
    ]


def wait_until(cond: Callable[[], bool], proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"run ended early (rc={proc.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"timed out waiting:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def current_step(folder: Path) -> int:
    f = folder / "step.txt"
    return int(f.read_text()) if f.is_file() else -1


def start_steps(folder: Path) -> list[int]:
    return sorted(int(p.read_text()) for p in folder.glob("start_step_*.txt"))


def test_sigkill_resume_sigterm_resume(tmp_path: Path) -> None:
    """One run's life (3 processes, to keep the suite short): SIGKILLed mid-epoch after a periodic checkpoint ->
    resumed with ckpt_path=last from that step -> pre-empted by SIGTERM, which saves last.ckpt and exits 143 ->
    resumed again from the pre-emption checkpoint -> finishes at max_steps with one, final, last.ckpt."""
    run, probe_dir = tmp_path / "run", tmp_path / "probe"
    last = run / "checkpoints" / "last.ckpt"
    max_steps = "trainer.max_steps=30"

    # 1. SIGKILL between two periodic saves (or inside one: the atomic writer must cope with that too)
    log1 = tmp_path / "1.log"
    every5 = "callbacks.model_checkpoint.every_n_train_steps=5"
    proc = start_sr_train(*LONG_EPOCH, max_steps, every5, *probe(probe_dir, 0.2), run_dir=run, log=log1)
    wait_until(lambda: last.is_file() and current_step(probe_dir) >= 7, proc, log1)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    killed_at = load_safe(last)["global_step"]
    assert killed_at in (5, 10, 15, 20, 25), killed_at

    # 2. resume; no periodic saves now, so a last.ckpt written after the signal comes from PreemptionCheckpoint
    log2 = tmp_path / "2.log"
    (probe_dir / "step.txt").unlink()  # wait for the new process's own steps
    no_periodic = "callbacks.model_checkpoint.every_n_train_steps=1000"
    proc = start_sr_train(
        *LONG_EPOCH, max_steps, no_periodic, *probe(probe_dir, 0.3), "ckpt_path=last", run_dir=run, log=log2
    )
    wait_until(lambda: current_step(probe_dir) >= killed_at + 2, proc, log2)
    # a second process on the live run's folder is refused by its lock, naming it (issue 14, finding 4)
    second = run_sr_train(*LONG_EPOCH, max_steps, "ckpt_path=last", run_dir=run, timeout=120)
    assert second.returncode == 2 and f"in use by another sr-train (PID {proc.pid} on host" in second.stderr
    step_at_signal, sent_at = current_step(probe_dir), time.time()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=120)
    out = log2.read_text()
    assert start_steps(probe_dir) == [0, killed_at]  # resumed from the checkpoint, not from 0
    assert "taking over the lock of a run that is no longer running" in out  # the SIGKILLed one's
    assert rc == 143, out[-3000:]  # 128 + SIGTERM: a scheduler sees an unfinished job
    assert "sr-train: error: terminated by SIGTERM" in out and "ckpt_path=last" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert not (run / "sr-train.lock").exists()  # released on SIGTERM too
    assert last.stat().st_mtime >= sent_at - 1
    preempted_at = load_safe(last)["global_step"]
    assert step_at_signal <= preempted_at < 30

    # 3. resume from the pre-emption checkpoint and finish (an error.txt of an earlier failure is set aside)
    (run / "error.txt").write_text("NonFiniteLossError: from an earlier attempt\n")
    third = run_sr_train(
        *LONG_EPOCH, max_steps, no_periodic, *probe(probe_dir, 0.0), "ckpt_path=last", run_dir=run
    )
    assert third.returncode == 0, third.stderr[-3000:]
    assert start_steps(probe_dir) == [0, killed_at, preempted_at]
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 30
    assert not (run / "error.txt").exists() and (run / "error.previous.txt").is_file()  # sr-report: "ok"
    # one last.ckpt, the final one (no stale last.ckpt beside a newer last-v1.ckpt); the temp file a kill may
    # have left was cleaned up
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert not (run / "sr-train.lock").exists()  # released at the end
    assert load_safe(last)["global_step"] == 30


def test_periodic_last_before_the_first_validation_keeps_the_best_save(compose_train, tmp_path: Path) -> None:
    """Lightning defers step saves until the monitored metric exists; ours writes last.ckpt at once, and the best
    checkpoint of a validation at that same step (3 = end of the first epoch) is still written."""
    from sr_lit.lit.pipeline import train

    run = tmp_path / "run"
    train(
        compose_train(
            *PLAIN,
            "trainer.max_steps=3",
            "callbacks.model_checkpoint.every_n_train_steps=3",
            "final_eval=false",
            run_dir=run,
        )
    )
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(names) == 2 and names[0].startswith("best-step0000003-") and names[1] == "last.ckpt", names
    assert load_safe(run / "checkpoints" / "last.ckpt")["global_step"] == 3


# ----------------------------------------------------------------------------------- the atomic writer itself
def _checkpoint(step: int) -> dict:
    return {"global_step": step, "state_dict": {"net.w": torch.full((64, 64), float(step))}}


def _partial_save(obj: object, f) -> None:  # noqa: ANN001 - torch.save's file argument
    f.write(b"PK\x03\x04 half a zip archive")  # what an interrupted torch.save leaves: a torn zip
    f.flush()


def test_failed_save_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sr_lit.lit.callbacks as cb

    io, last = cb.AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint(_checkpoint(5), last)

    def failing_save(obj: object, f) -> None:  # noqa: ANN001
        _partial_save(obj, f)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cb.torch, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint(_checkpoint(10), last)
    assert load_safe(last)["global_step"] == 5
    assert [p.name for p in last.parent.iterdir()] == ["last.ckpt"]  # no temp file left behind


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_process_killed_inside_save_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    import sr_lit.lit.callbacks as cb
    from sr_lit.lit.pipeline import find_last_checkpoint

    io, last = cb.AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint(_checkpoint(5), last)
    pid = os.fork()
    if pid == 0:  # child: die by SIGKILL halfway through writing the next checkpoint
        try:

            def killed_save(obj: object, f) -> None:  # noqa: ANN001
                _partial_save(obj, f)
                os.kill(os.getpid(), signal.SIGKILL)

            cb.torch.save = killed_save
            io.save_checkpoint(_checkpoint(10), last)
        finally:
            os._exit(3)  # never reached when the kill works
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert load_safe(last)["global_step"] == 5  # the old checkpoint is intact
    torn = last.parent / f".last.ckpt.tmp-{pid}"
    assert torn.is_file()
    # `ckpt_path=last` (our pre-flight and Lightning's `last*.ckpt` search) never picks the torn temp file
    cfg = OmegaConf.create(
        {"callbacks": {"model_checkpoint": {"_target_": "x", "dirpath": str(last.parent)}}}
    )
    assert find_last_checkpoint(cfg) == last
    io.save_checkpoint(_checkpoint(15), last)  # a fresh temp may be another node's save in progress: kept
    assert torn.is_file() and load_safe(last)["global_step"] == 15
    aged = time.time() - cb.STALE_TEMP_S - 60  # untouched for longer than any save takes: a dead writer's
    os.utime(torn, (aged, aged))
    io.save_checkpoint(_checkpoint(20), last)  # the next save cleans it up
    assert not torn.exists() and load_safe(last)["global_step"] == 20
