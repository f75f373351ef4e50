"""Imports point one way: exc -> _sql -> _dialects -> _drivers -> _engine -> _orm -> facade.

Checked from the source, so a forbidden import fails here even if it is never executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "asyncorm"

#: what each private package may not import
FORBIDDEN = {
    "_sql": {"_dialects", "_drivers", "_engine", "_orm"},
    "_dialects": {"_drivers", "_engine", "_orm"},
    "_drivers": {"_sql", "_dialects", "_engine", "_orm"},
    "_engine": {"_orm"},
    "_orm": {"_drivers"},
}


def imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and module.startswith("asyncorm."):
                found.add(module.split(".")[1])
            elif node.level >= 2:
                found.add(module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("asyncorm."):
                    found.add(alias.name.split(".")[1])
    return found


def test_layers_import_one_way() -> None:
    violations = []
    for layer, forbidden in FORBIDDEN.items():
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            bad = imported_layers(path) & forbidden
            if bad:
                violations.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not violations, "\n".join(violations)


def test_orm_talks_to_no_driver_library() -> None:
    for path in sorted((PACKAGE / "_orm").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert "import asyncpg" not in source and "import aiosqlite" not in source, path
