"""read_image conversions and faults on real files written by Pillow."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_lit.data.io import ImageError, list_images, read_image, to_float, to_rgb

RNG = np.random.default_rng(0)


def _rgb(h: int = 20, w: int = 30) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_png_roundtrip(tmp_path: Path) -> None:
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "x.png")
    x = read_image(tmp_path / "x.png")
    assert x.dtype == torch.uint8 and x.shape == (3, 20, 30)
    assert torch.equal(x, torch.from_numpy(a).permute(2, 0, 1))


def test_gray_is_one_channel(tmp_path: Path) -> None:
    a = RNG.integers(0, 256, (12, 9), dtype=np.uint8)
    Image.fromarray(a, mode="L").save(tmp_path / "g.png")
    x = read_image(tmp_path / "g.png")
    assert x.shape == (1, 12, 9) and torch.equal(x[0], torch.from_numpy(a))


def test_rgba_alpha_dropped_not_composited(tmp_path: Path) -> None:
    a = _rgb()
    alpha = np.zeros(a.shape[:2], np.uint8)  # fully transparent: compositing would change every pixel
    Image.fromarray(np.dstack([a, alpha]), mode="RGBA").save(tmp_path / "a.png")
    x = read_image(tmp_path / "a.png")
    assert torch.equal(x, torch.from_numpy(a).permute(2, 0, 1))


def test_la_gray_alpha_dropped(tmp_path: Path) -> None:
    g = RNG.integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(np.dstack([g, g // 2]), mode="LA").save(tmp_path / "la.png")
    x = read_image(tmp_path / "la.png")
    assert x.shape == (1, 8, 8) and torch.equal(x[0], torch.from_numpy(g))


def test_16bit_gray_rounds_v_over_257(tmp_path: Path) -> None:
    v = np.array([[0, 128, 129, 257, 385, 386], [65535, 65407, 65408, 1000, 32896, 32767]], np.uint16)
    Image.fromarray(v).save(tmp_path / "g16.png")  # Pillow writes a 16-bit gray PNG
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")
    x = read_image(tmp_path / "g16.png")
    expected = np.floor(v / 257.0 + 0.5).astype(np.uint8)
    assert x.shape == (1, 2, 6) and torch.equal(x[0], torch.from_numpy(expected))


def _write_png16(path: Path, a: np.ndarray, color_type: int) -> None:
    """Raw 16-bit PNG (Pillow cannot write 16-bit RGB or LA): a (H, W, C) uint16, filter 0 rows."""
    h, w = a.shape[:2]
    raw = b"".join(b"\x00" + a[i].astype(">u2").tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def test_16bit_rgb_within_one_level(tmp_path: Path) -> None:
    # Pillow itself reduces 16-bit RGB to the high byte; documented: at most 1 level from round(v/257).
    v = RNG.integers(0, 65536, (5, 7, 3)).astype(np.uint16)
    _write_png16(tmp_path / "rgb16.png", v, color_type=2)
    x = read_image(tmp_path / "rgb16.png")
    expected = torch.from_numpy(np.floor(v / 257.0 + 0.5).astype(np.int16)).permute(2, 0, 1)
    assert x.shape == (3, 5, 7) and (x.to(torch.int16) - expected).abs().max() <= 1


def test_16bit_gray_alpha_is_one_channel(tmp_path: Path) -> None:
    v = RNG.integers(0, 65536, (4, 6, 2)).astype(np.uint16)
    _write_png16(tmp_path / "la16.png", v, color_type=4)
    x = read_image(tmp_path / "la16.png")
    expected = torch.from_numpy(np.floor(v[..., 0] / 257.0 + 0.5).astype(np.int16))
    assert x.shape == (1, 4, 6) and (x[0].to(torch.int16) - expected).abs().max() <= 1


def test_palette_becomes_rgb(tmp_path: Path) -> None:
    a = _rgb(10, 10)
    img = Image.fromarray(a).quantize(colors=16)
    assert img.mode == "P"
    img.save(tmp_path / "p.png")
    x = read_image(tmp_path / "p.png")
    assert x.shape == (3, 10, 10)
    assert torch.equal(x, torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1))


def test_jpeg_and_bmp(tmp_path: Path) -> None:
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "x.jpg", quality=95)
    Image.fromarray(a).save(tmp_path / "x.bmp")
    assert read_image(tmp_path / "x.jpg").shape == (3, 20, 30)
    assert torch.equal(read_image(tmp_path / "x.bmp"), torch.from_numpy(a).permute(2, 0, 1))


def _truncated_png(path: Path) -> Path:
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: _truncated_png(p), "truncated"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("this is not an image\n"), "not a recognised image"),
        (lambda p: None, "file not found"),
        (lambda p: p.mkdir(), "directory"),
    ],
    ids=["truncated", "zero-byte", "text-as-png", "missing", "directory"],
)
def test_bad_files_raise_image_error(tmp_path: Path, make, reason: str) -> None:
    p = tmp_path / "bad.png"
    make(p)
    with pytest.raises(ImageError) as ei:
        read_image(p)
    assert isinstance(ei.value, ValueError)
    assert str(ei.value).startswith(f"{p}: ")
    assert reason in ei.value.reason
    assert ei.value.path == str(p)


def test_list_images_sorted_filtered(tmp_path: Path) -> None:
    for n in ["b.png", "a.JPG", "c.webp", "notes.txt", ".hidden.png"]:
        (tmp_path / n).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()  # a folder with an image-like name is not an image
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.webp"]


def test_list_images_missing_and_empty_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        list_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        list_images(tmp_path / "empty")


def test_to_float_and_to_rgb() -> None:
    u = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)
    f = to_float(u)
    assert f.dtype == torch.float32 and f.max() == 1.0 and abs(f[0, 1, 0].item() - 0.2) < 1e-7
    r = to_rgb(f)
    assert r.shape == (3, 2, 2) and torch.equal(r[0], r[2])
    assert to_rgb(torch.zeros(2, 3, 4, 4)).shape == (2, 3, 4, 4)
    with pytest.raises(ValueError):
        to_rgb(torch.zeros(2, 5, 5))
