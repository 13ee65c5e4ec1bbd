"""`sr-inspect CKPT [IMAGE] --out DIR`: what the trained units learned (MMCA frequency weights, HPF responses).

    sr-inspect outputs/train/<run>/checkpoints/last.ckpt --out inspect/      # on scikit-image's coffee photo
    sr-inspect last.ckpt photo_lr.png --out inspect/                         # the image is the network input
    sr-inspect last.ckpt photo_hr.png --as-hr --out inspect/                 # downscaled x scale first

Writes inspect.json, mmca_weights.png (when the model has MMCA) and hpf_response.png (when it has HPF).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sr_lit.cli._common import run_command
from sr_lit.errors import UserError

PROG = "sr-inspect"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("ckpt", help="a .ckpt (sr-train) or .safetensors (sr-export) model file")
    parser.add_argument(
        "image", nargs="?", default=None, help="network input image (default: scikit-image coffee)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for inspect.json and the PNGs")
    parser.add_argument(
        "--as-hr", action="store_true", help="IMAGE is a high-resolution image: downscale it first"
    )
    parser.add_argument(
        "--max-side",
        type=int,
        default=192,
        help="centre-crop the input to this many LR pixels per side (0: whole)",
    )
    parser.add_argument(
        "--overwrite", "--force", dest="overwrite", action="store_true", help="replace earlier files in --out"
    )
    args = parser.parse_args(argv)

    return run_command(PROG, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    from sr_lit.analysis.inspection import OUTPUT_NAMES, inspect_checkpoint

    if not Path(args.ckpt).is_file():
        raise UserError(f"{args.ckpt}: no such checkpoint file")
    if args.image is not None and not Path(args.image).is_file():
        raise UserError(f"{args.image}: no such image file")
    if args.max_side < 0:
        raise UserError(f"--max-side {args.max_side}: expected 0 (whole image) or a positive number")
    existing = [str(args.out / n) for n in OUTPUT_NAMES if (args.out / n).exists()]
    if existing and not args.overwrite:
        raise UserError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace them")
    record = inspect_checkpoint(args.ckpt, args.out, args.image, args.as_hr, args.max_side or None)
    for unit in record["mmca"]:
        print(
            f"MMCA {unit['unit']}: effective K {unit['effective_k']:.2f} of {len(unit['weights'])}, "
            f"largest weight at (u, v) = {tuple(unit['max_weight_freq'])}"
        )
    for unit in record["hpf"]:
        print(
            f"HPF {unit['unit']}: passes {unit['passed_above_half_nyquist']:.3f} of the feature energy above half "
            f"Nyquist, {unit['passed_below_half_nyquist']:.3f} below"
        )
    if not record["mmca"] and not record["hpf"]:
        print(
            f"{PROG}: the model has neither MMCA nor HPF units: only inspect.json was written",
            file=sys.stderr,
        )
    print(f"{PROG}: wrote {args.out / 'inspect.json'}" + "".join(f", {p}" for p in record["files"].values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
