"""sr-train: a run folder belongs to one run, a folder is a folder, init_from is the architecture it claims, and
training images are read as they display, with unreadable links named.

Regression tests of issue 14's findings: 2 (a finished run's last.ckpt, metrics.json and log replaced, exit 0),
4 (two processes on one run folder both ran), 8 (`hydra.run.dir` pointing at a file: a traceback), 10 (EXIF
orientation ignored), 12 (dangling/looping symlinks skipped without a word; `init_from` between architectures
loading 5 of 96 tensors with an INFO line). Findings 5 and 8's option values: tests/reliability/test_config_faults.py.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sr_lit.errors import ConfigError
from sr_lit.lit.run_dir import LOCK_FILE, RunFolderError, RunLock, check_run_folder, claim_run_folder
from tests.reliability.checks import write_png
from tests.reliability.cli import error_lines, run_sr_train


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _refused(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _cfg(run: Path, **top) -> dict:
    """The keys the run-folder checks read, as a composed config has them."""
    return {"paths": {"output_dir": str(run)}, "ckpt_path": None, "overwrite": False, **top}


# ------------------------------------------------------------------------------------ finding 2: finished run
def test_a_finished_run_is_never_trained_over(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = _snapshot(run)
    proc = run_sr_train("trainer.max_steps=1", run_dir=run, timeout=120)
    line = _refused(proc, f"hydra.run.dir={run} holds another run", "checkpoints/last.ckpt", "metrics.json")
    assert "ckpt_path=last" in line and "overwrite=true" in line, line
    # not one byte changed or added: no .hydra/ copy, no log line, no error.txt in the other run's folder
    assert _snapshot(run) == before


def test_resume_and_overwrite_are_the_ways_in(tiny_run: Path, tmp_path: Path, caplog) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    last = run / "checkpoints" / "last.ckpt"
    check_run_folder(_cfg(run, ckpt_path="last"))  # resume: same folder
    check_run_folder(_cfg(run, ckpt_path=str(last)))  # resume from an explicit checkpoint of the folder
    with pytest.raises(RunFolderError, match="is not in it"):
        check_run_folder(_cfg(run, ckpt_path=str(tmp_path / "elsewhere.ckpt")))
    with caplog.at_level(logging.WARNING, logger="sr_lit.train"):
        lock = claim_run_folder(_cfg(run, overwrite=True), run)
    try:
        assert not list((run / "checkpoints").glob("*.ckpt")) and not (run / "metrics.json").exists()
        assert not (run / "wandb_run_id.txt").exists()  # a new W&B run, not the old one continued
        assert "overwrite=true: deleted the previous run's checkpoints/best-step" in caplog.text
        assert "checkpoints/last.ckpt, metrics.json, wandb_run_id.txt" in caplog.text
    finally:
        lock.release()
    assert not (run / LOCK_FILE).exists()


def test_overwrite_never_deletes_what_the_run_reads(tiny_run: Path, tmp_path: Path) -> None:
    """overwrite=true deletes the previous run's checkpoints: refused before that when the new run would read one
    of them (init_from or ckpt_path inside the folder), and with ckpt_path=last (a contradiction)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    last = run / "checkpoints" / "last.ckpt"
    before = _snapshot(run)
    for key, value in (("init_from", str(last)), ("ckpt_path", str(last)), ("ckpt_path", "last")):
        with pytest.raises(ConfigError, match=f"{key}={value}|ckpt_path=last") as err:
            claim_run_folder(_cfg(run, overwrite=True, **{key: value}), run)
        assert "overwrite=true" in str(err.value)
    assert _snapshot(run) == before and not (run / LOCK_FILE).exists()
    # a checkpoint kept outside the folder is fine
    outside = tmp_path / "kept.ckpt"
    shutil.copy(last, outside)
    claim_run_folder(_cfg(run, overwrite=True, init_from=str(outside)), run).release()
    assert outside.is_file() and not last.exists()


def test_resume_from_a_checkpoint_folder_outside_the_run_folder(tiny_run: Path, tmp_path: Path) -> None:
    """callbacks.model_checkpoint.dirpath elsewhere (a scratch disk): resuming from a checkpoint there is a resume
    of this run, not another run's results."""
    run, scratch = tmp_path / "run", tmp_path / "scratch" / "ckpts"
    shutil.copytree(tiny_run, run)
    shutil.move(run / "checkpoints", scratch)
    cfg = _cfg(run, ckpt_path=str(scratch / "last.ckpt"))
    cfg["callbacks"] = {"model_checkpoint": {"_target_": "x", "dirpath": str(scratch)}}
    check_run_folder(cfg)
    with pytest.raises(RunFolderError, match="holds another run"):
        check_run_folder({**cfg, "ckpt_path": None})


