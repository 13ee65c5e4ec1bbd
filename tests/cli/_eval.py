"""Running sr-eval in-process, as its console script does, for the tests of several rooms."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest


def run_eval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *overrides: str) -> dict:
    """Call the real Hydra main as the console script would (sys.argv); return the JSON it wrote.

    Writes ``tmp_path/result.json`` and the run folder ``tmp_path/run`` (give each call its own ``tmp_path``)."""
    from sr_lit.cli.eval import main

    out = tmp_path / "result.json"
    argv = ["sr-eval", *overrides, f"json_out={out}", f"hydra.run.dir={tmp_path / 'run'}", "progress=false"]
    monkeypatch.setattr(sys, "argv", argv)
    main()
    result = json.loads(out.read_text())
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == result
    return result
