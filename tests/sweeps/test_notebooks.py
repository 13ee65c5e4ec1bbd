"""The notebooks execute top to bottom (nbmake), on their small default parameters."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests._shared import REPO_ROOT


@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "02_ablation.ipynb", "03_frequency.ipynb"])
def test_notebook_runs(name: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    cmd = [sys.executable, "-m", "pytest", "--nbmake", f"notebooks/{name}", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
