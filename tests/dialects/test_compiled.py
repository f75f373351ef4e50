"""The compiled-statement cache and the binding plan, without a database."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest

from asyncorm import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from asyncorm._dialects import get_dialect
from asyncorm._dialects.base import Dialect
from asyncorm._dialects.postgresql import PGDialect
from asyncorm._dialects.sqlite import SQLiteDialect
from asyncorm.exc import ArgumentError, DataError

metadata = MetaData()
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20)),
    Column("seen", DateTime(timezone=True)),
    Column("balance", Numeric(10, 2)),
    Column("ident", Uuid),
    Column("doc", JSON),
)


@pytest.fixture(params=[PGDialect, SQLiteDialect], ids=["postgresql", "sqlite"])
def dialect(request: pytest.FixtureRequest) -> Dialect:
    dialect_class: type[Dialect] = request.param
    return dialect_class()


def test_get_dialect() -> None:
    assert get_dialect("postgresql").name == "postgresql"
    assert get_dialect("sqlite") is get_dialect("sqlite")
    with pytest.raises(ArgumentError, match="mysql"):
        get_dialect("mysql")


def test_same_shape_hits_the_cache_and_binds_its_own_values(dialect: Dialect) -> None:
    first = select(users.c.name).where(users.c.id == 1, users.c.name.like("a%")).limit(3)
    second = select(users.c.name).where(users.c.id == 2, users.c.name.like("b%")).limit(4)
    compiled = dialect.compile(first)
    assert dialect.cache_misses == 1
    assert dialect.compile(second) is compiled
    assert dialect.cache_misses == 1
    assert compiled.bind(first, None)[1] == [1, "a%", 3]
    assert compiled.bind(second, None)[1] == [2, "b%", 4]


def test_other_shapes_miss(dialect: Dialect) -> None:
    dialect.compile(select(users.c.id).where(users.c.id == 1))
    dialect.compile(select(users.c.id).where(users.c.id > 1))
    dialect.compile(select(users.c.id).where(users.c.name == "x"))
    dialect.compile(select(users.c.id).where(users.c.id == 1).order_by(users.c.id))
    assert dialect.cache_misses == 4


def test_in_list_length_is_not_part_of_the_key(dialect: Dialect) -> None:
    short = select(users.c.id).where(users.c.id.in_([1]))
    long = select(users.c.id).where(users.c.id.in_([1, 2, 3]))
    compiled = dialect.compile(short)
    assert dialect.compile(long) is compiled
    sql, args = compiled.bind(long, None)
    if dialect.name == "sqlite":
        assert sql.endswith("IN (?, ?, ?)") and args == [1, 2, 3]
        assert compiled.bind(short, None) == (sql.replace("?, ?, ?", "?"), [1])
    else:
        assert sql.endswith("= ANY($1)") and args == [[1, 2, 3]]


def test_insert_from_parameters_is_keyed_by_parameter_names(dialect: Dialect) -> None:
    statement = insert(users)
    one = dialect.compile(statement, ("name",))
    two = dialect.compile(statement, ("id", "name"))
    assert one is not two
    assert dialect.compile(statement, ("name",)) is one
    sql, rows = one.bind_many(statement, [{"name": "a"}, {"name": "b"}])
    assert rows == [["a"], ["b"]]
    assert "(name)" in sql


def test_named_parameters(dialect: Dialect) -> None:
    statement = select(users.c.id).where(users.c.name == bindparam("who"))
    compiled = dialect.compile(statement)
    assert compiled.bind(statement, {"who": "x"})[1] == ["x"]
    with pytest.raises(ArgumentError, match="'who'"):
        compiled.bind(statement, {})
    defaulted = select(users.c.id).where(users.c.name == bindparam("who", "dflt"))
    assert dialect.compile(defaulted).bind(defaulted, None)[1] == ["dflt"]
    assert dialect.compile(defaulted).bind(defaulted, {"who": "y"})[1] == ["y"]


def test_update_from_parameters_separates_bindparam_names(dialect: Dialect) -> None:
    statement = update(users).where(users.c.id == bindparam("uid"))
    compiled = dialect.compile(statement, ("name", "uid"))
    _, args = compiled.bind(statement, {"uid": 3, "name": "n"})
    assert args == ["n", 3]
    with pytest.raises(ArgumentError, match="nope"):
        dialect.compile(statement, ("nope", "uid"))


def test_bind_processors_convert_per_dialect(dialect: Dialect) -> None:
    when = datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    ident = uuid.UUID(int=1)
    statement = insert(users).values(seen=when, balance=1.005, ident=str(ident), doc={"a": 1})
    _, args = dialect.compile(statement).bind(statement, None)
    if dialect.name == "sqlite":
        assert args == ["2024-01-01 10:00:00", 1.01, ident.hex, '{"a": 1}']  # NUMERIC(10, 2)
    else:
        assert args == [when, decimal.Decimal("1.01"), ident, {"a": 1}]


def test_data_error_names_the_column(dialect: Dialect) -> None:
    statement = select(users.c.id).where(users.c.seen > datetime.datetime(2024, 1, 1))
    with pytest.raises(DataError, match=r"users\.seen: DateTime\(timezone=True\) needs an aware"):
        dialect.compile(statement).bind(statement, None)
    in_list = select(users.c.id).where(users.c.id.in_([1, "2"]))
    with pytest.raises(DataError, match=r"users\.id: Integer expects an int"):
        dialect.compile(in_list).bind(in_list, None)


def test_result_metadata(dialect: Dialect) -> None:
    statement = select(users.c.id, users.c.seen, func.count().label("n"), users.c.id + 1)
    compiled = dialect.compile(statement)
    assert compiled.returns_rows
    assert compiled.result_keys == ("id", "seen", "n", "anon_1")
    processors = compiled.result_processors
    if dialect.name == "sqlite":
        assert processors is not None and processors[1] is not None
        assert processors[1]("2024-01-01 10:00:00") == datetime.datetime(
            2024, 1, 1, 10, tzinfo=datetime.UTC
        )
    else:
        assert processors is None
    assert compiled.entity_spans == ((0, 1), (1, 2), (2, 3), (3, 4))
    whole = dialect.compile(select(users, users.c.name))
    assert whole.entity_spans == ((0, 6), (6, 7))
    assert not dialect.compile(update(users).values(name="x")).returns_rows
    assert dialect.compile(update(users).values(name="x").returning(users.c.id)).returns_rows


def test_text_casts_are_chosen_per_value_on_postgresql() -> None:
    dialect = PGDialect()
    statement = text("SELECT :v AS v")
    compiled = dialect.compile(statement)
    cases: list[tuple[Any, str]] = [
        (1, "SELECT $1::int8 AS v"),
        (True, "SELECT $1::bool AS v"),
        ("s", "SELECT $1 AS v"),
        (None, "SELECT $1 AS v"),
        (1.5, "SELECT $1::float8 AS v"),
        (decimal.Decimal(1), "SELECT $1::numeric AS v"),
        (2**70, "SELECT $1::numeric AS v"),
        (datetime.date(2024, 1, 1), "SELECT $1::date AS v"),
        (datetime.datetime(2024, 1, 1), "SELECT $1::timestamp AS v"),
        (datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC), "SELECT $1::timestamptz AS v"),
        (uuid.UUID(int=0), "SELECT $1::uuid AS v"),
        ({"a": 1}, "SELECT $1::jsonb AS v"),
    ]
    for value, sql in cases:
        assert compiled.bind(statement, {"v": value}) == (sql, [value])
    assert dialect.cache_misses == 1


def test_text_postgres_cast_syntax_and_escaped_colon() -> None:
    statement = text(r"SELECT :v::text AS v, '10\:30' AS t, 'a::b' AS c")
    sql, args = PGDialect().compile(statement).bind(statement, {"v": 1})
    assert sql == "SELECT $1::int8::text AS v, '10:30' AS t, 'a::b' AS c"
    assert args == [1]


def test_sqlite_text_values_are_stored_like_typed_columns() -> None:
    statement = text("SELECT :d, :u, :n")
    when = datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.UTC)
    _, args = (
        SQLiteDialect()
        .compile(statement)
        .bind(statement, {"d": when, "u": uuid.UUID(int=1), "n": decimal.Decimal("1.5")})
    )
    assert args == ["2024-01-01 12:00:00", uuid.UUID(int=1).hex, "1.5"]


def test_executemany_with_in_list_is_refused() -> None:
    statement = select(users.c.id).where(users.c.id.in_(bindparam("ids", expanding=True)))
    compiled = SQLiteDialect().compile(statement)
    assert compiled.bind(statement, {"ids": [1, 2]})[1] == [1, 2]
    with pytest.raises(ArgumentError, match="several parameter rows"):
        compiled.bind_many(statement, [{"ids": [1]}, {"ids": [2]}])


def test_cache_is_bounded() -> None:
    dialect = SQLiteDialect(cache_size=3)
    shapes = [select(*[users.c.id] * width) for width in range(1, 6)]
    for statement in shapes:
        dialect.compile(statement)
    assert len(dialect._cache) == 3
    assert dialect.cache_misses == 5
    dialect.compile(shapes[-1])  # still cached: the most recent
    assert dialect.cache_misses == 5
    dialect.compile(shapes[0])  # evicted first
    assert dialect.cache_misses == 6


def test_many_row_inserts_returning_only_the_key_may_read_rowids() -> None:
    sqlite, postgresql = SQLiteDialect(), PGDialect()
    rows = [{"name": f"n{i}"} for i in range(64)]
    keyed = insert(users).values(rows).returning(users.c.id)
    plain, table, column = sqlite.compile(keyed).rowid_insert or ("", "", "")
    assert plain == sqlite.compile(insert(users).values(rows)).sql
    assert (table, column) == ("users", "id")
    assert postgresql.compile(keyed).rowid_insert is None  # RETURNING is cheap there
    for statement in [
        insert(users).values(rows[:63]).returning(users.c.id),  # too few rows to pay
        insert(users).values(rows).returning(users.c.id, users.c.name),
        insert(users).values(rows).returning(users.c.name),
        insert(users).values([{"id": i, "name": "x"} for i in range(64)]).returning(users.c.id),
        insert(users).values(rows).on_conflict_do_nothing().returning(users.c.id),
        insert(users).values(name="one").returning(users.c.id),
    ]:
        assert sqlite.compile(statement).rowid_insert is None
