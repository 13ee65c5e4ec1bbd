"""sr-data: prepare training data that does not fit in memory.

    sr-data pack /data/DIV2K --out /data/DIV2K_x234.lmdb               # DIV2K 0001-0800, LR x2/x3/x4
    sr-data pack /data/DIV2K --out /data/DIV2K_x2.lmdb --scales 2 --range 1-800
    sr-data pack /data/my_photos --out /data/my_photos.lmdb --scales 4  # any folder: LR made with MATLAB bicubic
    sr-train data=folder data.train.kind=lmdb data.train.root=/data/DIV2K_x234.lmdb ...

A pack is an LMDB folder of raw uint8 images (HR and the LR of each scale; official DIV2K LR files when present):
training slices patches out of it without decoding, and gives the same patches for the same seed as training from
the source folder. BasicSR's LMDB folders (meta_info.txt) are read as they are: data.train.kind=lmdb
data.train.root=X_HR_sub.lmdb data.train.lr_root=X_LR_X2_sub.lmdb. See README.md, "Data".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sr_lit.cli._common import run_command
from sr_lit.errors import UserError

PROG = "sr-data"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Prepare training data: pack a folder or a DIV2K layout into an LMDB for streaming training.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pk = sub.add_parser("pack", help="a folder or DIV2K layout -> an LMDB pack (raw HR + LR per scale)")
    pk.add_argument("src", type=Path, metavar="SRC", help="a folder of HR images, or a DIV2K root")
    pk.add_argument("--out", "-o", type=Path, required=True, metavar="DIR", help="the new LMDB folder")
    pk.add_argument("--scales", default="2,3,4", help="comma-separated LR scales to store (default 2,3,4)")
    pk.add_argument("--range", dest="index_range", help="DIV2K image numbers, e.g. 1-800 (DIV2K roots only)")
    pk.add_argument(
        "--lr-border",
        default="symmetric",
        choices=("symmetric", "replicate"),
        help="border of generated LR (symmetric: EDSR files; replicate: RCAN/SelfExSR files)",
    )
    pk.add_argument("--threads", type=int, help="decode threads (default: cores, at most 8)")
    return p


def _scales(text: str) -> list[int]:
    try:
        scales = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        scales = []
    if not scales or any(s < 1 for s in scales):
        raise UserError(f"--scales {text}: expected positive integers, e.g. 2,3,4")
    return scales


def run(args: argparse.Namespace) -> int:
    from sr_lit.data.packed import pack

    if not args.src.is_dir():
        raise UserError(f"SRC {args.src}: not a folder")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads}: must be >= 1")

    def progress(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            print(f"\r{done}/{total} images", end="" if done < total else "\n", file=sys.stderr, flush=True)

    try:
        meta = pack(
            args.src, args.out, _scales(args.scales), args.lr_border, args.index_range, args.threads, progress
        )
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"--out {args.out}: cannot write ({e.strerror or e})") from None
    n = len(meta["images"])
    print(
        f"packed {n} images (scales {','.join(map(str, meta['scales']))}, "
        f"{'official' if meta['official_lr'] else 'generated'} LR) into {args.out}: "
        f"{meta['bytes'] / 2**30:.2f} GiB in {meta['seconds']:.0f} s"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
