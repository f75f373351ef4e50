"""Many parameter sets of a keyed UPDATE run as one UPDATE joined to their values, on both
databases: the rows end up as running the sets one by one would leave them."""

from __future__ import annotations

import datetime
import decimal
import enum
import logging
import uuid
from typing import Any

import pytest

from asyncorm import (
    JSON,
    AsyncEngine,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Time,
    Uuid,
    and_,
    bindparam,
    or_,
    select,
    text,
    update,
)
from asyncorm._dialects.base import JoinedUpdate
from asyncorm._dialects.postgresql import PGDialect
from asyncorm._dialects.sqlite import SQLiteDialect
from asyncorm.exc import DataError, IntegrityError

from ..conftest import Database

pytestmark = pytest.mark.anyio

MANY = 600  # more rows than a SQLite chunk holds, and not a multiple of it


class Mood(enum.Enum):
    CALM = 1
    CROSS = 2


metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20)),
    Column("seen", DateTime(timezone=True)),
    Column("day", Date),
    Column("price", Numeric(10, 2)),
    Column("flag", Boolean),
    Column("ident", Uuid),
    Column("doc", JSON),
    Column("mood", Enum(Mood)),
    Column("ratio", Float),
    Column("at", Time),
    Column("blob", LargeBinary),
    Column("big", BigInteger),
    Column("hits", Integer, onupdate=lambda: 7),
)
# Named like the alias the joined statement gives its rows of values.
v = Table("v", metadata, Column("a", Integer, primary_key=True), Column("b", Integer))
seats = Table(
    "seats",
    metadata,
    Column("row", Integer, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("holder", String(20)),
)
days = Table("days", metadata, Column("day", Date, primary_key=True), Column("n", Integer))
codes = Table(
    "codes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(10), unique=True),
)

BY_KEY = update(things).where(things.c.id == bindparam("key"))
RENAME = BY_KEY.values(name=bindparam("name"))


@pytest.fixture
async def engine(db: Database, caplog: pytest.LogCaptureFixture) -> AsyncEngine:
    caplog.set_level(logging.INFO, logger="asyncorm.engine")
    engine = db.make_engine()
    await metadata.create_all(engine)
    return engine


async def fill(engine: AsyncEngine, count: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            things.insert(), [{"id": i, "name": f"n{i}", "hits": 0} for i in range(1, count + 1)]
        )


async def names(engine: AsyncEngine) -> dict[int, str | None]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(things.c.id, things.c.name))
        return {row.id: row.name for row in rows}


def updates_sent(caplog: pytest.LogCaptureFixture) -> list[str]:
    sql = [getattr(r, "sql", "") for r in caplog.records if r.name == "asyncorm.engine"]
    return [text for text in sql if text.startswith("UPDATE")]


@pytest.mark.parametrize("count", [31, 32, 33, 256, 257, MANY])
async def test_every_row_gets_its_own_values(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture, count: int
) -> None:
    await fill(engine, count + 5)
    caplog.clear()
    rows = [{"key": i, "name": f"new{i}"} for i in range(count, 0, -1)]
    async with engine.begin() as conn:
        result = await conn.execute(RENAME, rows)
    expected = {i: f"new{i}" if i <= count else f"n{i}" for i in range(1, count + 6)}
    assert await names(engine) == expected
    (sql,) = updates_sent(caplog)
    if count < JoinedUpdate.MIN_ROWS:
        assert " FROM " not in sql
    else:
        assert " FROM " in sql
        # One statement reports the rows it changed, on PostgreSQL too (where an
        # executemany reports nothing).
        assert result.rowcount == count


PLAIN_TYPES = ("name", "seen", "day", "price", "flag", "ident", "ratio", "at", "blob", "big")


