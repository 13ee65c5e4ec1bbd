"""sr-eval checks what it can before the first image, honours data.skip_bad, and never loses a finished
evaluation to a json_out it cannot write.

Regression tests of issue 14's findings: 6 (`json_out=<unwritable>` raised after the whole evaluation: table not
printed, results lost), 7 (`data.skip_bad=true` ignored), 8 (a 5x5 image in `hr_dir=` failed after the other
images, without naming the file), 9 (`tile=` below the receptive margin accepted), 10 (EXIF orientation ignored)
and 11 (a `scale` mistake reported as "data directory not found" on a machine without the data).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.inference._models import tiny_model
from tests.reliability.checks import truncate, write_png


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, spec = tiny_model(2)  # edsr_tiny + dynamic HPF x2: receptive margin 22
    path = tmp_path_factory.mktemp("ckpt") / "x2.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in model.state_dict().items()},
                "hyper_parameters": {"model_spec": spec}}, path)  # fmt: skip
    return path


@pytest.fixture
def hr(tmp_path: Path) -> Path:
    d = tmp_path / "hr"
    write_png(d / "a.png", 40, 36)
    write_png(d / "b.png", 32, 30, seed=1)
    return d


def run(monkeypatch, capsys, tmp_path: Path, *overrides: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the real Hydra main, as the console script runs it."""
    from sr_lit.cli.eval import main

    argv = ["sr-eval", *overrides, f"hydra.run.dir={tmp_path / 'run'}", "progress=false"]
    monkeypatch.setattr(sys, "argv", argv)
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("sr-eval: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_json_out_checked_before_the_evaluation(
    monkeypatch, capsys, tmp_path: Path, ckpt: Path, hr: Path
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    code, out, err = run(
        monkeypatch, capsys, tmp_path, f"ckpt_path={ckpt}", f"hr_dir={hr}", f"json_out={a_file}/r.json"
    )
    assert code == 2 and f"json_out={a_file}/r.json: {a_file} is not a folder" in _one_error(err)
    assert not (tmp_path / "run" / "results.json").exists()  # refused before any image was scored


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc: a folder that accepts no new file")
def test_json_out_failing_late_keeps_table_and_results(
    monkeypatch, capsys, tmp_path: Path, ckpt: Path, hr: Path
) -> None:
    """/proc passes the permission check (even for root) but takes no new file: the write fails at the end."""
    target = "/proc/sr_lit_results.json"
    code, out, err = run(
        monkeypatch, capsys, tmp_path, f"ckpt_path={ckpt}", f"hr_dir={hr}", f"json_out={target}"
    )
    line = _one_error(err)
    kept = tmp_path / "run" / "results.json"
    assert code == 2 and f"json_out={target}: cannot write" in line and f"the results are in {kept}" in line
    assert "hr" in out and "PSNR-Y" in out  # the table was printed
    assert json.loads(kept.read_text())["sets"]["hr"]["n_images"] == 2


def test_skip_bad_and_too_small_images(monkeypatch, capsys, tmp_path: Path, ckpt: Path, hr: Path) -> None:
    truncate(write_png(hr / "cut.png", 40, 36, seed=2))
    write_png(hr / "tiny.png", 5, 5, seed=3)
    code, out, err = run(monkeypatch, capsys, tmp_path, f"ckpt_path={ckpt}", f"hr_dir={hr}")
    assert code == 2 and "2 bad image file(s) out of 4" in _one_error(err)
    assert f"{hr / 'cut.png'}: corrupt or truncated image" in err
    assert f"{hr / 'tiny.png'}: image too small to evaluate at x2: LR 2x2" in err
    assert not (tmp_path / "run" / "results.json").exists()  # named at set-up, before the first image
    code, out, err = run(
        monkeypatch, capsys, tmp_path, f"ckpt_path={ckpt}", f"hr_dir={hr}", "data.skip_bad=true"
    )
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "results.json").read_text())["sets"]["hr"]["n_images"] == 2


def test_tile_below_the_receptive_margin(monkeypatch, capsys, tmp_path: Path, ckpt: Path, hr: Path) -> None:
    code, _, err = run(monkeypatch, capsys, tmp_path, f"ckpt_path={ckpt}", f"hr_dir={hr}", "tile=1")
    assert code == 2 and "tile=1: below this model's minimum of 22 LR px" in _one_error(err)


def test_option_mistakes_come_before_missing_data(monkeypatch, capsys, tmp_path: Path) -> None:
    """A fresh clone has no data folder: a forgotten scale must still be reported as such."""
    missing = f"paths.data_dir={tmp_path / 'no_data_here'}"
    code, _, err = run(monkeypatch, capsys, tmp_path, "baseline=bicubic", missing)
    assert code == 2 and "baseline=bicubic needs scale=2|3|4" in _one_error(err)
    code, _, err = run(monkeypatch, capsys, tmp_path, "baseline=bicubic", "scale=5", missing)
    assert code == 2 and "scale=5: must be 2, 3 or 4" in _one_error(err)
    code, _, err = run(monkeypatch, capsys, tmp_path, "baseline=bicubic", "scale=2", missing)
    assert code == 2 and "data directory not found" in _one_error(err)  # then the data


def test_evaluation_images_are_read_upright(tmp_path: Path) -> None:
    from sr_lit.data.datasets import build_eval_datasets

    exif = Image.Exif()
    exif[0x0112] = 6  # stored 48 wide x 32 high; displays 32 wide x 48 high
    d = tmp_path / "photos"
    d.mkdir()
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(d / "p.jpg", exif=exif.tobytes())
    ds = build_eval_datasets(None, 2, None, kind="folder", root=d)["photos"]
    assert tuple(ds[0]["hr"].shape[-2:]) == (48, 32)


def test_run_dir_that_is_a_file(monkeypatch, capsys, tmp_path: Path) -> None:
    from sr_lit.cli.eval import main

    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    monkeypatch.setattr(sys, "argv", ["sr-eval", "baseline=bicubic", "scale=2", f"hydra.run.dir={a_file}"])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"hydra.run.dir={a_file}: is a file, not a folder" in _one_error(err)
    assert a_file.read_text() == "mine"
