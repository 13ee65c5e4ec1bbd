"""The package's import direction (docs/DESIGN.md section 4): a room imports only rooms on a lower level, or
itself. Every `import sr_lit...` counts, also inside functions (lazy imports are still dependencies)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sr_lit"

# level of each room (top-level module or sub-package of sr_lit); keep in sync with docs/DESIGN.md section 4
LEVELS = {
    "errors": 0,
    "utils": 0,
    "data": 1,
    "models": 1,
    "metrics": 2,
    "export": 3,
    "inference": 4,
    "analysis": 5,
    "lit": 6,
    "report": 7,
    "bench": 7,
    "cli": 8,
}


def _room(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "sr_lit" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def test_every_room_has_a_level() -> None:
    rooms = {_room(p) for p in PACKAGE.rglob("*.py")} - {"__init__", "py"}
    assert rooms <= set(LEVELS), (
        f"rooms without a level (add them here and to docs/DESIGN.md): {rooms - set(LEVELS)}"
    )


def test_imports_go_down_only() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        room = _room(path)
        if room == "__init__":
            continue
        for line, target in _imports(path):
            if target != room and target in LEVELS and LEVELS[target] >= LEVELS[room]:
                bad.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {room} (level {LEVELS[room]}) imports "
                    f"{target} (level {LEVELS[target]})"
                )
    assert not bad, "imports against the layer direction:\n" + "\n".join(bad)