@pytest.mark.parametrize("keys", [PLAIN_TYPES, ("doc", "mood", "name")], ids=["plain", "json-enum"])
async def test_values_of_every_type_and_null(
    engine: AsyncEngine, db: Database, caplog: pytest.LogCaptureFixture, keys: tuple[str, ...]
) -> None:
    await fill(engine, MANY)
    caplog.clear()
    statement = BY_KEY.values({things.c[key]: bindparam(key) for key in keys})
    start = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.UTC)
    every: list[dict[str, Any]] = [
        {
            "name": f"é{i}",
            "seen": start + datetime.timedelta(seconds=i),
            "day": datetime.date(2024, 1, 1) + datetime.timedelta(days=i),
            "price": decimal.Decimal(i) / 100,
            "flag": i % 2 == 0,
            "ident": uuid.UUID(int=i),
            "doc": {"n": i, "tags": ["a", i]},
            "mood": Mood.CROSS if i % 3 else Mood.CALM,
            "ratio": i / 7,
            "at": datetime.time(i % 24, i % 60, 30, 250),
            "blob": bytes([i % 256, 0, 255]),
            "big": 2**40 + i,
        }
        for i in range(1, MANY + 1)
    ]
    rows = [{"key": i, **{key: values[key] for key in keys}} for i, values in enumerate(every, 1)]
    rows[10] = dict.fromkeys(rows[10]) | {"key": 11}
    async with engine.begin() as conn:
        await conn.execute(statement, rows)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(things).order_by(things.c.id))).mappings().all()
    for row, values in zip(stored, rows, strict=True):
        assert row["id"] == values["key"]
        for key, value in values.items():
            if key != "key":
                assert row[key] == value, key
        assert row["hits"] == 7  # the Python onupdate default, for every row
    # On PostgreSQL, JSON and Enum values go as plain parameters, which take the column's
    # own type (a table made elsewhere may hold them as json, or as a native enum).
    joined = db.is_sqlite or keys == PLAIN_TYPES
    assert [" FROM " in sql for sql in updates_sent(caplog)] == [joined]


