"""Config mistakes through the real `sr-train` CLI: non-zero exit, one clear message naming the key or option,
no raw traceback as the only output. Hydra's own composition errors keep Hydra's (clear) wording."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.reliability.cli import error_lines, run_sr_train


def assert_one_clear_error(proc, *needles: str, code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr[-3000:]
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr[-3000:])
    return lines[0]


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        # unknown option of a config group: Hydra lists the available ones
        ("backbone=nope", ["Could not find 'backbone/nope'", "edsr_tiny"]),
        # misspelt key: Hydra names it and suggests the `+` form
        ("trainer.max_stesp=3", ["max_stesp", "trainer.max_stesp"]),
    ],
)
def test_hydra_composition_errors_name_the_key(tmp_path: Path, override: str, needles: list[str]) -> None:
    proc = run_sr_train(override, run_dir=tmp_path / "run", timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]  # HYDRA_FULL_ERROR unset: the user's view
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr[-3000:])


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["scale=5"], ["scale=5", "2, 3 or 4"]),
        (["data.patch_size=0"], ["data.patch_size=0", "positive integer"]),
        (["data.patch_size=2.5"], ["data.patch_size=2.5", "positive integer"]),
        (["data.batch_size=-4"], ["data.batch_size=-4"]),
        (["ckpt_path=/does/not/exist.ckpt"], ["ckpt_path=/does/not/exist.ckpt", "no such checkpoint"]),
        (["init_from=/does/not/exist.ckpt"], ["init_from=/does/not/exist.ckpt"]),
        (["data=folder"], ["data.root"]),  # the mandatory `???` value
    ],
)
def test_preflight_errors_are_one_line(tmp_path: Path, overrides: list[str], needles: list[str]) -> None:
    run = tmp_path / "run"
    proc = run_sr_train(*overrides, run_dir=run, timeout=120)
    assert_one_clear_error(proc, *needles)
    assert "Traceback" in (run / "error.txt").read_text()  # the details are kept for a bug report
    assert not (run / "checkpoints").exists()


def test_resuming_another_architecture_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    ckpt = tiny_run / "checkpoints" / "last.ckpt"  # edsr_tiny + mmca + dynamic HPF, x2
    proc = run_sr_train(f"ckpt_path={ckpt}", "attention=ca", run_dir=tmp_path / "run", timeout=120)
    line = assert_one_clear_error(proc, "another architecture", "init_from")
    assert "attention: checkpoint {'name': 'mmca'" in line and "vs config {'name': 'ca'" in line, line


def test_ckpt_path_last_is_checked_too(tiny_run: Path, tmp_path: Path) -> None:
    """`ckpt_path=last` in a run dir whose last.ckpt is another model: refused before Lightning loads it."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "checkpoints", run / "checkpoints")
    proc = run_sr_train("ckpt_path=last", "backbone=rcan", run_dir=run, timeout=120)
    assert_one_clear_error(proc, "last.ckpt holds another architecture", "backbone: checkpoint")


@pytest.mark.parametrize(
    ("content", "override", "message"),
    [
        (b"this is not a checkpoint\n", None, "not a readable checkpoint"),
        (
            None,
            "scale=3",
            "scale: checkpoint 2 vs config 3.*init_from",
        ),  # x2 -> x3 is fine-tuning, not resume
    ],
)
def test_preflight_checks_the_checkpoint_file(
    tiny_run: Path, tmp_path: Path, compose_train, content: bytes | None, override: str | None, message: str
) -> None:
    """The same checks in-process (cheaper than a subprocess each): unreadable file, another scale."""
    from sr_lit.errors import UserError
    from sr_lit.lit.pipeline import preflight

    ckpt = tiny_run / "checkpoints" / "last.ckpt"
    if content is not None:
        ckpt = tmp_path / "notes.ckpt"
        ckpt.write_bytes(content)
    with pytest.raises(UserError, match=message):
        preflight(compose_train(f"ckpt_path={ckpt}", *([override] if override else [])))


def _spawned(exc_line: str, *more: str) -> BaseException:
    """What torch re-raises in the launcher when a spawned DDP worker failed: the worker's traceback as text."""
    from torch.multiprocessing.spawn import ProcessRaisedException

    trace = "\n".join(
        ["Traceback (most recent call last):", '  File "x.py", line 1, in f', "    raise E", exc_line, *more]
    )
    return ProcessRaisedException(f"\n\n-- Process 1 terminated with the following error:\n{trace}", 1, 123)


def test_error_classification_covers_errors_raised_inside_fit() -> None:
    """Errors from datamodule.setup or the loss guard come out of trainer.fit; main prints them as one line."""
    from hydra.errors import InstantiationException
    from omegaconf.errors import MissingMandatoryValue

    from sr_lit.cli.train import classify_error
    from sr_lit.data.datasets import DataConfigError, DataFaultError
    from sr_lit.data.io import ImageError
    from sr_lit.errors import UserError
    from sr_lit.lit.module import NonFiniteLossError
    from sr_lit.models.loading import CheckpointError

    user = [
        UserError("u"),
        DataFaultError("training set x", [("/d/a.png", "corrupt or truncated image")], 3),
        DataConfigError("no usable images left"),
        ImageError("/d/a.png", "empty file (0 bytes)"),
        CheckpointError("/c.ckpt", "not a checkpoint"),
        FileNotFoundError("image folder not found: /d"),
        MissingMandatoryValue("Missing mandatory value: data.root"),
        InstantiationException("Error in call to target 'x': ValueError('bad')\nfull_key: data"),
    ]
    for e in user:
        assert classify_error(e) == ("user", str(e)), e
    assert classify_error(NonFiniteLossError("training stopped"))[0] == "fault"
    assert classify_error(RuntimeError("a bug"))[0] is None  # unexpected: keep the traceback
    # the same, raised in a spawned DDP worker (trainer=ddp_cpu)
    kind, message = classify_error(
        _spawned(
            "sr_lit.data.datasets.DataFaultError: 1 bad image file(s) out of 3 in x:", "  /d/a.png: truncated"
        )
    )
    assert kind == "user" and message == "1 bad image file(s) out of 3 in x:\n  /d/a.png: truncated"
    assert classify_error(_spawned("RuntimeError: injected"))[0] is None
