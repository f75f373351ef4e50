"""Cancellation is a normal event: a cancelled session leaks no connection, commits nothing."""

from __future__ import annotations

import anyio
import pytest

from asyncorm import AsyncSession, func, select, text

from ..conftest import Database
from .models import Base, User

pytestmark = pytest.mark.anyio

# A statement that runs for seconds on each database, so the cancellation lands inside it.
SLOW = {
    "postgresql": "SELECT pg_sleep(5)",
    "sqlite": (
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 300000000) "
        "SELECT count(*) FROM n"
    ),
}


async def test_cancelled_session_leaves_nothing_behind(db: Database) -> None:
    engine = db.make_engine()
    await Base.metadata.create_all(engine)

    with anyio.move_on_after(0.3) as scope:
        async with AsyncSession(engine) as session:
            session.add(User(fullname="never committed"))
            await session.flush()  # the INSERT is sent; the transaction is open
            await session.execute(text(SLOW[db.name]))
            await session.commit()
    assert scope.cancelled_caught

    assert engine.pool.status()["checked_out"] == 0
    async with AsyncSession(engine) as session:  # the engine is healthy afterwards
        assert await session.scalar(select(func.count()).select_from(User)) == 0
        session.add(User(fullname="after the cancellation"))
        await session.commit()
    async with AsyncSession(engine) as session:
        names = (await session.scalars(select(User.fullname))).all()
        assert names == ["after the cancellation"]