async def test_duplicate_keys_run_one_by_one(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await fill(engine, MANY)
    caplog.clear()
    rows = [{"key": i, "name": f"first{i}"} for i in range(1, MANY + 1)]
    rows.append({"key": 5, "name": "last"})
    async with engine.begin() as conn:
        await conn.execute(RENAME, rows)
    stored = await names(engine)
    assert stored[5] == "last"  # in order, as executemany runs them
    assert stored[6] == "first6"
    assert [" FROM " in sql for sql in updates_sent(caplog)] == [False]


async def test_keys_that_match_nothing_change_nothing(engine: AsyncEngine) -> None:
    await fill(engine, 100)
    rows = [{"key": i, "name": f"new{i}"} for i in range(51, 151)]
    rows.append({"key": None, "name": "no key"})
    async with engine.begin() as conn:
        result = await conn.execute(RENAME, rows)
    assert result.rowcount == 50
    stored = await names(engine)
    assert len(stored) == 100
    assert stored[50] == "n50" and stored[51] == "new51" and stored[100] == "new100"


async def test_composite_keys(engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            seats.insert(), [{"row": r, "number": n} for r in range(1, 11) for n in range(1, 11)]
        )
    caplog.clear()
    statement = (
        update(seats)
        .where(and_(seats.c.row == bindparam("r"), seats.c.number == bindparam("n")))
        .values(holder=bindparam("h"))
    )
    rows = [{"r": r, "n": n, "h": f"{r}-{n}"} for r in range(1, 11) for n in range(1, 6)]
    async with engine.begin() as conn:
        result = await conn.execute(statement, rows)
        stored = await conn.execute(select(seats).order_by(seats.c.row, seats.c.number))
    assert result.rowcount == 50
    assert [(r.row, r.number, r.holder) for r in stored] == [
        (r, n, f"{r}-{n}" if n <= 5 else None) for r in range(1, 11) for n in range(1, 11)
    ]
    assert " FROM " in updates_sent(caplog)[0]


async def test_a_table_named_like_the_values_alias(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(v.insert(), [{"a": i, "b": 0} for i in range(1, 101)])
        statement = update(v).where(v.c.a == bindparam("k")).values(b=bindparam("new_b"))
        await conn.execute(statement, [{"k": i, "new_b": i * 2} for i in range(1, 101)])
        stored = await conn.execute(select(v).order_by(v.c.a))
    assert [tuple(row) for row in stored] == [(i, i * 2) for i in range(1, 101)]


async def test_other_shapes_run_as_executemany(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await fill(engine, 100)
    async with engine.begin() as conn:
        await conn.execute(
            days.insert(), [{"day": datetime.date(2024, 1, d), "n": 0} for d in range(1, 32)]
        )
    caplog.clear()
    async with engine.begin() as conn:
        # a SET value that is an expression, not one parameter
        await conn.execute(
            BY_KEY.values(hits=things.c.hits + bindparam("more")),
            [{"key": i, "more": i} for i in range(1, 101)],
        )
        # a key whose type may compare equal in SQL for values that differ in Python
        await conn.execute(
            update(days).where(days.c.day == bindparam("d")).values(n=bindparam("new_n")),
            [{"d": datetime.date(2024, 1, d), "new_n": d} for d in range(1, 32)],
        )
        hits = (await conn.execute(select(things.c.hits).order_by(things.c.id))).scalars().all()
        counts = (await conn.execute(select(days.c.n).order_by(days.c.day))).scalars().all()
    assert hits == list(range(1, 101))
    assert counts == list(range(1, 32))
    assert [" FROM " in sql for sql in updates_sent(caplog)] == [False, False]


async def test_an_invalid_value_names_its_column_and_changes_nothing(
    engine: AsyncEngine,
) -> None:
    await fill(engine, MANY)
    rows = [{"key": i, "name": f"new{i}"} for i in range(1, MANY + 1)]
    rows[500]["name"] = "x" * 21
    with pytest.raises(DataError, match=r"things\.name"):
        async with engine.begin() as conn:
            await conn.execute(RENAME, rows)
    assert set((await names(engine)).values()) == {f"n{i}" for i in range(1, MANY + 1)}


async def test_a_constraint_violation_changes_nothing(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(codes.insert(), [{"id": i, "code": f"c{i}"} for i in range(1, 101)])
    recode = update(codes).where(codes.c.id == bindparam("key")).values(code=bindparam("new"))
    rows = [{"key": i, "new": f"new{i}"} for i in range(1, 101)]
    rows[70]["new"] = "new3"  # taken by row 3 in the same statement
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(recode, rows)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(codes.c.code).order_by(codes.c.id))).scalars()
        assert stored.all() == [f"c{i}" for i in range(1, 101)]


@pytest.mark.parametrize("dialect", [PGDialect(), SQLiteDialect()], ids=["pg", "sqlite"])
@pytest.mark.parametrize(
    "statement",
    [
        RENAME.returning(things.c.id),
        update(things).values(name=bindparam("name")),  # no WHERE
        update(things).where(things.c.id > bindparam("key")).values(name=bindparam("name")),
        update(things)
        .where(or_(things.c.id == bindparam("a"), things.c.id == bindparam("b")))
        .values(name=bindparam("name")),
        BY_KEY.values(id=bindparam("new_id")),  # changes its own key
        BY_KEY.values(name=bindparam("name") + "!"),
    ],
    ids=["returning", "no-where", "range", "or", "own-key", "expression"],
)
def test_statements_that_are_not_joined(dialect: Any, statement: Any) -> None:
    names = ["key", "name", "a", "b", "new_id"]
    compiled = dialect.compile(statement, names)
    assert compiled._joined is None
    assert dialect.compile(RENAME, ["key", "name"])._joined is not None


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)  # SQLite has no native enums
async def test_a_native_enum_column_made_elsewhere(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TYPE mood AS ENUM ('CALM', 'CROSS')"))
        await conn.execute(text("CREATE TABLE moods (id INTEGER PRIMARY KEY, mood mood)"))
    moods = Table(
        "moods", MetaData(), Column("id", Integer, primary_key=True), Column("mood", Enum(Mood))
    )
    statement = update(moods).where(moods.c.id == bindparam("key")).values(mood=bindparam("m"))
    async with engine.begin() as conn:
        await conn.execute(moods.insert(), [{"id": i, "mood": Mood.CALM} for i in range(100)])
        await conn.execute(statement, [{"key": i, "m": Mood.CROSS} for i in range(50)])
        stored = (await conn.execute(select(moods.c.mood).order_by(moods.c.id))).scalars()
        assert stored.all() == [Mood.CROSS] * 50 + [Mood.CALM] * 50
