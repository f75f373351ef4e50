"""``examples/`` are part of the product: each runs here, on both databases."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import Database

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.anyio
async def test_quickstart(db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    quickstart = load("quickstart")
    connect_args = {}
    if db.schema is not None:
        connect_args = {"server_settings": {"search_path": db.schema}}
    await quickstart.main(db.url, connect_args)
    out = capsys.readouterr().out
    for expected in [
        "u1 is u2: True",
        "user in session.dirty: True",
        "alice in session.deleted: True",
        "in_transaction after execute(): True",
        "reading an expired attribute raises: UnloadedAttributeError",
        "after refresh: Jane Roe",
        "after rollback: Jane Roe",
        "detached: True",
        "merged is jane: False",
        "in the database: ['Jane Merged']",
    ]:
        assert expected in out, expected


def test_quickstart_command_from_the_readme() -> None:
    """The README's first command runs the example as a script, on SQLite, with no server."""
    finished = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert "u1 is u2: True" in finished.stdout
    assert "in the database: ['Jane Merged']" in finished.stdout
