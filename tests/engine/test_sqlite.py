"""SQLite specifics: one transaction at a time per engine, and ``:memory:`` databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from asyncorm import AsyncEngine, create_engine, exc, text

from ..conftest import Database, cancel_repeatedly
from ._helpers import only_sqlite

pytestmark = pytest.mark.anyio


@only_sqlite
async def test_50_concurrent_read_then_write_transactions_all_commit(db: Database) -> None:
    # Each task reads first (a deferred transaction takes a snapshot) and then writes: the
    # case SQLITE_BUSY_SNAPSHOT would break if two of them overlapped.
    engine = db.make_engine(connect_args={"timeout": 0.5})
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)"))
        await conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
    failures: list[BaseException] = []

    async def writer() -> None:
        try:
            async with engine.begin() as conn:
                n = await conn.scalar(text("SELECT n FROM counter WHERE id = 1"))
                await anyio.lowlevel.checkpoint()  # let the others pile up in between
                await conn.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})
        except BaseException as error:  # collected, so one failure does not hide the rest
            failures.append(error)

    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(writer)
    assert failures == []
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT n FROM counter")) == 50  # no lost update


async def _memory_engine(url: str, **options: object) -> AsyncEngine:
    engine = create_engine(url, **options)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    return engine


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://"])
async def test_memory_database_is_shared_and_isolated(url: str) -> None:
    engine = await _memory_engine(url)
    try:
        a_inserted = anyio.Event()
        order: list[str] = []

        async def a() -> None:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
                a_inserted.set()
                await anyio.sleep(0.05)  # b is waiting for the connection meanwhile
                order.append("a commits")

        async def b() -> None:
            await a_inserted.wait()
            async with engine.connect() as conn:
                await conn.execute(text("INSERT INTO t VALUES (2)"))
                order.append("b runs")
                await conn.rollback()

        async with anyio.create_task_group() as group:
            group.start_soon(a)
            group.start_soon(b)
        assert order == ["a commits", "b runs"]  # b waited instead of sharing a's transaction
        async with engine.connect() as conn:
            ids = (await conn.execute(text("SELECT id FROM t"))).scalars().all()
        assert ids == [1]  # b's rollback did not discard a's committed work
    finally:
        await engine.dispose()


async def test_memory_second_checkout_waits_up_to_pool_timeout() -> None:
    engine = await _memory_engine("sqlite:///:memory:", pool_timeout=0.1)
    try:
        holding = anyio.Event()
        release = anyio.Event()

        async def holder() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                holding.set()
                await release.wait()

        async with anyio.create_task_group() as group:
            group.start_soon(holder)
            await holding.wait()
            async with engine.connect() as conn:
                with pytest.raises(exc.PoolTimeout, match=r"pool_timeout=0\.1"):
                    await conn.execute(text("SELECT 1"))
            release.set()
    finally:
        await engine.dispose()


async def test_memory_database_survives_recycle_setting() -> None:
    engine = await _memory_engine("sqlite:///:memory:", pool_recycle=0.01)
    try:
        await anyio.sleep(0.05)
        async with engine.connect() as conn:
            await conn.execute(text("SELECT * FROM t"))  # the table is still there
    finally:
        await engine.dispose()


async def test_memory_database_survives_a_task_cancelled_again_and_again() -> None:
    """The one connection of a memory database is rolled back, not thrown away (with the
    database), however often the task holding it is cancelled while it cleans up."""
    engine = await _memory_engine("sqlite:///:memory:", pool_timeout=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (id) VALUES (1)"))
        holding = anyio.Event()

        async def holder() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("INSERT INTO t (id) VALUES (99)"))
                holding.set()
                await anyio.sleep_forever()

        task = asyncio.create_task(holder())
        await holding.wait()
        await cancel_repeatedly(task, 5)
        assert engine.pool.status()["checked_out"] == 0
        async with engine.connect() as conn:
            # The insert was rolled back; the committed row (the database) is still there.
            assert (await conn.execute(text("SELECT id FROM t"))).scalars().all() == [1]
    finally:
        await engine.dispose()


@only_sqlite
async def test_same_task_opening_a_second_transaction_is_told_why(db: Database) -> None:
    engine = db.make_engine(pool_timeout=0.1)
    async with engine.connect() as first, engine.connect() as second:
        await first.execute(text("SELECT 1"))
        with pytest.raises(exc.PoolTimeout, match="the waiting task itself"):
            await second.execute(text("SELECT 1"))


@only_sqlite
async def test_other_engines_read_while_one_writes(db: Database) -> None:
    writer_engine = db.make_engine()
    reader_engine = db.make_engine()
    async with writer_engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    async with writer_engine.connect() as writer:
        await writer.execute(text("INSERT INTO t VALUES (1)"))
        with anyio.fail_after(1):  # WAL: no waiting for the writer
            async with reader_engine.connect() as reader:
                assert await reader.scalar(text("SELECT count(*) FROM t")) == 0
        await writer.commit()


@only_sqlite
async def test_writer_in_another_engine_hits_the_busy_timeout(db: Database) -> None:
    holder = db.make_engine()
    blocked = db.make_engine(connect_args={"timeout": 0.05})
    async with holder.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    async with holder.connect() as writer, blocked.connect() as other:
        await writer.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(exc.OperationalError, match="locked"):
            await other.execute(text("INSERT INTO t VALUES (2)"))


async def test_url_options(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    engine = create_engine(f"sqlite:///{path}?timeout=1")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER)"))
    await engine.dispose()
    read_only = create_engine(f"sqlite:///{path}?mode=ro")
    try:
        async with read_only.connect() as conn:
            with pytest.raises(exc.OperationalError, match="readonly"):
                await conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        await read_only.dispose()
