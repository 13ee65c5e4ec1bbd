"""sr-export never writes over its input, whatever the format, and never writes a file it then fails to check.

Regression tests of issue 14's findings: 1 (`--out` = the input checkpoint replaced it and exited 0) and 8
(`--format safetensors --out w.bin` wrote, then crashed in the re-load check).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sr_lit.cli.export import main as export_main
from tests.export._variants import save_ckpt, variant_spec


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_ckpt(tmp_path_factory.mktemp("export") / "c.ckpt", variant_spec("edsr_tiny", "none", "none"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        export_main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("sr-export: error:"), err
    return err


@pytest.mark.parametrize("fmt", ["torchscript", "safetensors", "onnx", "pth"])
@pytest.mark.parametrize("how", ["same path", "symlink", "hard link"])
def test_out_is_never_the_input(ckpt: Path, tmp_path: Path, capsys, fmt: str, how: str) -> None:
    before = _digest(ckpt)
    if how == "same path":
        out = ckpt
    elif how == "symlink":
        out = tmp_path / "link.ckpt"
        out.symlink_to(ckpt)
    else:
        out = tmp_path / "hard.ckpt"
        os.link(ckpt, out)
    # safetensors also needs its suffix: the input check must come first, whatever else is wrong
    err = _one_error(capsys, [str(ckpt), "--out", str(out), "--format", fmt])
    assert "is the input" in err and str(ckpt) in err, err
    assert _digest(ckpt) == before  # untouched


def test_safetensors_needs_its_suffix_and_writes_nothing_else(ckpt: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "w.bin"
    err = _one_error(capsys, [str(ckpt), "--format", "safetensors", "--out", str(out)])
    assert "--out" in err and ".safetensors" in err, err
    assert not out.exists()
    good = tmp_path / "w.safetensors"
    assert export_main([str(ckpt), "--format", "safetensors", "--out", str(good)]) == 0
    from sr_lit.models.loading import load_model

    load_model(good)  # sr-upscale / sr-eval read it
