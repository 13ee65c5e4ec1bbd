"""sr-import: released EDSR / RCAN weights in, our .safetensors (weights + model spec) out.

    sr-import edsr_baseline_x2-1bc95232.pt --out edsr_baseline_x2.safetensors     # EDSR-PyTorch
    sr-import RCAN_BIX4.pt --out rcan_x4.safetensors --arch rcan --scale 4         # RCAN code (checks both)
    sr-import EDSR_Lx2_f256b32_DIV2K_official-be38e77d.pth --out edsr_x2.safetensors   # BasicSR (params_ema)
    sr-import my_edsr.pt --out my_edsr.safetensors --res-scale 1                  # what no EDSR file stores

Architecture, width, depth, CA reduction and scale are read off the keys and shapes; EDSR's res_scale is not
stored anywhere: 0.1 at 256 features (the released EDSR), 1 below, unless --res-scale says otherwise. Files are
read with torch.load(weights_only=True) only. A sha256 prefix in the file name is checked and reported.
The released files also load directly: sr-eval ckpt_path=FILE, sr-upscale --ckpt FILE, init_from=FILE.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sr_lit.cli._common import check_not_input, run_command
from sr_lit.errors import UserError

PROG = "sr-import"
ARCHS = ("edsr", "rcan")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a released EDSR/RCAN checkpoint (EDSR-PyTorch/RCAN .pt, BasicSR .pth) or an sr_lit "
        "file into an sr_lit .safetensors (weights + model spec).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "file", type=Path, metavar="FILE", help="state dict .pt/.pth, Lightning .ckpt or .safetensors"
    )
    p.add_argument("--out", "-o", type=Path, required=True, metavar="OUT.safetensors", help="output file")
    p.add_argument("--arch", choices=ARCHS, help="expected architecture (checked against the file)")
    p.add_argument(
        "--scale", type=int, choices=(2, 3, 4), help="expected scale (checked against the upsampler)"
    )
    p.add_argument(
        "--res-scale",
        type=float,
        metavar="R",
        help="EDSR residual scaling, which no file stores (default: 0.1 at 256 features, else 1)",
    )
    p.add_argument(
        "--overwrite", "--force", dest="overwrite", action="store_true", help="replace --out if it exists"
    )
    return p


def _check_out(args: argparse.Namespace) -> None:
    out: Path = args.out
    if out.suffix.lower() != ".safetensors":
        raise UserError(f"--out {out}: sr-import writes .safetensors files; name it *.safetensors")
    if out.exists() and out.is_dir():
        raise UserError(f"--out {out}: is a folder; give a file name")
    check_not_input(out, args.file, PROG)  # even with --overwrite: a link to the input included
    if out.exists() and not args.overwrite:
        raise UserError(f"--out {out}: exists; give --overwrite to replace it")
    if args.res_scale is not None and not args.res_scale > 0:
        raise UserError(f"--res-scale {args.res_scale}: must be > 0")


def run(args: argparse.Namespace) -> int:
    from sr_lit.errors import CheckpointError, ExportError
    from sr_lit.export.weights import import_weights

    _check_out(args)
    try:
        result = import_weights(
            args.file, args.out, arch=args.arch, scale=args.scale, res_scale=args.res_scale
        )
    except (CheckpointError, ExportError) as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"--out {args.out}: cannot write ({e.strerror or e})") from None
    for line in result.lines():
        print(line)
    for warning in result.warnings():
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
