"""sr-upscale: folders in, same-named x-scale PNGs out; tiling exactness; one-line errors (exit 2)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_lit.cli.upscale import main
from tests.inference._models import lightning_ckpt, tiny_model


def _png(path: Path, h: int, w: int, gray: bool = False, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w) if gray else (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).astype(np.int16)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Lightning-style checkpoint of a random-weight edsr_tiny x2 (as SRModule writes it)."""
    return lightning_ckpt(tmp_path_factory.mktemp("ckpt") / "tiny_x2.ckpt", *tiny_model(2))


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    _png(d / "a.png", 21, 34)
    _png(d / "b.jpg", 16, 17, seed=1)  # any extension in, PNG out
    _png(d / "g.png", 13, 10, gray=True, seed=2)
    (d / "readme.txt").write_text("not an image: ignored inside folders")
    return d


def test_folder_in_pngs_out_bicubic_equals_bicubic_upscale(images: Path, tmp_path: Path) -> None:
    from sr_lit.data.imresize import bicubic_upscale
    from sr_lit.data.io import read_image

    out = tmp_path / "out"
    assert main([str(images), "--out", str(out), "--baseline", "bicubic", "--scale", "2", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "g.png"]
    for name in ("a", "b"):
        src = next(images.glob(f"{name}.*"))
        lr = read_image(src)
        sr = read_image(out / f"{name}.png")
        assert sr.shape == (3, lr.shape[1] * 2, lr.shape[2] * 2)
        assert torch.equal(sr, bicubic_upscale(lr, 2))
    gray = read_image(out / "g.png")
    assert gray.shape == (1, 26, 20)  # grayscale in -> grayscale out
    assert torch.equal(gray, bicubic_upscale(read_image(images / "g.png"), 2))


def test_checkpoint_tiled_equals_untiled(images: Path, tmp_path: Path, tiny_ckpt: Path) -> None:
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    args = [str(images / "a.png"), str(images / "g.png"), "--ckpt", str(tiny_ckpt), "-q", "--tile", "0"]
    assert main([*args, "--out", str(whole)]) == 0
    # the smallest tile sr-upscale accepts for this model (its receptive margin, 22): 34 px wide makes two tiles;
    # overlap = receptive margin by default
    args[-1] = "22"
    assert main([*args, "--out", str(tiled)]) == 0
    for name in ("a.png", "g.png"):
        a, b = _read(whole / name), _read(tiled / name)
        assert a.shape[:2] == ((42, 68) if name == "a.png" else (26, 20))
        diff = int(np.abs(a - b).max())
        print(f"{name}: tiled vs whole max diff {diff} gray levels")
        assert diff <= 1


def test_self_ensemble_and_safetensors(images: Path, tmp_path: Path) -> None:
    from sr_lit.models.loading import save_safetensors

    model, spec = tiny_model(2)
    st = save_safetensors(model, spec, tmp_path / "m.safetensors")
    out = tmp_path / "out"
    assert main([str(images / "b.jpg"), "--out", str(out), "--ckpt", str(st), "--self-ensemble", "-q"]) == 0
    assert _read(out / "b.png").shape == (32, 34, 3)


def test_precision_bf16(images: Path, tmp_path: Path, tiny_ckpt: Path) -> None:
    fp32, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    args = [str(images / "a.png"), "--ckpt", str(tiny_ckpt), "-q"]
    assert main([*args, "--out", str(fp32)]) == 0
    assert main([*args, "--out", str(bf16), "--precision", "bf16"]) == 0
    diff = np.abs(_read(fp32 / "a.png") - _read(bf16 / "a.png"))
    assert diff.max() <= 4 and diff.mean() < 0.5  # bf16 autocast: within a few grey levels of fp32


def _cli(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("sr-upscale", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "sr_lit.cli.upscale"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)


def test_errors_exit_2_with_one_line_naming_the_problem(
    images: Path, tmp_path: Path, tiny_ckpt: Path, capsys: pytest.CaptureFixture
) -> None:
    out = str(tmp_path / "out")
    cases = [
        (
            [str(tmp_path / "missing.png"), "--out", out, "--baseline", "bicubic", "--scale", "2"],
            "missing.png",
        ),
        ([str(images / "readme.txt"), "--out", out, "--baseline", "bicubic", "--scale", "2"], "readme.txt"),
        ([str(images), "--out", out, "--baseline", "bicubic"], "--scale"),
        ([str(images), "--out", out, "--ckpt", str(tmp_path / "nope.ckpt")], "nope.ckpt"),
        ([str(images), "--out", out, "--ckpt", str(images / "a.png")], "a.png"),
        ([str(images), "--out", out, "--ckpt", str(tiny_ckpt), "--scale", "4"], "--scale 4"),
        ([str(images), "--out", str(images), "--baseline", "bicubic", "--scale", "2"], "overwrite"),
        ([str(tmp_path / "empty_dir"), "--out", out, "--baseline", "bicubic", "--scale", "2"], "empty_dir"),
        (
            [str(images), "--out", out, "--baseline", "bicubic", "--scale", "2", "--precision", "bf16"],
            "bicubic",
        ),
    ]
    (tmp_path / "empty_dir").mkdir()
    for argv, needle in cases:
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2, argv
        assert err.startswith("sr-upscale: error:") and needle in err and len(err.splitlines()) == 1, err
    # through the installed console script: one line on stderr, no traceback
    argv, needle = cases[3]  # one subprocess: a fresh interpreter costs seconds
    r = _cli(*argv)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not Path(out).exists()  # nothing written before the inputs were checked


def test_alpha_dropped_with_one_warning_per_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(3)
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(rng.integers(0, 256, (9, 11, 4), dtype=np.uint8), "RGBA").save(d / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (9, 11, 2), dtype=np.uint8), "LA").save(d / "la.png")
    _png(d / "rgb.png", 9, 11)
    out = tmp_path / "out"
    assert main([str(d), "--out", str(out), "--baseline", "bicubic", "--scale", "2", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning") == 2, err
    assert f"{d / 'rgba.png'}: alpha channel dropped; output is RGB" in err
    assert f"{d / 'la.png'}: alpha channel dropped; output is grayscale" in err
    with Image.open(out / "rgba.png") as a, Image.open(out / "la.png") as b:
        assert (a.mode, b.mode) == ("RGB", "L")  # behaviour kept: SR of alpha is out of scope


def test_torchscript_ckpt_is_named(images: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import warnings

    from sr_lit.export.torchscript import export_torchscript

    model, spec = tiny_model(2)
    ts = export_torchscript(model, spec, tmp_path / "m.pt").path
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SystemExit) as e:
            main([str(images / "a.png"), "--out", str(tmp_path / "out"), "--ckpt", str(ts)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1, err
    assert (
        f"{ts} is a TorchScript export: sr-upscale reads .ckpt or .safetensors (or --onnx FILE for ONNX)"
        in err
    )
    assert not [str(w.message) for w in caught if "TorchScript" in str(w.message)]
