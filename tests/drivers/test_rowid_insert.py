"""The keys a many-row INSERT … RETURNING gives back are its rows' keys, in VALUES order.

On SQLite, such an INSERT returning only its table's integer key runs without RETURNING
and the keys are read from the rowids, where the driver can prove them (see
``asyncorm._drivers.aiosqlite._insert_by_rowid``); otherwise it runs as written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from asyncorm import (
    AsyncEngine,
    AsyncSession,
    Column,
    DeclarativeBase,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    text,
)
from asyncorm._dialects.sqlite import ROWID_INSERT_ROWS
from asyncorm._drivers.aiosqlite import _insert_by_rowid
from asyncorm.exc import ProgrammingError

from ..conftest import Database

pytestmark = pytest.mark.anyio

only_sqlite = pytest.mark.parametrize("db", ["sqlite"], indirect=True)

ROWS = ROWID_INSERT_ROWS + 36  # enough rows to read their keys from rowids

metadata = MetaData()
names = Table(
    "names",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False),
)


class Base(DeclarativeBase):
    metadata = metadata


class Name(Base):
    __table__ = names


def values(first: int, count: int) -> list[dict[str, Any]]:
    return [{"name": f"n{i}"} for i in range(first, first + count)]


async def stored(engine: AsyncEngine, table: str = "names") -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT id, name FROM {table} ORDER BY name"))
        return [tuple(row) for row in rows]


async def insert_returning(engine: AsyncEngine, rows: list[dict[str, Any]]) -> list[int]:
    async with engine.begin() as conn:
        result = await conn.execute(insert(names).values(rows).returning(names.c.id))
        return list(result.scalars())


def by_name(keys: list[int], rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(zip(keys, (row["name"] for row in rows), strict=True), key=lambda r: r[1])


async def test_keys_are_the_rows_keys_in_values_order(engine: AsyncEngine) -> None:
    await metadata.create_all(engine)
    first = values(100, ROWS)
    keys = await insert_returning(engine, first)
    assert keys == list(range(1, ROWS + 1))
    async with engine.begin() as conn:  # a gap at the top of the table
        await conn.execute(delete(names).where(names.c.id > 30))
    second = values(200, ROWS)
    keys = await insert_returning(engine, second)
    assert len(set(keys)) == ROWS and keys == sorted(keys) and keys[0] > 30
    expected = sorted(by_name(list(range(1, 31)), first[:30]) + by_name(keys, second))
    assert sorted(await stored(engine)) == expected


async def test_objects_get_their_rows_keys(engine: AsyncEngine) -> None:
    await metadata.create_all(engine)
    async with AsyncSession(engine) as session:
        session.add_all([Name(name=f"early{i}") for i in range(3)])
        await session.commit()
        objects = [Name(name=f"n{i}") for i in range(600)]
        session.add_all(objects)
        await session.flush()
        keys = [(obj.id, obj.name) for obj in objects]
        await session.commit()
    rows = await stored(engine)
    assert sorted(keys) == sorted(row for row in rows if not row[1].startswith("early"))
    assert [key for key, _ in keys] == list(range(4, 604))


@only_sqlite
async def test_a_trigger_that_inserts_rows_sends_returning(engine: AsyncEngine) -> None:
    await metadata.create_all(engine)
    async with engine.begin() as conn:
        # Every row brings a shadow row of its own, which takes a rowid in between.
        await conn.execute(
            text(
                "CREATE TRIGGER shadow AFTER INSERT ON NAMES WHEN NEW.name NOT LIKE 'shadow%' "
                "BEGIN INSERT INTO names (name) VALUES ('shadow' || NEW.name); END"
            )
        )
    rows = values(0, ROWS)
    keys = await insert_returning(engine, rows)
    assert keys == list(range(1, 2 * ROWS, 2))
    assert [row for row in await stored(engine) if not row[1].startswith("shadow")] == by_name(
        keys, rows
    )


@only_sqlite
async def test_rowids_near_the_largest_send_returning(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        # Without AUTOINCREMENT (which would refuse to go past it), SQLite picks rowids at
        # random once the largest is taken.
        await conn.execute(text("CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT)"))
        await conn.execute(text(f"INSERT INTO names (id, name) VALUES ({2**63 - 20}, 'top')"))
    rows = values(0, ROWS)
    keys = await insert_returning(engine, rows)
    assert len(set(keys)) == ROWS
    assert [row for row in await stored(engine) if row[1] != "top"] == by_name(keys, rows)


@only_sqlite
async def test_a_key_that_is_not_the_rowid_is_refused(db: Database) -> None:
    # "INTEGER PRIMARY KEY DESC" is not an alias of the rowid (a quirk SQLite keeps): such
    # a key stays NULL when not given, and the rowids say nothing about it.
    engine = db.make_engine()
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE names (id INTEGER PRIMARY KEY DESC, name TEXT)"))
    with pytest.raises(ProgrammingError, match=r"declare names\.id as INTEGER PRIMARY KEY"):
        await insert_returning(engine, values(0, ROWS))
    assert await stored(engine) == []


def test_the_insert_runs_without_returning_where_the_keys_can_be_proven(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "names.db", isolation_level=None)
    raw.execute("CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT)")
    plain = "INSERT INTO names (name) VALUES (?), (?)"
    rowid = (plain, "names", "id")
    sent: list[str] = []
    raw.set_trace_callback(sent.append)
    (outcome,) = _insert_by_rowid(raw, plain + " RETURNING id", rowid, [["a", "b"], ["c", "d"]])
    assert outcome.rows == [(1,), (2,), (3,), (4,)] and outcome.keys == ("id",)
    assert sum(text.startswith("INSERT") for text in sent) == 2
    assert not any("RETURNING" in text for text in sent)
    raw.execute("CREATE TRIGGER noop AFTER INSERT ON names BEGIN SELECT 1; END")
    sent.clear()
    (outcome,) = _insert_by_rowid(raw, plain + " RETURNING id", rowid, [["e", "f"]])
    assert [tuple(row) for row in outcome.rows or []] == [(5,), (6,)]
    assert any("RETURNING" in text for text in sent)
    raw.close()
