"""Image file I/O: decode to uint8 tensors, with faults reported as ``ImageError(path, reason)``.

Mode conversions (Pillow modes): L / I;16 / I / 1 -> 1 channel; RGB -> 3; RGBA / LA -> alpha DROPPED
(not composited on any background: SR data is about the colour planes, and compositing would invent
pixels); P (palette) -> RGB; CMYK / YCbCr / LAB -> RGB. 16-bit gray -> 8-bit by round(v / 257).

EXIF orientation is applied (a phone photo stored landscape with "rotate 90" is read as it displays, portrait),
as image viewers do; the LR partner of an official benchmark pair has no such tag.

Known limit: Pillow decodes 16-bit RGB/RGBA PNGs to 8 bits itself, keeping the high byte
(floor(v / 256)); that is at most 1 grey level from round(v / 257). 16-bit gray+alpha PNGs (which
Pillow opens as RGBA) are detected from the PNG header and returned as 1 channel.
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

from sr_lit.errors import ImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageError",
    "inaccessible_reason",
    "read_image",
    "decode_image_bytes",
    "read_image_into",
    "probe_image",
    "list_images",
    "to_float",
    "to_rgb",
]


def _png_16bit_gray_alpha(img: Image.Image) -> bool:
    # Pillow has no 16-bit LA mode and reports such PNGs as RGBA (R = G = B = L). `_sr_ihdr` is set for PNGs only
    # (and survives exif_transpose, which drops `format`).
    return img.mode == "RGBA" and img.info.get("_sr_ihdr") == (16, 4)


def _to_array(img: Image.Image) -> np.ndarray:
    """Pillow image -> (H, W) or (H, W, 3) uint8 array, following the conversions in the docstring."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit gray (Pillow reports 16-bit PNG as I;16 or I). round(v/257) maps 65535 -> 255 exactly.
        a = np.asarray(img).astype(np.float64)
        return np.clip(np.floor(a / 257.0 + 0.5), 0, 255).astype(np.uint8)
    if mode == "F":
        raise ValueError("floating-point images (mode F) are not supported")
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"), dtype=np.uint8)
    if mode == "LA":
        return np.asarray(img.getchannel("L"), dtype=np.uint8)
    if _png_16bit_gray_alpha(img):
        return np.asarray(img, dtype=np.uint8)[..., 0]
    if mode in ("RGB", "RGBA", "RGBX"):
        return np.asarray(img, dtype=np.uint8)[..., :3]
    # P, PA, CMYK, YCbCr, LAB, HSV, RGBa, La ...: let Pillow produce RGB.
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _png_depth_type(head: bytes) -> tuple[int, int] | None:
    """(bit depth, colour type) from the PNG IHDR chunk (bytes 24-25 of the file), or None."""
    if len(head) < 26 or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _read_png_depth_type(p: Path) -> tuple[int, int] | None:
    with open(p, "rb") as f:
        return _png_depth_type(f.read(26))


def inaccessible_reason(p: Path, e: OSError) -> str:
    """Why ``p`` cannot be opened, for ``ImageError``: a missing file, a broken or looping symbolic link ..."""
    if isinstance(e, FileNotFoundError) and p.is_symlink():
        return f"broken symbolic link (points to {os.readlink(p)}, which does not exist)"
    if isinstance(e, FileNotFoundError):
        return "file not found"
    if e.errno == errno.ELOOP:
        return "symbolic link loop (it never reaches a file)"
    return f"cannot access file ({e.strerror or e})"


def _exif_upright(img: Image.Image) -> Image.Image:
    """The image as it displays: EXIF orientation 2-8 applied (a copy only when there is one)."""
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is no reason to reject the pixels
        return img
    return ImageOps.exif_transpose(img) if orientation in range(2, 9) else img


def _check_path(p: Path) -> int:
    """The file's size; ImageError for a missing, unreadable, empty file or a directory."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone flipped the global: truncated files would pass silently
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must be False for sr_lit")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ImageError(p, inaccessible_reason(p, e)) from None
    if p.is_dir():
        raise ImageError(p, "is a directory, not an image file")
    if size == 0:
        raise ImageError(p, "empty file (0 bytes)")
    return size


def _channels(img: Image.Image) -> int:
    """Channels ``_to_array`` gives for this image (1 or 3), known from the header alone."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "1", "L", "LA") or _png_16bit_gray_alpha(img):
        return 1
    if img.mode == "F":
        raise ValueError("floating-point images (mode F) are not supported")
    return 3


def _upright_size(img: Image.Image) -> tuple[int, int]:
    """(H, W) as the image displays: EXIF orientations 5-8 swap the sides (see ``_exif_upright``)."""
    w, h = img.size
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # noqa: BLE001 - as _exif_upright: a broken EXIF block is ignored
        orientation = 1
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def _decode(p: Path, header_only: bool = False) -> np.ndarray | tuple[int, int, int]:
    """(H, W) / (H, W, 3) uint8 array of the whole file, or with header_only its (C, H, W) without decoding."""
    return _decode_source(p, p, _check_path(p), lambda: _read_png_depth_type(p), header_only)


