"""A 2-job grid through the submitit launcher (conf_sweeps/hydra/launcher/local.yaml: the SLURM path, run as
local subprocesses): `sr-train -m --config-dir conf_sweeps hydra/launcher=local ... attention=none,mmca`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _sr_train(*args: str, timeout: int = 480) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(OMP_NUM_THREADS="1", WANDB_MODE="offline")
    cmd = [sys.executable, "-m", "sr_lit.cli.train", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def test_launcher_configs_extend_the_plugin() -> None:
    """`hydra/launcher=slurm` resolves (through --config-dir) to our file on top of the plugin's schema."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from sr_lit.utils.config import CONFIG_DIR

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            search = f"hydra.searchpath=[file://{REPO / 'conf_sweeps'}]"  # what --config-dir adds
            cfg = compose("train", [search, "hydra/launcher=slurm", "hydra.launcher.partition=gpu"], True)
            local = compose("train", [search, "hydra/launcher=local", "hydra.launcher.timeout_min=5"], True)
    finally:
        GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.partition == "gpu"
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (1, 1, 1)
    assert "signal_delay_s" in launcher and "qos" in launcher  # the plugin's keys are there too
    assert local.hydra.launcher._target_.endswith("LocalLauncher") and local.hydra.launcher.timeout_min == 5


@pytest.mark.slow
def test_two_job_grid_through_submitit_local(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    r = _sr_train(
        "-m",
        "--config-dir",
        str(REPO / "conf_sweeps"),
        "hydra/launcher=local",
        f"hydra.sweep.dir={sweep}",
        "experiment=quickstart",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "data.patch_size=16",
        "data.batch_size=4",
        "data.repeat=1",
        "logger=csv",
        "module.log_images=0",
        "callbacks.progress_bar=null",
        "attention=none,mmca",
    )
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    jobs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(jobs) == 2, list(sweep.iterdir())
    assert (sweep / ".submitit").is_dir()  # it went through submitit, not the basic launcher
    metrics = [json.loads((job / "metrics.json").read_text()) for job in jobs]
    # W&B/CSV identity from the Hydra choices, as in local sweeps
    assert {m["group"] for m in metrics} == {"quickstart"}
    assert {m["run_name"].split("-")[1] for m in metrics} == {"none", "mmca"}
    assert all("experiment:quickstart" in m["tags"] for m in metrics)

    if not (REPO / "sr_lit" / "cli" / "report.py").is_file():
        pytest.skip("sr-report is not there yet")
    out = tmp_path / "report"
    rep = subprocess.run(
        [sys.executable, "-m", "sr_lit.cli.report", str(sweep), "--out", str(out), "--no-cost"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"},
    )
    assert rep.returncode == 0, rep.stderr[-3000:]
    with open(out / "report.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
