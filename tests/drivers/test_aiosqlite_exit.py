"""A SQLite program that fails before ``engine.dispose()`` still exits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

PROGRAM = textwrap.dedent(
    """
    import asyncio
    from asyncorm import create_engine, text

    async def main() -> None:
        engine = create_engine("sqlite:///{path}")
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        raise RuntimeError("a bug before engine.dispose()")

    asyncio.run(main())
    """
)


def test_process_exits_without_dispose(tmp_path: Path) -> None:
    program = PROGRAM.format(path=tmp_path / "exit.db")
    finished = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 1
    assert "a bug before engine.dispose()" in finished.stderr
