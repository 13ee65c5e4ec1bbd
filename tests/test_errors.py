"""The error family: exit codes by isinstance, pickling, and classes kept across a spawned DDP boundary."""

from __future__ import annotations

import pickle

import pytest

from sr_lit import errors
from sr_lit.data.store import DataConfigError, DataFaultError
from sr_lit.errors import (
    EXIT_TRAINING_FAULT,
    EXIT_USER_ERROR,
    CheckpointError,
    ConfigError,
    ImageError,
    UserError,
    exit_code,
    from_spawned,
)
from sr_lit.lit.module import NonFiniteLossError


@pytest.mark.parametrize(
    "err",
    [
        ImageError("a.png", "truncated"),
        CheckpointError("c.ckpt", "not a checkpoint"),
        ConfigError("seed=abc: must be an integer"),
        DataFaultError("Set5", [("a.png", "empty file")], 5),
        DataConfigError("no images left"),
        NonFiniteLossError("3 bad steps"),
    ],
)
def test_every_class_pickles_with_its_message_and_fields(err):
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and str(back) == str(err)
    assert getattr(back, "path", None) == getattr(err, "path", None)
    assert getattr(back, "faults", None) == getattr(err, "faults", None)


def test_exit_codes_follow_the_class_tree():
    assert exit_code(ImageError("a.png", "bad")) == EXIT_USER_ERROR
    assert exit_code(DataConfigError("x")) == EXIT_USER_ERROR
    assert isinstance(DataConfigError("x"), ConfigError)
    assert exit_code(NonFiniteLossError("x")) == EXIT_TRAINING_FAULT
    assert exit_code(RuntimeError("bug")) is None
    assert exit_code(FileNotFoundError("x")) == EXIT_USER_ERROR
    # Hydra wraps the target's exception: the cause decides
    wrapped = RuntimeError("Error in call to target")
    wrapped.__cause__ = ConfigError("data.repeat=0")
    assert exit_code(wrapped) == EXIT_USER_ERROR


def test_no_class_name_lists_remain():
    import sr_lit.cli.train as train_cli

    assert not hasattr(train_cli, "_USER_ERRORS") and not hasattr(train_cli, "_TRAINING_FAULTS")


class ProcessRaisedException(
    Exception
):  # the name torch.multiprocessing gives a worker's error in the parent
    pass


def _spawned(text: str) -> ProcessRaisedException:
    return ProcessRaisedException(
        "\n\n-- Process 1 terminated with the following error:\nTraceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n    raise E\n' + text
    )


def test_spawned_worker_errors_keep_their_class():
    back = from_spawned(_spawned("sr_lit.lit.module.NonFiniteLossError: too many bad steps\nsecond line"))
    assert type(back) is NonFiniteLossError and str(back) == "too many bad steps\nsecond line"
    assert exit_code(_spawned("sr_lit.errors.ImageError: a.png: truncated")) == EXIT_USER_ERROR
    assert isinstance(from_spawned(_spawned("sr_lit.data.store.DataConfigError: x")), UserError)
    other = _spawned("ValueError: some bug")
    assert from_spawned(other) is other and exit_code(other) is None
    assert errors.one_line(_spawned("sr_lit.errors.ConfigError: seed=abc")) == "seed=abc"