def _decode_source(
    source: Path | io.BytesIO,
    where: Path | str,
    size: int,
    png_ihdr: Callable[[], tuple[int, int] | None],
    header_only: bool = False,
) -> np.ndarray | tuple[int, int, int]:
    """The one decoding path of files and in-memory encoded images (packed values): ImageError naming ``where``."""
    try:
        with Image.open(source) as img:
            if img.format == "PNG":
                img.info["_sr_ihdr"] = png_ihdr()
            if header_only:
                return (_channels(img), *_upright_size(img))
            img.load()  # full decode: truncated/corrupt data raises here
            arr = _to_array(_exif_upright(img))
    except PermissionError:
        raise ImageError(where, "permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(where, f"not a recognised image file ({size} bytes)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # Pillow: "image file is truncated", "broken data stream", zlib errors, bad CRC ...
        raise ImageError(where, f"corrupt or truncated image ({type(e).__name__}: {e})") from None
    except Image.DecompressionBombError as e:
        raise ImageError(where, f"image too large ({e})") from None
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(where, f"image has zero size {arr.shape[1]}x{arr.shape[0]}")
    return arr


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """Decode an image file fully into a uint8 tensor (C, H, W), C = 1 (grayscale) or 3.

    Raises ``ImageError`` for missing/unreadable files, zero-byte files, non-images, truncated or
    corrupt data (the whole file is decoded, so a cut-off PNG fails here, not mid-training).
    """
    arr = _decode(Path(path))
    assert isinstance(arr, np.ndarray)
    return _as_tensor(arr)


def _as_tensor(arr: np.ndarray) -> torch.Tensor:
    arr = np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
    if not arr.flags.writeable:  # Pillow's buffer may be read-only; torch wants its own memory
        arr = arr.copy()
    return torch.from_numpy(arr)


def decode_image_bytes(data: bytes | memoryview, where: str) -> torch.Tensor:
    """An encoded image held in memory (a PNG/JPEG value of an LMDB pack) -> uint8 (C, H, W), decoded exactly
    as ``read_image`` decodes a file (16-bit to 8-bit, EXIF orientation); ImageError naming ``where``."""
    raw = bytes(data)
    arr = _decode_source(io.BytesIO(raw), where, len(raw), lambda: _png_depth_type(raw[:26]))
    assert isinstance(arr, np.ndarray)
    return _as_tensor(arr)


def probe_image(path: str | os.PathLike) -> tuple[int, int, int]:
    """(C, H, W) that ``read_image`` would return, from the file's header (no pixel decoding).

    A file whose header cannot be read raises the same ``ImageError`` as ``read_image``; a file whose pixel
    data is broken passes here and fails in ``read_image`` / ``read_image_into``.
    """
    shape = _decode(Path(path), header_only=True)
    assert isinstance(shape, tuple)
    return shape


def read_image_into(path: str | os.PathLike, out: torch.Tensor) -> None:
    """Decode ``path`` and write its top-left ``out.shape[-2:]`` crop into ``out`` (uint8 (C, h, w)).

    For decode caches that preallocate every image's place: no (C, H, W) tensor is made on the way, only
    Pillow's buffer and one array of the file's pixels (both freed on return). ``ImageError`` when the file
    is smaller than ``out`` or has another channel count (it changed since it was probed).
    """
    p = Path(path)
    arr = _decode(p)
    assert isinstance(arr, np.ndarray)
    c, h, w = out.shape
    hwc = arr[:, :, None] if arr.ndim == 2 else arr
    if hwc.shape[2] != c or hwc.shape[0] < h or hwc.shape[1] < w:
        got = f"{hwc.shape[2]} channel(s), {hwc.shape[1]}x{hwc.shape[0]}"
        raise ImageError(
            p, f"file changed while being read: {got}, expected {c} channel(s), at least {w}x{h}"
        )
    np.copyto(out.numpy(), hwc[:h, :w].transpose(2, 0, 1))


def list_images(folder: str | os.PathLike, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name.

    A missing folder or a folder with no images raises ``FileNotFoundError`` naming the folder. Symbolic links
    with an image name that reach no file (broken, looping) are listed, so that reading them reports them by
    name (``read_image``, the data set-up check) instead of skipping them without a word.
    """
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"image folder not found: {d}")
    exts = {e.lower() for e in extensions}
    files = sorted(
        f
        for f in d.iterdir()
        if f.suffix.lower() in exts
        and not f.name.startswith(".")
        and (f.is_file() or (f.is_symlink() and not f.is_dir()))
    )
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(exts))}) in folder: {d}")
    return files


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 (any shape) -> float32 in [0, 1]."""
    return x.to(torch.float32).div_(255.0)


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Replicate a 1-channel (..., 1, H, W) image to 3 channels; 3-channel input is returned as is."""
    c = x.shape[-3]
    if c == 3:
        return x
    if c == 1:
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:]).contiguous()
    raise ValueError(f"expected 1 or 3 channels, got shape {tuple(x.shape)}")
