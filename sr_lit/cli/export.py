"""sr-export: a checkpoint in, a deployable file out (ONNX, TorchScript, safetensors weights + config, or a
plain state dict for the published EDSR/RCAN code).

    sr-export best.ckpt --format onnx --out model.onnx                 # dynamic H/W when the graph allows it
    sr-export best.ckpt --format onnx --out model_256.onnx --tile 256 256 --opset 17
    sr-export best.ckpt --format torchscript --out model.pt
    sr-export best.ckpt --format safetensors --out model.safetensors   # for sr-upscale/sr-eval, no pickle
    sr-export best.ckpt --format pth --layout official --out edsr.pt   # EDSR-PyTorch / RCAN code (strict=True)
    sr-export best.ckpt --format pth --layout basicsr --out edsr.pth   # BasicSR ({"params": ...})

Every export is compared with the PyTorch model on random inputs (ONNX via onnxruntime) and refused beyond
--atol; the measured max |diff| and the model spec are stored in the file. See docs/DEPLOYING.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sr_lit.cli._common import check_not_input, run_command
from sr_lit.errors import ConfigError, UserError

PROG = "sr-export"
FORMATS = ("onnx", "torchscript", "safetensors", "pth")
_SUFFIXES = {
    ".onnx": "onnx",
    ".pt": "torchscript",
    ".ts": "torchscript",
    ".safetensors": "safetensors",
    ".pth": "pth",
}
LAYOUTS = ("official", "basicsr")
MIN_TILE = 8


def build_parser() -> argparse.ArgumentParser:
    from sr_lit.export.common import DEFAULT_ATOL
    from sr_lit.export.onnx import DEFAULT_OPSET

    p = argparse.ArgumentParser(
        prog=PROG,
        description="Export a trained sr_lit model (.ckpt, .safetensors or a released EDSR/RCAN file) to ONNX, "
        "TorchScript, safetensors or a plain state dict (pth), checked against PyTorch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "ckpt",
        type=Path,
        metavar="CKPT",
        help="Lightning .ckpt, .safetensors, or a released EDSR/RCAN .pt/.pth",
    )
    p.add_argument(
        "--out", "-o", type=Path, required=True, metavar="FILE", help="output file (folders created)"
    )
    p.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        help="default: from --out's suffix (.onnx, .pt/.ts, .safetensors, .pth)",
    )
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        help="pth only: key names of EDSR-PyTorch/RCAN (official, the default) or BasicSR; plain EDSR and "
        "RCAN (with CA) only",
    )
    p.add_argument(
        "--tile",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="fixed LR input size (onnx/torchscript); default: dynamic H/W when the export is exact at other sizes",
    )
    p.add_argument("--opset", type=int, metavar="N", help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument(
        "--atol",
        type=float,
        default=DEFAULT_ATOL,
        metavar="A",
        help=f"max |export - PyTorch| accepted on [0, 1] images (default {DEFAULT_ATOL:g})",
    )
    return p


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    fmt = _SUFFIXES.get(args.out.suffix.lower())
    if fmt is None:
        raise UserError(
            f"--out {args.out}: cannot tell the format from the suffix; give --format {'|'.join(FORMATS)}"
        )
    return fmt


def _check_options(args: argparse.Namespace, fmt: str) -> tuple[int, int] | None:
    if args.tile is not None:
        if fmt in ("safetensors", "pth"):
            raise UserError(f"--tile applies to onnx and torchscript exports, not {fmt}")
        if min(args.tile) < MIN_TILE:
            raise UserError(f"--tile {args.tile[0]} {args.tile[1]}: both sides must be >= {MIN_TILE} LR px")
    if args.layout is not None and fmt != "pth":
        raise UserError(f"--layout applies to pth exports, not {fmt}")
    if args.opset is not None and fmt != "onnx":
        raise UserError(f"--opset applies to onnx exports, not {fmt}")
    if not args.atol >= 0:
        raise UserError(f"--atol {args.atol}: must be >= 0")
    if args.out.exists() and args.out.is_dir():
        raise UserError(f"--out {args.out}: is a folder; give a file name")
    if fmt == "safetensors" and args.out.suffix.lower() != ".safetensors":
        # sr-upscale/sr-eval (sr_lit.models.loading) tell a safetensors file by this suffix
        raise ConfigError(
            f"--out {args.out}: a safetensors export must end in .safetensors (sr-upscale and "
            "sr-eval recognise it by that suffix)"
        )
    return tuple(args.tile) if args.tile is not None else None  # type: ignore[return-value]


def _require(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"{' and '.join(missing)} not installed: pip install -e '.[export]'")


def run(args: argparse.Namespace) -> int:
    from sr_lit.export.common import ExportError
    from sr_lit.models.loading import CheckpointError, load_model

    check_not_input(args.out, args.ckpt, PROG)  # first, for every format
    fmt = _format(args)
    tile = _check_options(args, fmt)
    if fmt == "onnx":
        _require("onnx", "onnxruntime")  # the `export` extra; checked before the checkpoint is loaded
    try:
        model, spec = load_model(args.ckpt, map_location="cpu")
    except CheckpointError as e:
        raise UserError(str(e)) from None
    try:
        if fmt == "onnx":
            from sr_lit.export.onnx import DEFAULT_OPSET, export_onnx

            result = export_onnx(
                model, spec, args.out, tile=tile, opset=args.opset or DEFAULT_OPSET, atol=args.atol
            )
        elif fmt == "torchscript":
            from sr_lit.export.torchscript import export_torchscript

            result = export_torchscript(model, spec, args.out, tile=tile, atol=args.atol)
        elif fmt == "pth":
            from sr_lit.export.pth import export_pth

            result = export_pth(model, spec, args.out, layout=args.layout or "official")
        else:
            from sr_lit.export.weights import export_safetensors

            result = export_safetensors(model, spec, args.out)
    except ExportError as e:
        raise UserError(f"{args.ckpt}: {e}") from None
    except OSError as e:
        raise UserError(f"--out {args.out}: cannot write ({e.strerror or e})") from None
    print(result.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
