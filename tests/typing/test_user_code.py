"""``user_code.py`` is checked by mypy in CI; here it is also run, against SQLite."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from asyncorm import AsyncSession

# Loaded by path: a package named "typing" would shadow the standard library's.
_spec = importlib.util.spec_from_file_location(
    "asyncorm_typing_user_code", Path(__file__).with_name("user_code.py")
)
assert _spec is not None and _spec.loader is not None
user_code = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = user_code
_spec.loader.exec_module(user_code)

pytestmark = pytest.mark.anyio


async def test_user_code_runs(tmp_path: Path) -> None:
    engine = user_code.create_engine(f"sqlite:///{tmp_path / 'typing.db'}")
    await user_code.Base.metadata.create_all(engine)
    async with AsyncSession(engine) as session:
        user = user_code.User(fullname="typed", nickname=None)
        session.add(user)
        await session.commit()
        await session.refresh(user, ["fullname", "nickname", "addresses"])
        user_code.attributes(user)
    await user_code.queries(engine)
    await engine.dispose()
