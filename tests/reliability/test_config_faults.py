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
        # issue 14, findings 5 and 8: these passed the checks and failed later, some with a traceback
        (
            ["module.scheduler.name=foo", "module.scheduler.warmup_steps=10"],
            ["module.scheduler.name=foo", "cosine"],
        ),
        (["module.optimizer.lr=-0.001"], ["module.optimizer.lr=-0.001", "> 0"]),
        (["seed=abc"], ["seed=abc", "integer"]),
        (["data.num_workers=-1"], ["data.num_workers=-1", ">= 0"]),
    ],
)
def test_preflight_errors_are_one_line(tmp_path: Path, overrides: list[str], needles: list[str]) -> None:
    run = tmp_path / "run"
    proc = run_sr_train(*overrides, run_dir=run, timeout=120)
    assert_one_clear_error(proc, *needles)
    assert "Traceback" in (run / "error.txt").read_text()  # the details are kept for a bug report
    assert not (run / "checkpoints").exists()


# Every option with a range, a bad value each, checked by `preflight` before any work: (override(s), message).
# A new option with a range gets a row here (test_every_module_key_has_a_row enforces it for module.*).
BAD_VALUES = [
    # top level
    ("scale=5", "scale=5: must be 2, 3 or 4"),
    ("seed=abc", "seed=abc: must be an integer"),
    ("seed=1.5", "seed=1.5: must be an integer"),
    ("seed=-1", "seed=-1: must be an integer in [0, 4294967295]"),
    ("overwrite=maybe", "overwrite=maybe: must be true or false"),
    ("init_from_partial=2", "init_from_partial=2: must be true or false"),
    ("ckpt_path=/does/not/exist.ckpt", "ckpt_path=/does/not/exist.ckpt: no such checkpoint"),
    ("init_from=/does/not/exist.ckpt", "init_from=/does/not/exist.ckpt: no such checkpoint"),
    # data
    ("data.patch_size=0", "data.patch_size=0: must be a positive integer"),
    ("data.batch_size=-4", "data.batch_size=-4: must be a positive integer"),
    ("data.repeat=0", "data.repeat=0: must be a positive integer"),
    ("data.num_workers=-1", "data.num_workers=-1: must be an integer >= 0"),
    ("data.val_num_workers=1.5", "data.val_num_workers=1.5: must be an integer >= 0"),
    # module
    ("module.loss=l3", "module.loss=l3: not a loss"),
    ("module.optimizer.name=sgd", "module.optimizer.name=sgd: not an optimizer"),
    ("module.optimizer.lr=-0.001", "module.optimizer.lr=-0.001: must be a number > 0"),
    ("module.optimizer.lr=0", "module.optimizer.lr=0: must be a number > 0"),
    ("module.optimizer.lr=inf", "module.optimizer.lr=inf: must be a number > 0"),
    ("module.optimizer.betas=[0.9]", "module.optimizer.betas=[0.9]: must be two numbers in [0, 1)"),
    ("module.optimizer.betas=[0.9,1.0]", "module.optimizer.betas=[0.9, 1.0]: must be two numbers in [0, 1)"),
    ("module.optimizer.eps=0", "module.optimizer.eps=0: must be a number > 0"),
    ("module.optimizer.weight_decay=-1", "module.optimizer.weight_decay=-1: must be a number >= 0"),
    ("module.scheduler.name=foo", "module.scheduler.name=foo: not a schedule"),
    # finding 5: the warm-up branch returned before the name was looked at
    (("module.scheduler.name=foo", "module.scheduler.warmup_steps=100"), "module.scheduler.name=foo"),
    ("module.scheduler.warmup_steps=-1", "module.scheduler.warmup_steps=-1: must be an integer >= 0"),
    ("module.scheduler.gamma=0", "module.scheduler.gamma=0: must be a number > 0"),
    ("module.scheduler.step_size=0", "module.scheduler.step_size=0: must be an integer >= 1"),
    ("module.scheduler.milestones=[a]", "module.scheduler.milestones=['a']: must be a list of integers"),
    ("module.scheduler.min_lr=-1", "module.scheduler.min_lr=-1: must be a number >= 0"),
    (("module.scheduler.name=cosine", "trainer.max_steps=-1"), "cosine needs trainer.max_steps > 0"),
    (("module.scheduler.name=cosine", "module.scheduler.min_lr=0.1"), "module.scheduler.min_lr=0.1: above"),
    ("module.guard.explode_factor=0.5", "module.guard.explode_factor=0.5: must be a number > 1"),
    ("module.guard.max_consecutive=0", "module.guard.max_consecutive=0: must be an integer >= 1"),
    ("module.guard.max_total=0", "module.guard.max_total=0: must be an integer >= 1"),
    # callbacks
    ("callbacks.ema.decay=1.5", "callbacks.ema.decay=1.5: must be a number in [0, 1]"),
]


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory):
    """The tests' tiny train config, composed once (a Hydra compose per row would cost ~0.5 s each)."""
    from omegaconf import open_dict

    from tests.conftest import compose
    from tests.reliability.cli import TINY

    cfg = compose("train", list(TINY), tmp_path_factory.mktemp("table") / "run")
    with open_dict(cfg):
        cfg.paths.output_dir = cfg.paths.output_dir  # resolved now: later tests re-point Hydra's runtime dir
    return cfg


def with_overrides(cfg, overrides: tuple[str, ...]):
    """``cfg`` with command-line overrides applied as Hydra parses them (``inf``, lists, strings)."""
    import copy

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    cfg = copy.deepcopy(cfg)
    for o in OverridesParser.create().parse_overrides(list(overrides)):
        OmegaConf.update(cfg, o.key_or_group, o.value(), merge=False)
    return cfg


@pytest.mark.parametrize(("overrides", "message"), BAD_VALUES, ids=[str(o) for o, _ in BAD_VALUES])
def test_bad_values_are_named_before_any_work(
    tiny_config, overrides: str | tuple[str, ...], message: str
) -> None:
    from sr_lit.errors import ConfigError
    from sr_lit.lit.pipeline import preflight

    overrides = (overrides,) if isinstance(overrides, str) else overrides
    preflight(with_overrides(tiny_config, ()))  # the config itself passes: each row's value is what fails
    with pytest.raises(ConfigError) as e:
        preflight(with_overrides(tiny_config, overrides))
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_every_module_key_has_a_row() -> None:
    """A key added to configs/module/default.yaml's optimizer/scheduler/guard needs a bad value in BAD_VALUES."""
    from omegaconf import OmegaConf

    from sr_lit.utils.config import CONFIG_DIR

    module = OmegaConf.load(Path(CONFIG_DIR) / "module" / "default.yaml")
    rows = " ".join(" ".join(o) if isinstance(o, tuple) else o for o, _ in BAD_VALUES)
    keys = ["module.loss"] + [
        f"module.{g}.{k}" for g in ("optimizer", "scheduler", "guard") for k in module[g]
    ]
    assert [k for k in keys if f"{k}=" not in rows] == []


def test_loss_names_match_the_module() -> None:
    from sr_lit.lit.module import LOSSES
    from sr_lit.lit.options import LOSSES as CHECKED

    assert set(LOSSES) == set(CHECKED)


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
    from sr_lit.data.io import ImageError
    from sr_lit.data.store import DataConfigError, DataFaultError
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
            "sr_lit.data.store.DataFaultError: 1 bad image file(s) out of 3 in x:", "  /d/a.png: truncated"
        )
    )
    assert kind == "user" and message == "1 bad image file(s) out of 3 in x:\n  /d/a.png: truncated"
    assert classify_error(_spawned("RuntimeError: injected"))[0] is None
