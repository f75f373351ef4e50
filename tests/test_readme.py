"""The README's Python blocks run, in order, in one namespace: the guide cannot drift."""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def readme_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_blocks() -> None:
    assert len(readme_blocks()) >= 10


@pytest.mark.anyio
async def test_readme_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the guide's SQLite file lands here
    # One importable module, as in a program: its classes pickle by name.
    module = types.ModuleType("readme")
    monkeypatch.setitem(sys.modules, "readme", module)
    namespace: dict[str, object] = module.__dict__
    for number, block in enumerate(readme_blocks(), start=1):
        code = compile(
            block, f"README.md block {number}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        outcome = eval(code, namespace)
        if outcome is not None:
            await outcome