# -------------------------------------------------------------------------------- finding 4: one live process
def _lock_of(run: Path, pid: int, host: str | None = None) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    info = {"pid": pid, "host": host or socket.gethostname(), "since": "2026-01-01 00:00:00"}
    (run / LOCK_FILE).write_text(json.dumps(info))
    return run / LOCK_FILE


def test_a_live_run_folder_is_refused(tmp_path: Path) -> None:
    """The lock of a live sr-train (here: this test's own process, alive by definition) refuses a second one
    before it writes anything; test_crash_resume.py does the same against a real training process."""
    run = tmp_path / "run"
    lock = _lock_of(run, os.getpid())
    before = _snapshot(run)
    proc = run_sr_train("trainer.max_steps=1", run_dir=run, timeout=120)
    _refused(
        proc, "is in use by another sr-train", f"PID {os.getpid()} on host {socket.gethostname()}", str(lock)
    )
    assert _snapshot(run) == before


def test_stale_locks_are_taken_over_unknown_hosts_are_not(tmp_path: Path, caplog) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    _lock_of(run, dead.pid)
    with caplog.at_level(logging.WARNING, logger="sr_lit.train"):
        lock = claim_run_folder(_cfg(run), run)
    assert f"taking over the lock of a run that is no longer running (PID {dead.pid}" in caplog.text
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    # a PID that runs again, but is another process now (started later than the lock says): stale too
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": "x", "proc_start": "1"}
    (run / LOCK_FILE).write_text(json.dumps(info))
    if Path(f"/proc/{os.getpid()}/stat").is_file():
        assert RunLock(run).live_holder() is None
    # another machine's lock: its process cannot be looked at, so it is never assumed dead
    _lock_of(run, dead.pid, host="another-node")
    with pytest.raises(RunFolderError, match="on host another-node"):
        claim_run_folder(_cfg(run), run)


@pytest.mark.skipif(not Path("/proc/self/ns/pid").exists(), reason="Linux /proc only")
def test_locks_of_other_containers_and_earlier_boots(tmp_path: Path) -> None:
    """Containers sharing a host name (--network=host) have their own PID namespaces: a PID missing here may be
    alive there, so such a lock is never taken over; a lock written before this machine booted is stale."""
    from sr_lit.utils import owner

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = owner.owner_record()
    assert owner.owner_gone({**me, "pid": dead.pid, "proc_start": None})
    assert not owner.owner_gone({**me, "pid": dead.pid, "pid_ns": me["pid_ns"] + 1})  # another container
    assert not owner.owner_gone(me)  # this process
    assert owner.owner_gone({**me, "proc_start": "1"})  # our PID, reused: the record's process is gone
    rebooted = {**me, "boot_id": "another-boot"}
    assert owner.owner_gone({**rebooted, "written": 0.0})  # written before this boot
    assert not owner.owner_gone({**rebooted, "written": me["written"]})  # another machine of the same name
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(json.dumps({**me, "pid": dead.pid, "pid_ns": me["pid_ns"] + 1}))
    with pytest.raises(RunFolderError, match="is in use"):
        claim_run_folder(_cfg(run), run)


def test_the_hydra_callback_locks_the_folder_before_hydra_writes_into_it(tmp_path: Path) -> None:
    """Two commands started on one empty folder at the same moment: both used to pass the callback (nothing in the
    folder yet) and write their .hydra/ config, the loser refused only later at the lock. Now the callback takes
    the lock: while this process holds it, another sr-train is refused before writing anything; the pipeline's
    own checks and claim then treat the lock as this process's."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from sr_lit.lit.run_dir import RunFolderGuard
    from sr_lit.utils.config import CONFIG_DIR

    run = tmp_path / "run"
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = hydra_compose("train", [f"hydra.run.dir={run}"], return_hydra_config=True)
        RunFolderGuard().on_run_start(cfg)
    finally:
        GlobalHydra.instance().clear()
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]
    proc = run_sr_train("trainer.max_steps=1", run_dir=run, timeout=120)
    _refused(proc, "is in use by another sr-train", f"PID {os.getpid()}")
    assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]  # no .hydra/, no log of the refused command
    check_run_folder(_cfg(run))  # this process's own lock does not refuse it
    lock = claim_run_folder(_cfg(run), run)
    assert lock is not None and lock.held
    lock.release()
    assert not (run / LOCK_FILE).exists()


def test_other_ranks_are_not_refused_by_rank_0s_lock(tiny_run: Path, tmp_path: Path, monkeypatch) -> None:
    """Lightning re-runs the command for ranks > 0 (trainer=ddp, LOCAL_RANK set), torchrun/SLURM start every rank
    (RANK / SLURM_PROCID): same folder, rank 0's lock and results in it; they neither check nor lock."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    _lock_of(run, os.getpid())
    for var in ("LOCAL_RANK", "RANK", "SLURM_PROCID"):
        for v in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
            monkeypatch.delenv(v, raising=False)
        monkeypatch.setenv(var, "1")
        check_run_folder(_cfg(run))
        assert claim_run_folder(_cfg(run), run) is None
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()  # rank 0's lock untouched


