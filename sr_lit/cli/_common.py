"""Small helpers shared by the sr-* commands: one-line errors and where the configs live."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from sr_lit.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, ConfigError, UserError

EXIT_USAGE = EXIT_USER_ERROR  # argparse's code for bad usage; also every bad input (sr_lit.errors.UserError)


def fail(prog: str, message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def run_command(prog: str, body: Callable[[], int]) -> int:
    """Run a command's body: a UserError becomes one `<prog>: error: ...` line and exit 2, Ctrl-C exit 130;
    anything else keeps its traceback (a bug, not a user mistake)."""
    try:
        return body()
    except UserError as e:
        fail(prog, str(e))
    except KeyboardInterrupt:
        fail(prog, "interrupted", code=EXIT_INTERRUPTED)


def check_not_input(out: Path, inp: Path, prog: str) -> None:
    """``--out`` must never be the input: the same path, a symlink to it, or a hard link (same inode)."""
    same = os.path.realpath(out) == os.path.realpath(inp)
    if not same and out.exists() and inp.exists():
        same = os.path.samefile(out, inp)
    if same:
        raise ConfigError(
            f"--out {out}: is the input {inp} (or a link to it); {prog} never writes over its input: "
            "give another file name"
        )


def config_dir() -> str:
    """The repo's configs/ (absolute, so Hydra finds it from any cwd); $SR_LIT_CONFIG_DIR overrides."""
    env = os.environ.get("SR_LIT_CONFIG_DIR")
    if env:
        return str(Path(env).resolve())
    from sr_lit.utils.config import CONFIG_DIR  # also registers the ${repo_root:} resolver

    return str(CONFIG_DIR)
