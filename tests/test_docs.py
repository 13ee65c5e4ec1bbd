"""The repository explains itself: design references point into docs/DESIGN.md and exist there; nothing cites
documents outside the repository (the data folder, `paths.data_dir`, is the one outside thing it uses)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "DESIGN.md"
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".ipynb", ".txt", ".cfg", ""}


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [ROOT / line for line in out.splitlines()]
    return [p for p in files if p.is_file() and p.suffix in TEXT_SUFFIXES and p.stat().st_size < 2_000_000]


def _design_anchors() -> set[str]:
    text = DESIGN.read_text()
    sections = set(re.findall(r"^#{2,3} (\d(?:\.\d)?) ", text, flags=re.M))
    pitfalls = set(re.findall(r"^\*\*(P\d+)\.", text, flags=re.M))
    return sections | pitfalls


def test_design_references_exist() -> None:
    anchors = _design_anchors()
    assert {"1.1", "1.2", "1.3", "1.4", "1.5", "2", "3", "4", "5", "6", "P1", "P15"} <= anchors
    missing = []
    for path in _tracked_text_files():
        for m in re.finditer(r"\bDESIGN (P\d+|\d(?:\.\d)?)\b", path.read_text(errors="replace")):
            if m.group(1) not in anchors:
                missing.append(f"{path.relative_to(ROOT)}: DESIGN {m.group(1)}")
    assert not missing, f"references to sections docs/DESIGN.md does not have: {missing}"


def test_nothing_cites_documents_outside_the_repository() -> None:
    # the names are assembled so that this file does not itself cite the documents it looks for
    spec, pitfalls, shared = "SPEC", "PITFALLS", "shared"
    outside = re.compile(
        rf"{spec}\.md|{pitfalls}\.md|{shared}/spec|seed-README|\b{spec} \d|\b[Pp]itfalls? \d"
    )
    hits = []
    for path in _tracked_text_files():
        if path == Path(__file__):
            continue
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if outside.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    assert not hits, "cite docs/DESIGN.md instead:\n" + "\n".join(hits)
