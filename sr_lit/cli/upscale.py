"""sr-upscale: LR images or folders in, SR PNGs out (no ground truth needed; DESIGN P15).

    sr-upscale photo.jpg more/ --out sr/ --ckpt best.ckpt [--tile 256] [--self-ensemble] [--precision bf16]
    sr-upscale lr/ --out sr/ --baseline bicubic --scale 4
    sr-upscale lr/ --out sr/ --onnx model.onnx             # an sr-export ONNX file (onnxruntime)

Before the first output is written, every input is checked (exists, decodes in full, is not smaller than
the model's minimum input, no two share an output name), the checkpoint is loaded and the options are
checked, so a typo or a broken file fails in seconds, not after an hour, and leaves no partial output.
Existing outputs are never replaced unless --overwrite is given; each PNG is written atomically.
Alpha is not super-resolved: RGBA/LA inputs give RGB/grayscale PNGs, with a warning naming each such file.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from sr_lit.cli._common import run_command
from sr_lit.errors import ConfigError, ImageError, UserError
from sr_lit.utils.files import write_atomic

PROG = "sr-upscale"
# Pillow modes with an alpha band: read_image drops it (SR of alpha is out of scope), so the user is told
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _formatter() -> type[argparse.HelpFormatter]:
    try:
        from rich_argparse import RawDescriptionRichHelpFormatter

        return RawDescriptionRichHelpFormatter
    except ImportError:  # optional nicety
        return argparse.RawDescriptionHelpFormatter


def build_parser() -> argparse.ArgumentParser:
    from sr_lit.inference.predictor import DEFAULT_MAX_PIXELS, MAX_AUTO_OVERLAP, PRECISIONS

    p = argparse.ArgumentParser(
        prog=PROG,
        description="Upscale images with a trained sr_lit model (or the MATLAB-bicubic baseline). "
        "Outputs are PNGs named after the inputs (<stem>.png) in --out.",
        formatter_class=_formatter(),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (not recursive)")
    p.add_argument("--out", "-o", required=True, type=Path, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs that already exist in --out (default: refuse)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", type=Path, metavar="CKPT", help=".ckpt, .safetensors, or EDSR/RCAN .pt/.pth")
    src.add_argument("--baseline", choices=["bicubic"], help="no model: MATLAB bicubic (needs --scale)")
    src.add_argument(
        "--onnx",
        type=Path,
        metavar="FILE",
        help="an sr-export .onnx file, run with onnxruntime (same tiling)",
    )
    p.add_argument(
        "--scale", type=int, choices=[2, 3, 4], help="upscaling factor (default: the checkpoint's)"
    )
    p.add_argument(
        "--tile",
        type=int,
        metavar="N",
        help="LR tile side in px (default: automatic above --max-pixels; 0: never)",
    )
    p.add_argument(
        "--overlap",
        type=int,
        metavar="M",
        help=f"LR context px per tile side (default: the model's receptive margin, at most {MAX_AUTO_OVERLAP})",
    )
    p.add_argument("--self-ensemble", action="store_true", help="x8 geometric self-ensemble (8x slower)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        default="fp32",
        help="bf16: the network under bf16 autocast (faster where bf16 is native: GPUs, AVX-512 BF16/AMX CPUs)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="P",
        help=f"tile automatically when an input has more LR pixels than this (default {DEFAULT_MAX_PIXELS})",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    return p


def collect_inputs(inputs: Sequence[str], out_dir: Path, overwrite: bool = False) -> list[tuple[Path, Path]]:
    """[(input, output)] for files and folder contents; every problem is a UserError naming the path.

    Header checks only (cheap, before the model loads); ``check_inputs`` decodes every file later. Outputs that
    exist already are refused unless ``overwrite``."""
    from PIL import Image, UnidentifiedImageError

    from sr_lit.data.io import inaccessible_reason, list_images

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            try:
                files.extend(list_images(path))
            except FileNotFoundError as e:
                raise UserError(str(e)) from None
        elif path.is_file():
            files.append(path)
        elif path.is_symlink():
            raise ImageError(path, inaccessible_reason(path, FileNotFoundError()))
        else:
            raise UserError(f"input not found: {path}")
    pairs: list[tuple[Path, Path]] = []
    seen: dict[Path, Path] = {}
    inputs_resolved = {Path(os.path.realpath(f)) for f in files}  # realpath: no error on a symlink loop
    for f in files:
        try:  # header only: cheap, catches "not an image" before any work
            with Image.open(f) as im:
                im.size  # noqa: B018
        except UnidentifiedImageError:
            raise ImageError(f, "not an image file") from None
        except OSError as e:
            raise ImageError(f, inaccessible_reason(f, e)) from None
        dst = out_dir / f"{f.stem}.png"
        key = Path(os.path.realpath(dst))
        if key in seen:
            raise UserError(f"{f} and {seen[key]} would both be written to {dst}")
        if key in inputs_resolved:
            raise UserError(f"{f}: output {dst} would overwrite an input; choose another --out")
        seen[key] = f
        pairs.append((f, dst))
    folders = [dst for _, dst in pairs if dst.is_dir()]
    if folders:
        raise UserError(f"output {folders[0]} is a folder; choose another --out")
    existing = [dst for _, dst in pairs if dst.exists() or dst.is_symlink()]
    if existing and not overwrite:
        shown = ", ".join(str(p) for p in existing[:3]) + (
            f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        )
        raise UserError(
            f"--out {out_dir}: {len(existing)} output(s) exist already ({shown}); pass --overwrite to replace "
            "them, or choose another --out"
        )
    return pairs


def check_inputs(pairs: Sequence[tuple[Path, Path]], min_side: int) -> None:
    """Decode every input in full (a truncated file fails here, not after the others were written) and refuse
    images the model cannot take (smaller than ``min_side`` LR px, e.g. the HPF's reflect padding). Decoded
    one at a time and dropped: memory stays that of one image."""
    from sr_lit.data.io import read_image

    for src, _ in pairs:
        img = read_image(src)
        h, w = img.shape[-2:]
        if min(h, w) < min_side:
            raise ImageError(
                src, f"image {w}x{h} is smaller than this model's minimum input of {min_side}x{min_side} px"
            )
        del img


def build_upscaler(args: argparse.Namespace):
    from sr_lit.inference.predictor import Upscaler
    from sr_lit.models.loading import CheckpointError, TorchScriptFileError, load_model

    for opt in ("tile", "overlap", "max_pixels"):
        v = getattr(args, opt)
        if v is not None and v < 0:
            raise UserError(f"--{opt.replace('_', '-')} must be >= 0, got {v}")
    common = dict(
        device=args.device,
        tile=args.tile,
        overlap=args.overlap,
        self_ensemble=args.self_ensemble,
        max_pixels=args.max_pixels,
        progress=not args.quiet,
        precision=args.precision,
    )
    try:
        if args.baseline:
            if args.scale is None:
                raise UserError("--baseline bicubic needs --scale")
            return Upscaler.bicubic(args.scale, **common)
        if args.onnx:
            return _onnx_upscaler(args, common)
        try:
            model, spec = load_model(args.ckpt, map_location="cpu")
        except TorchScriptFileError:
            raise UserError(
                f"--ckpt {args.ckpt} is a TorchScript export: sr-upscale reads .ckpt or .safetensors "
                "(or --onnx FILE for ONNX)"
            ) from None
        except CheckpointError as e:
            raise UserError(f"--ckpt {e}") from None
        if args.scale is not None and args.scale != int(spec["scale"]):
            raise UserError(
                f"--scale {args.scale} disagrees with --ckpt {args.ckpt}, a x{spec['scale']} model"
            )
        return Upscaler(model, spec=spec, name=str(args.ckpt), **common)
    except ValueError as e:  # unknown/unavailable device
        raise UserError(str(e)) from None


def _onnx_upscaler(args: argparse.Namespace, common: dict):
    import importlib.util

    from sr_lit.export.common import ExportError
    from sr_lit.inference.predictor import Upscaler

    if importlib.util.find_spec("onnxruntime") is None:
        raise UserError("--onnx needs onnxruntime: pip install -e '.[export]'")

    try:
        upscaler = Upscaler.from_onnx(args.onnx, **common)
    except ExportError as e:
        raise UserError(f"--onnx {e}") from None
    except ValueError as e:  # a tile that does not fit a fixed-size export
        raise UserError(f"--onnx {args.onnx}: {e}") from None
    if args.scale is not None and args.scale != upscaler.scale:
        raise UserError(f"--scale {args.scale} disagrees with --onnx {args.onnx}, a x{upscaler.scale} model")
    return upscaler


def dropped_transparency(path: Path) -> str | None:
    """What transparency ``read_image`` will drop from ``path`` (header only): an alpha band, a transparent
    colour (PNG tRNS), or None."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in _ALPHA_MODES:
            return "alpha channel"
        return "transparency" if "transparency" in im.info else None


def save_png(sr01: torch.Tensor, path: Path, gray: bool) -> None:
    """[0,1] (3, H, W) -> 8-bit PNG, written atomically; a grayscale input is written back as grayscale.

    Quantises in place (round half up, as ``sr_lit.metrics.y_channel.quantize``): a 4K x4 output is
    1.6 GB as float32, so no full-size temporaries.
    """
    from PIL import Image

    if gray:
        sr01 = sr01.mean(dim=0, keepdim=True)
    sr8 = sr01.clamp_(0, 1).mul_(255).add_(0.5).floor_().to(torch.uint8)
    del sr01
    a = sr8.permute(1, 2, 0).contiguous().numpy()
    del sr8
    img = Image.fromarray(a[..., 0] if gray else a)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    write_atomic(path, buf.getvalue())  # an interrupted run leaves no half-written PNG under the final name


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from sr_lit.data.io import read_image, to_float

    pairs = collect_inputs(args.inputs, args.out, overwrite=args.overwrite)
    upscaler = build_upscaler(args)
    why = upscaler.tile_problem()
    if why:
        raise ConfigError(f"--tile {args.tile}: {why}")
    check_inputs(pairs, upscaler.min_input_side)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {args.out}: cannot create folder ({e.strerror or e})") from None
    bar = tqdm(pairs, desc=PROG, unit="img", disable=args.quiet)
    for src, dst in bar:
        bar.set_postfix_str(src.name)
        img = read_image(
            src
        )  # decoded once already by check_inputs: an ImageError now means it changed since
        gray = img.shape[0] == 1
        dropped = dropped_transparency(src)
        if dropped:  # through tqdm, so that the progress bar is not torn
            out_mode = "grayscale" if gray else "RGB"
            tqdm.write(f"{PROG}: warning: {src}: {dropped} dropped; output is {out_mode}", file=sys.stderr)
        # no name kept for the float SR: save_png frees it once quantised (peak memory)
        save_png(upscaler(to_float(img)), dst, gray=gray)
        del img
    if not args.quiet:
        print(f"wrote {len(pairs)} image(s) x{upscaler.scale} to {args.out}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        with torch.inference_mode():
            return run(args)

    return run_command(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
