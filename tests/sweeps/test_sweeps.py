"""Sweeps end to end: `sr-train -m --config-dir conf_sweeps +sweep=...` in a subprocess, then sr-report on it.

Tiny settings (2 training steps, 16-px patches, Set5 validation or the held-out sample photos) keep each job
to seconds; one job thread (OMP_NUM_THREADS=1) so parallel helpers on 2 cores do not starve each other.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sr_lit.cli.report import main as report_main
from sr_lit.report.collect import SourceError, collect
from tests._shared import REPO_ROOT, shared_data_dir

SR_TRAIN = str(Path(sys.executable).parent / "sr-train")
TINY = [
    "experiment=quickstart",
    "trainer.max_steps=2",
    "data.patch_size=16",
    "data.batch_size=4",
    "data.repeat=1",
    "module.log_images=0",
    "callbacks.progress_bar=null",
]


def sweep_env() -> dict[str, str]:
    """One job thread, W&B offline and quiet, the shared data unless SR_DATA_DIR says otherwise."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.setdefault("SR_DATA_DIR", str(shared_data_dir()))
    return env


def sweep(name: str, sweep_dir: Path, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = sweep_env()
    cmd = [SR_TRAIN, "-m", "--config-dir", "conf_sweeps", f"+sweep={name}", *TINY, *overrides]
    cmd.append(f"hydra.sweep.dir={sweep_dir}")
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 real jobs (attention none|mmca, W&B offline) + 2 that fail inside the job (scale=5, at pre-flight)."""
    d = tmp_path_factory.mktemp("grid") / "sweep"
    sweep("ablation_modules", d, "attention=none,mmca", "hpf=none", "seed=0", "scale=2,5")
    return d


def test_grid_jobs_have_own_dirs_and_wandb_group(grid: Path) -> None:
    jobs = sorted(p for p in grid.iterdir() if p.is_dir())
    assert len(jobs) == 4 and [p.name[0] for p in jobs] == ["0", "1", "2", "3"]
    ok = [p for p in jobs if (p / "metrics.json").is_file()]
    assert len(ok) == 2
    for job in ok:
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["group"] == "ablation_modules" and metrics["global_step"] == 2
        assert any(k.endswith("/psnr_y") for k in metrics)
        # the offline W&B run carries the group too (it is only in the binary run file until synced)
        run_files = list(job.glob("wandb/offline-run-*/run-*.wandb"))
        assert run_files and b"ablation_modules" in run_files[0].read_bytes()
    failed = [p for p in jobs if (p / "error.txt").is_file()]
    assert len(failed) == 2 and all("_x5_" in p.name for p in failed)


def test_report_from_grid(grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert report_main([str(grid), "--out", str(out), "--wandb", "off"]) == 0
    err = capsys.readouterr().err
    assert err.count("failed:") == 2 and "scale=5: must be 2, 3 or 4" in err
    rows = read_csv(out / "report.csv")
    by_variant = {r["variant"]: r for r in rows}
    assert set(by_variant) == {f"attention={a}, scale={s}" for a in ("none", "mmca") for s in (2, 5)}
    plain, mmca = by_variant["attention=none, scale=2"], by_variant["attention=mmca, scale=2"]
    assert plain["n_seeds"] == mmca["n_seeds"] == "1"
    assert by_variant["attention=none, scale=5"]["n_seeds"] == "0"
    assert by_variant["attention=none, scale=5"]["n_failed"] == "1"
    set_name = next(k[: -len("_psnr_mean")] for k in rows[0] if k.endswith("_psnr_mean"))
    assert float(plain[f"{set_name}_dpsnr"]) == 0.0
    delta = float(mmca[f"{set_name}_psnr_mean"]) - float(plain[f"{set_name}_psnr_mean"])
    assert float(mmca[f"{set_name}_dpsnr"]) == pytest.approx(delta)
    assert int(mmca["params"]) > int(plain["params"]) > 0 and int(plain["flops_48x48"]) > 0
    md = (out / "report.md").read_text()
    assert "| attention=none, scale=2 |" in md and "failed" in md and (out / "report.png").stat().st_size > 0


def test_report_from_offline_wandb_runs(grid: Path, tmp_path: Path) -> None:
    jobs = collect(str(grid), kind="wandb")
    assert len(jobs) == 2 and all(j.status == "ok" for j in jobs)
    assert report_main([str(grid), "--source", "wandb", "--out", str(tmp_path), "--wandb", "off"]) == 0
    assert {r["variant"] for r in read_csv(tmp_path / "report.csv")} == {"attention=none", "attention=mmca"}


def test_report_logs_wandb_table_offline(grid: Path, tmp_path: Path) -> None:
    assert report_main([str(grid), "--out", str(tmp_path), "--wandb", "on", "--no-cost"]) == 0
    assert list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    # a second report into the same folder replaces nothing unless asked
    before = (tmp_path / "report.csv").read_bytes()
    (tmp_path / "report.csv").write_bytes(b"edited by hand")
    assert report_main([str(grid), "--out", str(tmp_path), "--wandb", "off", "--no-cost"]) == 2
    assert (tmp_path / "report.csv").read_bytes() == b"edited by hand"
    assert report_main([str(grid), "--out", str(tmp_path), "--wandb", "off", "--no-cost", "--overwrite"]) == 0
    assert (tmp_path / "report.csv").read_bytes() == before


def test_report_source_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.raises(SourceError, match="W&B API"):
        collect("some-entity/some-project/some-group")
    assert report_main([str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert report_main([str(tmp_path), "--out", str(tmp_path / "o")]) == 2  # empty folder: no jobs


def test_optuna_two_trials(tmp_path: Path) -> None:
    d = tmp_path / "optuna"
    # with data.repeat=1 the 12 sample photos give 12 patches: a batch_size=32 trial fails inside its job
    sweep("optuna_lr", d, "hydra.sweeper.n_trials=2", "logger=csv", "data.batch_size=choice(4, 32)")
    trials = sorted(p for p in d.iterdir() if p.is_dir())
    assert len(trials) == 2 and (d / "optimization_results.yaml").is_file()
    with sqlite3.connect(d / "optuna.db") as db:
        states = [s for (s,) in db.execute("select state from trials order by number")]
    n_failed = sum((p / "error.txt").is_file() for p in trials)
    assert len(states) == 2 and states.count("FAIL") == n_failed and states.count("COMPLETE") == 2 - n_failed
    assert report_main([str(d), "--out", str(tmp_path / "rep"), "--no-cost"]) == 0
    rows = read_csv(tmp_path / "rep" / "report.csv")
    assert (
        sum(int(r["n_seeds"]) for r in rows) == 2 - n_failed
        and sum(int(r["n_failed"]) for r in rows) == n_failed
    )


@pytest.mark.slow
def test_scales_chain_x3_x4_from_x2(tmp_path: Path) -> None:
    d = tmp_path / "scales"
    sweep("scales", d, "logger=csv", timeout=600)
    dirs = sorted(p.name for p in d.iterdir() if p.is_dir())
    assert [n[-2:] for n in dirs] == ["x2", "x3", "x4"]
    for n in dirs:
        assert (d / n / "metrics.json").is_file(), (d / n / "error.txt").read_text()[:2000]
    cfg3 = (d / dirs[1] / "config_resolved.yaml").read_text()
    assert f"init_from: {d / dirs[0]}/checkpoints/last.ckpt" in cfg3


def test_the_issue_smoke_line_yields_a_four_row_report(tmp_path: Path) -> None:
    # the README/issue's one-liner, verbatim but for DIR/OUT: a 2 x 2 grid of 4-step quickstart jobs, then the report
    d, out = tmp_path / "smoke", tmp_path / "smoke_report"
    bin_dir = Path(sys.executable).parent
    line = (
        "sr-train -m --config-dir conf_sweeps +sweep=ablation_modules attention=none,mmca hpf=none,dynamic "
        f"seed=0 experiment=quickstart trainer.max_steps=4 hydra.sweep.dir={d} && sr-report {d} --out {out}"
    )
    env = {**sweep_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", "-c", line], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = read_csv(out / "report.csv")
    assert len(rows) == 4 and all(r["n_seeds"] == "1" and r["n_failed"] == "0" for r in rows)
    variants = {r["variant"] for r in rows}
    assert variants == {f"attention={a}, hpf={h}" for a in ("none", "mmca") for h in ("none", "dynamic")}
    assert (out / "report.md").is_file() and (out / "report.png").stat().st_size > 0


def _fake_job(sweep_dir: Path, name: str, overrides: list[str]) -> Path:
    job = sweep_dir / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    return job


def _error_txt(e: Exception) -> str:
    """What sr-train writes to <run dir>/error.txt (cli/train.py), for an exception being handled."""
    import traceback

    return f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}"


def test_report_shows_the_root_cause_of_a_failed_job(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # a Hydra InstantiationException's first line names only the target; the reason is the chained ValueError
    from hydra.utils import instantiate

    d = tmp_path / "sweep"
    ok = _fake_job(d, "0_hpf.groups=8", ["hpf.groups=8", "seed=0"])
    (ok / "metrics.json").write_text(json.dumps({"val/Set5/psnr_y": 30.0, "val/Set5/ssim_y": 0.9}))
    bad = _fake_job(d, "1_hpf.groups=5", ["hpf.groups=5", "seed=0"])
    try:
        instantiate({"_target_": "sr_lit.models.blocks.hpf.DynamicHPF", "channels": 32, "groups": 5})
    except Exception as e:  # noqa: BLE001
        (bad / "error.txt").write_text(_error_txt(e))
    pipe = _fake_job(d, "2_hpf.groups=7", ["hpf.groups=7", "seed=0"])
    try:
        try:
            raise ValueError("bad value a|b\n" + "x" * 1000)
        except ValueError as cause:
            raise RuntimeError("wrapped") from cause
    except RuntimeError as e:
        (pipe / "error.txt").write_text(_error_txt(e))
    assert (bad / "error.txt").read_text().startswith("InstantiationException: Error in call to target")

    out = tmp_path / "report"
    assert report_main([str(d), "--out", str(out), "--wandb", "off", "--no-cost"]) == 0
    err = capsys.readouterr().err
    md = (out / "report.md").read_text()
    failed = [ln for ln in md.splitlines() if ln.startswith("- failed:")]
    assert len(failed) == 2
    assert "groups=5 must divide channels=32" in failed[0]
    assert "InstantiationException" in failed[0] and "DynamicHPF" in failed[0]  # the first line is kept too
    assert "groups=5 must divide channels=32" in err
    # one line, `|` escaped for markdown, length bounded
    assert "bad value a\\|b" in failed[1] and "wrapped" in failed[1] and len(failed[1]) < 500
