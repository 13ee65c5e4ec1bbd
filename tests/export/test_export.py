"""sr-export: ONNX / TorchScript / safetensors exports equal PyTorch (fp32, 1e-4) at sizes other than the traced
one, carry their metadata, and run through sr-upscale --onnx / --ckpt model.safetensors and sr-eval.

The default suite covers a representative subset (the hardest units: MMCA/FCA adaptive pooling + HPF reflect
padding, every scale, both backbone families); test_export_grid.py (slow) covers every combination.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_lit.cli.export import main as export_main
from sr_lit.cli.upscale import main as upscale_main
from sr_lit.export.common import ExportError
from sr_lit.export.onnx import export_onnx
from sr_lit.export.runtime import OnnxSR
from sr_lit.export.torchscript import export_torchscript, load_torchscript
from tests._shared import read_png, require_shared_data
from tests.export._variants import png, read8, save_ckpt, variant_model, variant_spec

ATOL = 1e-4


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


@pytest.fixture(scope="module")
def mmca_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """edsr_tiny + MMCA + dynamic HPF x2: the default (quickstart) model."""
    return save_ckpt(
        tmp_path_factory.mktemp("ckpt") / "mmca.ckpt", variant_spec("edsr_tiny", "mmca", "dynamic")
    )


@pytest.fixture(scope="module")
def mmca_onnx(mmca_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "mmca.onnx"
    assert export_main([str(mmca_ckpt), "--format", "onnx", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(
    ("backbone", "attention", "hpf", "scale"),
    [("edsr_tiny", "mmca", "dynamic", 2), ("rcan", "fca", "dynamic", 3), ("edsr_baseline", "ca", "none", 4)],
)
def test_onnx_dynamic_equals_pytorch(
    tmp_path: Path, backbone: str, attention: str, hpf: str, scale: int
) -> None:
    spec = variant_spec(backbone, attention, hpf, scale)
    model = variant_model(spec)
    result = export_onnx(model, spec, tmp_path / "m.onnx")
    assert result.fixed_hw is None and result.max_diff <= ATOL and len(result.diffs) == 3
    net = OnnxSR(result.path)
    assert net.fixed_hw is None and net.scale == scale and net.spec == spec
    assert json.loads(net.meta["max_abs_diff"]) and net.meta["input_size"] == "dynamic"
    assert net.receptive_margin == model.receptive_margin
    # sizes the exporter did not probe, batch 1 and 3, one side below the 7x7 pooling grid
    for shape in [(1, 3, 29, 6), (3, 3, 21, 52)]:
        x = torch.rand(*shape)
        with torch.inference_mode():
            assert _max_diff(net(x), model(x)) <= ATOL


def test_torchscript_dynamic_equals_pytorch(tmp_path: Path) -> None:
    spec = variant_spec("rcan", "mmca", "dynamic", 2)
    model = variant_model(spec)
    result = export_torchscript(model, spec, tmp_path / "m.pt")
    assert result.fixed_hw is None and result.max_diff <= ATOL
    ts, meta = load_torchscript(result.path)
    assert json.loads(meta["model_spec"]) == spec and meta["input_size"] == "dynamic"
    x = torch.rand(2, 3, 23, 9)
    with torch.inference_mode():
        assert _max_diff(ts(x), model(x)) <= ATOL


def test_onnx_on_a_set5_image(mmca_ckpt: Path, mmca_onnx: Path) -> None:
    lr = read_png(require_shared_data("Set5", "LR_bicubic", "X2", "butterflyx2.png")).float().div(255)[None]
    from sr_lit.models.loading import load_model

    model, _ = load_model(mmca_ckpt)
    with torch.inference_mode():
        ref = model(lr)
    diff = _max_diff(OnnxSR(mmca_onnx)(lr), ref)
    print(f"Set5 butterfly x2 (LR {tuple(lr.shape[-2:])}): max |onnx - pytorch| = {diff:.2e}")
    assert diff <= ATOL


def test_upscale_with_onnx_matches_checkpoint(mmca_ckpt: Path, mmca_onnx: Path, tmp_path: Path) -> None:
    """Same tiling on both paths (whole image, then 24 px tiles, above the model's receptive margin): 8-bit
    outputs within one level."""
    src = png(tmp_path / "in" / "a.png", 37, 50)
    for tile in ("0", "24"):
        common = [str(src), "--tile", tile, "--quiet"]
        assert upscale_main([*common, "--out", str(tmp_path / f"ckpt{tile}"), "--ckpt", str(mmca_ckpt)]) == 0
        assert upscale_main([*common, "--out", str(tmp_path / f"onnx{tile}"), "--onnx", str(mmca_onnx)]) == 0
        a, b = read8(tmp_path / f"ckpt{tile}" / "a.png"), read8(tmp_path / f"onnx{tile}" / "a.png")
        assert a.shape == b.shape == (74, 100, 3)
        assert np.abs(a - b).max() <= 1


def test_fixed_tile_export_pads_small_inputs_and_tiles_large_ones(tmp_path: Path) -> None:
    """A local model (no global attention) exported at a fixed 64x64 LR input: exact away from the bottom/right
    image border (where a tile is padded by reflection instead of the convs' zero padding)."""
    spec = variant_spec("edsr_tiny", "none", "dynamic", 2)
    ckpt = save_ckpt(tmp_path / "local.ckpt", spec)
    onnx_path = tmp_path / "fixed.onnx"
    assert export_main([str(ckpt), "--out", str(onnx_path), "--tile", "64", "64"]) == 0
    net = OnnxSR(onnx_path)
    assert net.fixed_hw == (64, 64) and net.meta["input_size"] == "64x64"
    model = variant_model(spec)
    margin = model.receptive_margin  # 22 LR px
    assert 2 * margin < 64
    small = torch.rand(1, 3, 50, 47)  # smaller than the tile: padded, run once, cropped
    with torch.inference_mode():
        out, ref = net(small), model(small)
    assert out.shape == ref.shape
    s = 2
    assert (
        _max_diff(
            out[..., : (50 - margin) * s, : (47 - margin) * s],
            ref[..., : (50 - margin) * s, : (47 - margin) * s],
        )
        <= ATOL
    )
    with pytest.raises(ValueError, match="tile it"):
        net(torch.rand(1, 3, 65, 10))
    # larger than the tile: sr-upscale tiles with tile + 2 * overlap = 64
    src = png(tmp_path / "in" / "big.png", 90, 71)
    args = [str(src), "--quiet", "--overlap", str(margin)]
    assert upscale_main([*args, "--out", str(tmp_path / "onnx"), "--onnx", str(onnx_path)]) == 0
    assert upscale_main([*args, "--out", str(tmp_path / "ckpt"), "--ckpt", str(ckpt), "--tile", "0"]) == 0
    a, b = read8(tmp_path / "onnx" / "big.png"), read8(tmp_path / "ckpt" / "big.png")
    assert a.shape == b.shape == (180, 142, 3)
    inner = np.abs(a - b)[: (90 - margin) * s, : (71 - margin) * s]
    assert inner.max() <= 1


def test_dynamic_failure_asks_for_a_fixed_tile(mmca_ckpt: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """Without the traceable pooling, FCA/MMCA cannot export with dynamic H/W (the exporter refuses adaptive
    pooling of unknown size) and native fixed sizes must be multiples of 7: both are one clear error."""
    import sr_lit.export.onnx as onnx_mod

    monkeypatch.setattr(onnx_mod, "traceable_adaptive_pooling", contextlib.nullcontext)
    out = tmp_path / "m.onnx"
    for extra, needle in [([], "--tile H W"), (["--tile", "24", "24"], "exporter failed")]:
        with pytest.raises(SystemExit) as e:
            export_main([str(mmca_ckpt), "--out", str(out), *extra])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and err.count("\n") == 0 and err.startswith("sr-export: error:"), err
        assert needle in err and str(mmca_ckpt) in err, err
    assert not out.exists()
    assert export_main([str(mmca_ckpt), "--out", str(out), "--tile", "28", "28"]) == 0
    assert OnnxSR(out).fixed_hw == (28, 28)


def test_safetensors_for_upscale_and_eval(mmca_ckpt: Path, tmp_path: Path, monkeypatch) -> None:
    weights = tmp_path / "share" / "model.safetensors"
    assert export_main([str(mmca_ckpt), "--format", "safetensors", "--out", str(weights)]) == 0
    src = png(tmp_path / "in" / "a.png", 20, 26)
    for name, model_file in [("ckpt", mmca_ckpt), ("st", weights)]:
        assert (
            upscale_main([str(src), "--quiet", "--out", str(tmp_path / name), "--ckpt", str(model_file)]) == 0
        )
    assert np.array_equal(read8(tmp_path / "ckpt" / "a.png"), read8(tmp_path / "st" / "a.png"))
    # sr-eval on an HR folder, from the shared weights alone
    from sr_lit.cli.eval import main as eval_main

    hr = tmp_path / "hr"
    for i in range(2):
        png(hr / f"img{i}.png", 24 + 6 * i, 30, seed=i)
    out = tmp_path / "eval.json"
    argv = [
        "sr-eval",
        f"ckpt_path={weights}",
        f"hr_dir={hr}",
        f"json_out={out}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    monkeypatch.setattr(sys, "argv", [*argv, "progress=false"])
    eval_main()
    r = json.loads(out.read_text())
    assert r["sets"]["hr"]["n_images"] == 2 and np.isfinite(r["sets"]["hr"]["psnr_y"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["missing.ckpt", "--out", "m.onnx"], "missing.ckpt: file not found"),
        (["{ckpt}", "--out", "m.bin"], "cannot tell the format"),
        (
            ["{ckpt}", "--out", "m.safetensors", "--tile", "32", "32"],
            "--tile applies to onnx and torchscript",
        ),
        (["{ckpt}", "--out", "m.pt", "--opset", "17"], "--opset applies to onnx"),
        (["{ckpt}", "--out", "m.onnx", "--tile", "4", "32"], "must be >= 8"),
        (["{ckpt}", "--out", "m.onnx", "--opset", "3"], "exporter failed"),
    ],
)
def test_cli_errors_are_one_line(mmca_ckpt: Path, tmp_path: Path, monkeypatch, capsys, args, needle) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        export_main([a.format(ckpt=mmca_ckpt) for a in args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.count("\n") == 0 and needle in err, err


def test_upscale_onnx_errors(tmp_path: Path, capsys) -> None:
    src = png(tmp_path / "a.png", 16, 16)
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not onnx")
    for model_file, needle in [
        (tmp_path / "none.onnx", "file not found"),
        (bogus, "not a readable ONNX model"),
    ]:
        with pytest.raises(SystemExit) as e:
            upscale_main([str(src), "--out", str(tmp_path / "o"), "--onnx", str(model_file)])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and err.count("\n") == 0 and needle in err and "--onnx" in err, err


def test_export_refuses_a_mismatch(tmp_path: Path) -> None:
    """atol=0 on ONNX (float reassociation gives ~1e-7): the check refuses instead of writing."""
    spec = variant_spec("edsr_tiny", "ca", "none", 2)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_onnx(variant_model(spec), spec, tmp_path / "m.onnx", atol=0.0)
    assert not (tmp_path / "m.onnx").exists()


def test_every_export_gets_the_umask_mode(tmp_path: Path, capsys) -> None:
    """Like open(): 0666 minus the umask for a new file (safetensors' own writer left 0600), an existing file's
    mode kept on re-export."""
    import os
    import stat

    ckpt = save_ckpt(tmp_path / "plain.ckpt", variant_spec("edsr_tiny", "none", "none"))
    old = os.umask(0o027)
    try:
        for name in ("m.onnx", "m.pt", "m.safetensors"):
            assert export_main([str(ckpt), "--out", str(tmp_path / name)]) == 0
        modes = {n: stat.S_IMODE((tmp_path / n).stat().st_mode) for n in ("m.onnx", "m.pt", "m.safetensors")}
        assert modes == dict.fromkeys(modes, 0o640), {k: oct(v) for k, v in modes.items()}
        os.chmod(tmp_path / "m.safetensors", 0o604)
        assert export_main([str(ckpt), "--out", str(tmp_path / "m.safetensors")]) == 0
        assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o604
    finally:
        os.umask(old)
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left next to the export
