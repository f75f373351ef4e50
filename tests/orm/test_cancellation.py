"""Cancellation is a normal event: a cancelled session leaks no connection, commits nothing."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from asyncorm import AsyncSession, func, inspect, select, text

from ..conftest import Database, cancel_repeatedly, idle_in_transaction
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


# A trigger that makes every INSERT into users take seconds.
SLOW_INSERT_TRIGGER = {
    "postgresql": [
        "CREATE FUNCTION slow_insert() RETURNS trigger AS "
        "$$ BEGIN PERFORM pg_sleep(5); RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER slow_insert BEFORE INSERT ON users "
        "FOR EACH ROW EXECUTE FUNCTION slow_insert()",
    ],
    "sqlite": [
        "CREATE TRIGGER slow_insert AFTER INSERT ON users BEGIN "
        "SELECT count(*) FROM (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
        "WHERE x < 300000000) SELECT x FROM n); END",
    ],
}


async def test_commit_cancelled_inside_its_one_statement_commits_nothing(db: Database) -> None:
    """The commit of a one-statement flush sends the COMMIT with the statement; cancelled
    while the statement runs, nothing is committed and the object gets no identity."""
    engine = db.make_engine()
    await Base.metadata.create_all(engine)
    async with engine.begin() as conn:
        for statement in SLOW_INSERT_TRIGGER[db.name]:
            await conn.execute(text(statement))

    user = User(fullname="cancelled with its commit")
    with anyio.move_on_after(0.3) as scope:
        async with AsyncSession(engine) as session:
            session.add(user)
            await session.commit()
    assert scope.cancelled_caught
    assert inspect(user).key is None  # never became persistent

    assert engine.pool.status()["checked_out"] == 0
    async with engine.begin() as conn:
        await conn.execute(
            text("DROP TRIGGER slow_insert" + (" ON users" if db.name == "postgresql" else ""))
        )
    async with AsyncSession(engine) as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
        session.add(User(fullname="after the cancellation"))
        await session.commit()
        names = (await session.scalars(select(User.fullname))).all()
        assert names == ["after the cancellation"]


@pytest.mark.parametrize("cancels", [1, 2, 3, 5])
async def test_session_cancelled_again_and_again_gives_its_connection_back(
    db: Database, cancels: int
) -> None:
    """A task holding a session with flushed changes, cancelled again while it cleans up
    (nested timeouts, a task group's teardown): the changes are rolled back and the
    connection is returned, so the engine (on SQLite: its one connection) stays usable."""
    engine = db.make_engine(pool_timeout=5)
    await Base.metadata.create_all(engine)
    holding = anyio.Event()
    pids: list[int] = []

    async def holder() -> None:
        async with AsyncSession(engine) as session:
            session.add(User(fullname="never committed"))
            await session.flush()
            if db.is_postgresql:
                pids.append(await session.scalar(text("SELECT pg_backend_pid()")))
            holding.set()
            await anyio.sleep_forever()

    task = asyncio.create_task(holder())
    await holding.wait()
    await cancel_repeatedly(task, cancels)
    assert task.cancelled()
    assert engine.pool.status()["checked_out"] == 0
    async with AsyncSession(engine) as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
        session.add(User(fullname="after the cancellations"))
        await session.commit()
    assert engine.pool.status()["checked_out"] == 0
    if pids:
        assert not await idle_in_transaction(pids[0])
