"""sr-upscale replaces no existing output unless told, checks every input in full before writing the first output,
refuses a tile or an image the model cannot take, and reads photos the way they display.

Regression tests of issue 14's findings: 3 (an existing output was replaced silently), 8 (a 1x1 image crashed in
the HPF's reflect padding), 9 (`--tile 1` was accepted: 82,944 tiles), 10 (EXIF orientation ignored) and 12
(dangling or looping symlinks in an input folder were skipped without a word).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_lit.cli.upscale import main
from tests.inference._models import lightning_ckpt, tiny_model
from tests.reliability.checks import truncate, write_png

BICUBIC = ["--baseline", "bicubic", "--scale", "2", "-q"]


@pytest.fixture(scope="module")
def hpf_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """edsr_tiny + dynamic HPF x2 (receptive margin 22, smallest input 2x2), random weights."""
    return lightning_ckpt(tmp_path_factory.mktemp("ckpt") / "hpf_x2.ckpt", *tiny_model(2))


def _error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("sr-upscale: error:"), err
    return err


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_existing_outputs_are_kept_unless_overwrite(tmp_path: Path, capsys) -> None:
    src = write_png(tmp_path / "in" / "x.png", 12, 10)
    out = tmp_path / "out"
    mine = out / "x.png"
    mine.parent.mkdir()
    mine.write_bytes(b"the user's own file")
    err = _error(capsys, [str(src), "--out", str(out), *BICUBIC])
    assert str(mine) in err and "--overwrite" in err, err
    assert mine.read_bytes() == b"the user's own file"
    assert main([str(src), "--out", str(out), *BICUBIC, "--overwrite"]) == 0
    with Image.open(mine) as im:
        assert im.size == (20, 24)
    assert sorted(p.name for p in out.iterdir()) == ["x.png"]  # no temp file left beside it


def test_every_input_is_decoded_before_the_first_output(tmp_path: Path, capsys) -> None:
    d = tmp_path / "in"
    write_png(d / "a.png", 12, 10)  # sorted first: would have been written before the bad file was reached
    truncate(write_png(d / "b.png", 12, 10, seed=1))  # header intact, data cut
    out = tmp_path / "out"
    err = _error(capsys, [str(d), "--out", str(out), *BICUBIC])
    assert f"{d / 'b.png'}: corrupt or truncated image" in err, err
    assert not out.exists() or not list(out.iterdir())


def test_image_smaller_than_the_model_input_is_named(tmp_path: Path, hpf_ckpt: Path, capsys) -> None:
    d = tmp_path / "in"
    write_png(d / "a.png", 12, 10)
    write_png(d / "dot.png", 1, 1, seed=1)
    out = tmp_path / "out"
    err = _error(capsys, [str(d), "--out", str(out), "--ckpt", str(hpf_ckpt), "-q"])
    assert f"{d / 'dot.png'}: image 1x1 is smaller than this model's minimum input of 2x2" in err, err
    assert not out.exists() or not list(out.iterdir())


def test_tile_below_the_receptive_margin_is_refused(tmp_path: Path, hpf_ckpt: Path, capsys) -> None:
    src = write_png(tmp_path / "in" / "a.png", 12, 10)
    model, _ = tiny_model(2)
    margin = model.receptive_margin
    err = _error(capsys, [str(src), "--out", str(tmp_path / "out"), "--ckpt", str(hpf_ckpt), "--tile", "1"])
    assert f"--tile 1: below this model's minimum of {margin} LR px" in err, err
    err = _error(capsys, [str(src), "--out", str(tmp_path / "out"), *BICUBIC, "--tile", "3"])
    assert "--tile 3: below this model's minimum of 4 LR px" in err, err  # MATLAB bicubic's 4-px margin
    assert (
        main([str(src), "--out", str(tmp_path / "ok"), "--ckpt", str(hpf_ckpt), "-q", "--tile", str(margin)])
        == 0
    )


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A phone photo: stored landscape (16 wide, 8 high) with 'rotate 90 clockwise to display' (orientation 6)."""
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    src = tmp_path / "in" / "phone.jpg"
    src.parent.mkdir()
    Image.fromarray(stored).save(src, quality=100, exif=exif.tobytes())
    out = tmp_path / "out"
    assert main([str(src), "--out", str(out), *BICUBIC]) == 0
    with Image.open(out / "phone.png") as im:
        assert im.size == (16, 32)  # portrait, as it displays: 8 wide x 16 high, x2
    # and exactly the displayed pixels: read_image equals Pillow's exif_transpose of the file
    from PIL import ImageOps

    from sr_lit.data.io import read_image

    with Image.open(src) as im:
        upright = np.asarray(ImageOps.exif_transpose(im))
    assert np.array_equal(read_image(src).permute(1, 2, 0).numpy(), upright)


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_unreadable_symlinks_in_a_folder_are_reported(tmp_path: Path, capsys, kind: str) -> None:
    d = tmp_path / "in"
    write_png(d / "a.png", 12, 10)
    if kind == "dangling":
        (d / "gone.png").symlink_to(tmp_path / "deleted.png")
        reason = f"broken symbolic link (points to {tmp_path / 'deleted.png'}"
    else:
        os.symlink("loop2.png", d / "loop1.png")
        os.symlink("loop1.png", d / "loop2.png")
        reason = "symbolic link loop"
    err = _error(capsys, [str(d), "--out", str(tmp_path / "out"), *BICUBIC])
    assert reason in err, err