# --------------------------------------------------------------------------- finding 8: a run dir that is a file
def test_run_dir_that_is_a_file(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("mine")
    proc = run_sr_train(run_dir=not_a_folder, timeout=120)
    _refused(proc, f"hydra.run.dir={not_a_folder}: is a file, not a folder")
    assert not_a_folder.read_text() == "mine"
    with pytest.raises(ConfigError, match="is a file"):
        check_run_folder(_cfg(not_a_folder))


# ------------------------------------------------------------------------------------- finding 12: init_from
def _module(backbone: str, attention: str, hpf: str):
    from sr_lit.bench.common import spec_for
    from sr_lit.lit.module import SRModule

    return SRModule(spec_for(backbone, attention, hpf, scale=2))


def test_init_from_another_architecture_stops(tmp_path: Path) -> None:
    src = tmp_path / "edsr_baseline.pt"
    torch.save(_module("edsr_baseline", "none", "none").net.state_dict(), src)
    target = _module("edsr_tiny", "mmca", "dynamic")
    with pytest.raises(ConfigError) as e:
        target.load_init_weights(str(src))
    msg = str(e.value)
    # MeanShift's 4 and the last conv's bias fit: 0.0 % of the weights
    assert "fills 5 of this model's 96 tensors (0.0% of its weights)" in msg, msg
    # a plain state dict: its architecture is detected from its keys and shapes
    assert "it holds EDSR-baseline (16 blocks x 64 features, res_scale 1) x2" in msg, msg
    assert "this model is EDSR (8 blocks x 32 features, res_scale 1) + MMCA + HPF x2" in msg, msg
    assert "init_from_partial=true" in msg
    target.load_init_weights(str(src), partial=True)  # the user's explicit choice


def test_init_from_names_both_sr_lit_architectures_and_fine_tunes_a_bigger_variant(tmp_path: Path) -> None:
    from sr_lit.models.loading import save_safetensors

    plain = _module("edsr_tiny", "none", "none")
    src = save_safetensors(plain.net, plain.hparams.model_spec, tmp_path / "plain.safetensors")
    named = r"holds EDSR \(8 blocks x 32 features, res_scale 1\) x2, this model is RCAN \(10 groups"
    with pytest.raises(ConfigError, match=named):
        _module("rcan", "ca", "none").load_init_weights(str(src))
    # plain edsr_tiny -> edsr_tiny + MMCA + HPF: 44 of 96 tensors but 82 % of the weights, the body and tail
    bigger = _module("edsr_tiny", "mmca", "dynamic")
    assert bigger.load_init_weights(str(src)) == []
    got = bigger.net.state_dict()
    assert all(torch.equal(got[k], v) for k, v in plain.net.state_dict().items())


# -------------------------------------------------------------------- findings 10 and 12: training images
def test_training_images_upright_and_broken_links_named(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from sr_lit.data.datasets import TrainPatchDataset
    from sr_lit.data.sources import folder_pairs
    from sr_lit.data.store import DataFaultError

    d = tmp_path / "train"
    write_png(d / "a.png", 40, 40)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored 64 wide x 40 high, displayed rotated: 40 wide x 64 high
    Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(d / "phone.jpg", exif=exif.tobytes())
    (d / "gone.png").symlink_to(tmp_path / "deleted.png")
    with pytest.raises(DataFaultError, match=r"gone\.png: broken symbolic link"):
        TrainPatchDataset(folder_pairs(d), scale=2, patch_size=8)
    with pytest.warns(UserWarning, match=r"skipping .*gone\.png: broken symbolic link"):
        ds = TrainPatchDataset(folder_pairs(d), scale=2, patch_size=8, skip_bad=True)
    phone = next(i for i, e in enumerate(ds.store.entries) if e.name == "phone")
    assert tuple(ds.store.get(phone)[1].shape[-2:]) == (64, 40)  # (lr, hr): the HR as it displays
