"""Safe files: every checkpoint we write loads with torch.load(weights_only=True); the code never loads without
it; no secret from the environment (W&B key, tokens) is written into configs, logs, checkpoints or W&B files."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.reliability.checks import load_safe
from tests.reliability.cli import FAKE_WANDB_KEY, REPO_ROOT
from tests.reliability.conftest import FAKE_OTHER_SECRET


def test_no_secret_in_any_file_of_the_run(tiny_run: Path) -> None:
    files = [p for p in tiny_run.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    # the run really wrote what we mean to search: resolved config, Hydra's copies, checkpoints, CSV, W&B offline
    assert {"config_resolved.yaml", "config.yaml", "hydra.yaml", "overrides.yaml", "last.ckpt"} <= names, (
        names
    )
    assert any(p.suffix == ".wandb" for p in files) and any(p.name == "metrics.csv" for p in files), names
    for p in files:
        data = p.read_bytes()
        for secret in (FAKE_WANDB_KEY, FAKE_OTHER_SECRET):
            assert secret.encode() not in data, f"{secret[:6]}... found in {p}"
    # W&B keeps its key out of the run config: no key-like entry was added to the shareable dump
    assert "api_key" not in (tiny_run / "config_resolved.yaml").read_text().lower()


def test_every_checkpoint_of_a_run_loads_weights_only(tiny_run: Path) -> None:
    ckpts = sorted((tiny_run / "checkpoints").glob("*.ckpt"))
    assert {p.name for p in ckpts} >= {"last.ckpt"} and any(p.name.startswith("best-") for p in ckpts), ckpts
    for p in ckpts:
        ckpt = load_safe(p)  # also checks hyper_parameters are plain containers
        assert ckpt["hyper_parameters"]["model_spec"]["backbone"]["arch"] == "edsr"
        assert "callbacks" in ckpt and "optimizer_states" in ckpt  # the full resume state, still safe to load


def _unsafe_torch_loads(path: Path) -> list[str]:
    """`torch.load(...)` calls without a literal weights_only=True."""
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "load"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "torch"
        ):
            kw = {k.arg: k.value for k in node.keywords}
            value = kw.get("weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                bad.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    return bad


def test_code_never_calls_torch_load_without_weights_only() -> None:
    skip = {".venv", "outputs", "tests", "build", ".git"}  # tests may load unsafe files on purpose
    tops = [d for d in REPO_ROOT.iterdir() if d.name not in skip and not d.name.startswith(".")]
    sources = [p for d in tops for p in ([d] if d.suffix == ".py" else d.rglob("*.py") if d.is_dir() else [])]
    assert any(p.parts[-2:] == ("cli", "train.py") for p in sources)
    bad = [hit for p in sources for hit in _unsafe_torch_loads(p)]
    assert not bad, f"torch.load without weights_only=True: {bad}"
    # and resuming goes through Lightning with weights_only=True too
    assert "weights_only=True" in (REPO_ROOT / "sr_lit" / "lit" / "pipeline.py").read_text()
