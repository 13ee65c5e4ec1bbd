"""sr-eval through its Hydra main: the bicubic baseline reproduces the published rows (DESIGN 1.5)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests._shared import require_shared_data, shared_data_dir
from tests.cli._eval import run_eval
from tests.inference._models import tiny_model

# RCAN Table 3, bicubic (PSNR-Y dB, SSIM-Y)
PUBLISHED = {
    2: {"Set5": (33.66, 0.9299), "Set14": (30.24, 0.8688)},
    3: {"Set5": (30.39, 0.8682), "Set14": (27.55, 0.7742)},
    4: {"Set5": (28.42, 0.8104), "Set14": (26.00, 0.7027)},
}


@pytest.mark.data
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_reproduces_published_rows(monkeypatch, tmp_path: Path, scale: int) -> None:
    require_shared_data("Set5")
    require_shared_data("Set14")
    r = run_eval(
        monkeypatch,
        tmp_path,
        "baseline=bicubic",
        f"scale={scale}",
        f"paths.data_dir={shared_data_dir()}",
        "data=benchmark",
        "data.sets=[Set5,Set14]",
    )
    assert r["scale"] == scale and r["model"] == "bicubic" and r["self_ensemble"] is False
    for name, (psnr, ssim) in PUBLISHED[scale].items():
        got = r["sets"][name]
        print(f"x{scale} {name}: {got['psnr_y']:.3f}/{got['ssim_y']:.4f} (published {psnr}/{ssim})")
        assert got["n_images"] == {"Set5": 5, "Set14": 14}[name]
        assert abs(got["psnr_y"] - psnr) <= 0.02
        assert abs(got["ssim_y"] - ssim) <= 0.002


def _hr_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(60, 50), (33, 21)]):
        base = rng.integers(0, 256, (h // 3 + 1, w // 3 + 1, 3), dtype=np.uint8)
        Image.fromarray(base).resize((w, h), Image.BICUBIC).save(root / f"img{i}.png")
    return root


def test_checkpoint_on_hr_folder(monkeypatch, tmp_path: Path) -> None:
    model, spec = tiny_model(2)
    ckpt = tmp_path / "tiny.ckpt"
    torch.save(
        {
            "state_dict": {f"net.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {"model_spec": spec},
        },
        ckpt,
    )
    hr = _hr_folder(tmp_path / "hr_set")
    # tile 22: the model's minimum (its receptive margin): 2 x 2 tiles for the 30 x 25 LR, one for the 16 x 10
    r = run_eval(monkeypatch, tmp_path, f"ckpt_path={ckpt}", f"hr_dir={hr}", "tile=22")
    assert r["scale"] == 2 and r["model_spec"] == spec
    assert r["sets"]["hr_set"]["n_images"] == 2 and np.isfinite(r["sets"]["hr_set"]["psnr_y"])
    # the README's form: the data group's test_sets (benchmark names) must not be taken as sub-folders of root
    r2 = run_eval(monkeypatch, tmp_path, f"ckpt_path={ckpt}", "data=folder", f"data.root={hr}", "tile=22")
    assert r2["sets"] == r["sets"]


def _expect_error(monkeypatch, tmp_path: Path, capsys, needle: str, *overrides: str) -> None:
    from sr_lit.cli.eval import main

    monkeypatch.setattr(sys, "argv", ["sr-eval", *overrides, f"hydra.run.dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "sr-eval: error:" in err and needle in err, err


def test_bad_inputs_fail_before_any_work(monkeypatch, tmp_path: Path, capsys) -> None:
    data = str(tmp_path)  # exists but holds no sets
    _expect_error(monkeypatch, tmp_path, capsys, "nope_ckpt", f"ckpt_path={tmp_path / 'nope_ckpt.ckpt'}")
    _expect_error(monkeypatch, tmp_path, capsys, "scale", "baseline=bicubic")
    _expect_error(monkeypatch, tmp_path, capsys, "ckpt_path", "scale=2")
    _expect_error(
        monkeypatch,
        tmp_path,
        capsys,
        "NoSuchSet",
        "baseline=bicubic",
        "scale=2",
        f"paths.data_dir={data}",
        "data.sets=[NoSuchSet]",
    )
    model, spec = tiny_model(2)
    ckpt = tmp_path / "x2.ckpt"
    torch.save(
        {
            "state_dict": {f"net.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {"model_spec": spec},
        },
        ckpt,
    )
    _expect_error(monkeypatch, tmp_path, capsys, "scale=4", f"ckpt_path={ckpt}", "scale=4")
    _expect_error(monkeypatch, tmp_path, capsys, "precision", f"ckpt_path={ckpt}", "precision=fp16")


def test_missing_data_dir_through_console_script(tmp_path: Path) -> None:
    exe = shutil.which("sr-eval", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "sr_lit.cli.eval"]
    missing = tmp_path / "no_data_here"
    r = subprocess.run(
        [
            *cmd,
            "baseline=bicubic",
            "scale=2",
            f"paths.data_dir={missing}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    assert str(missing) in r.stderr and "data directory not found" in r.stderr
    assert "Traceback" not in r.stderr
