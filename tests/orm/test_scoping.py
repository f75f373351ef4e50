"""Per-task sessions: each task its own identity map and connection, cleaned up after it."""

from __future__ import annotations

import asyncio
import gc

import anyio
import anyio.lowlevel
import pytest

import asyncorm
from asyncorm import AsyncSession, async_scoped_session, async_sessionmaker, func, select

from ..conftest import Database
from .models import Base, User

pytestmark = pytest.mark.anyio


async def test_each_task_gets_its_own_session(db: Database) -> None:
    engine = db.make_engine(pool_size=5)
    await Base.metadata.create_all(engine)
    scoped = async_scoped_session(async_sessionmaker(engine))
    seen: dict[int, AsyncSession] = {}

    async def work(number: int) -> None:
        session = scoped()
        seen[number] = session
        assert scoped() is session  # stable within the task
        scoped.add(User(fullname=f"user {number}"))
        await scoped.commit()
        user = await scoped.scalar(select(User).where(User.fullname == f"user {number}"))
        assert user in scoped
        await scoped.remove()

    async with anyio.create_task_group() as tg:
        for number in range(5):
            tg.start_soon(work, number)
    assert len({id(s) for s in seen.values()}) == 5
    async with AsyncSession(engine) as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 5
    assert engine.pool.status()["checked_out"] == 0


async def test_finished_task_session_is_closed_without_remove(db: Database) -> None:
    engine = db.make_engine()
    await Base.metadata.create_all(engine)
    scoped = async_scoped_session(async_sessionmaker(engine))
    sessions: list[AsyncSession] = []

    async def forgetful() -> None:
        sessions.append(scoped())
        scoped.add(User(fullname="never committed"))
        await scoped.flush()  # holds a connection and an open transaction

    await asyncio.get_running_loop().create_task(forgetful())
    for _ in range(20):
        await asyncio.sleep(0.01)
        if engine.pool.status()["checked_out"] == 0:
            break
    assert engine.pool.status()["checked_out"] == 0
    assert not sessions[0].in_transaction()
    assert not scoped.has()
    gc.collect()
    async with AsyncSession(engine) as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_plain_session_shared_by_tasks_is_refused(db: Database) -> None:
    engine = db.make_engine()
    await Base.metadata.create_all(engine)
    session = AsyncSession(engine)
    failures: list[Exception] = []

    async def use() -> None:
        try:
            for _ in range(5):
                await session.execute(select(User))
                await anyio.lowlevel.checkpoint()
        except asyncorm.exc.SessionConcurrencyError as error:
            failures.append(error)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(use)
    await session.close()
    assert failures, "concurrent use of one session must be detected"


async def test_options_for_an_existing_task_session_are_refused(db: Database) -> None:
    engine = db.make_engine()
    scoped = async_scoped_session(async_sessionmaker(engine))
    session = scoped(autoflush=False)
    assert not session.autoflush
    with pytest.raises(asyncorm.exc.InvalidRequestError, match="remove"):
        scoped(autoflush=True)
    await scoped.remove()
    assert scoped(autoflush=True).autoflush
    await scoped.remove()
