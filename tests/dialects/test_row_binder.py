"""The fast binding paths give the same values, and the same errors, as the general one.

``Compiled.bind_many`` builds a binder for a statement shape once enough rows went through
it (``GENERATE_BINDER_AFTER``); these tests bind more rows than that, so the binder runs.
``Compiled.bind`` (and ``bind_many`` before that) read the values of a shape whose every
slot is named straight from a dict of parameters. Both are compared with
``Compiled._arguments``, the general path, which also raises every error.

Every test runs with both binders: the C extension's (``_dialects/_speedups.c``) and the
generated Python one. CI sets ``ASYNCORM_REQUIRE_EXTENSIONS=1``, so a C binder that failed
to build fails here rather than leaving only the Python one tested.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import importlib
import itertools
import math
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from asyncorm import (
    JSON,
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
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    Uuid,
    bindparam,
    insert,
    select,
    update,
)
from asyncorm._dialects import base as base_module
from asyncorm._dialects.base import GENERATE_BINDER_AFTER, Compiled, Dialect
from asyncorm._dialects.postgresql import PGDialect
from asyncorm._dialects.sqlite import SQLiteDialect
from asyncorm.exc import ArgumentError, DataError

ROWS = GENERATE_BINDER_AFTER + 44


class Mood(enum.Enum):
    happy = "h"
    sad = "s"


class Level(enum.IntEnum):
    low = 1


class Name(str):
    pass


class ParamsDict(dict[str, Any]):
    pass


metadata = MetaData()
samples = Table(
    "samples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("small", SmallInteger),
    Column("big", BigInteger),
    Column("string", String(10)),
    Column("text", Text),
    Column("flag", Boolean),
    Column("real", Float),
    Column("money", Numeric(10, 2)),
    Column("day", Date),
    Column("stamp", DateTime),
    Column("stamp_tz", DateTime(timezone=True)),
    Column("clock", Time),
    Column("blob", LargeBinary),
    Column("doc", JSON),
    Column("ident", Uuid),
    Column("mood", Enum(Mood)),
    Column("counter", Integer, default=7),
)

GOOD: dict[str, list[Any]] = {
    "small": [-32768, 32767, Level.low, None],
    "big": [-(2**63), 2**63 - 1, 0],
    "string": ["", "x" * 10, "héllo ✓", Name("sub"), None],
    "text": ["x" * 1000, "emoji 🎉", ""],
    "flag": [True, False, None],
    "real": [1.5, 3, decimal.Decimal("2.5"), float("inf"), None],
    "money": [decimal.Decimal("1.005"), 12, 1.25, None],
    "day": [datetime.date(2024, 2, 29), None],
    "stamp": [datetime.datetime(2024, 1, 2, 3, 4, 5), None],
    "stamp_tz": [datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC), None],
    "clock": [datetime.time(23, 59), None],
    "blob": [b"\x00\xff", bytearray(b"ab"), memoryview(b"cd"), None],
    "doc": [{"a": [1, None]}, [1, "two"], None],
    "ident": [uuid.UUID(int=5), "12345678-1234-5678-1234-567812345678", None],
    "mood": [Mood.sad, "happy", None],
    "counter": [0, -1],
}


def c_binder() -> Any:
    try:
        return importlib.import_module("asyncorm._dialects._speedups").Binder
    except ImportError as error:
        if os.environ.get("ASYNCORM_REQUIRE_EXTENSIONS") == "1":
            pytest.fail(f"the C extension was not built ({error}); see setup.py")
        pytest.skip(f"the C extension was not built: {error}")


@pytest.fixture(autouse=True, params=["c", "python"])
def binders(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Selects the binder that the dialects built during the test generate."""
    monkeypatch.setattr(base_module, "Binder", c_binder() if request.param == "c" else None)
    return str(request.param)


@pytest.fixture(params=[PGDialect, SQLiteDialect], ids=["postgresql", "sqlite"])
def dialect(request: pytest.FixtureRequest) -> Dialect:
    dialect_class: type[Dialect] = request.param
    return dialect_class()  # its own compiled cache: each test starts without a binder


def good_rows() -> list[dict[str, Any]]:
    cycles = {key: itertools.cycle(values) for key, values in GOOD.items()}
    return [{"id": i, **{key: next(cycle) for key, cycle in cycles.items()}} for i in range(ROWS)]


def compiled_for(dialect: Dialect, statement: Any, rows: list[Any]) -> Compiled:
    return dialect.compile(statement, tuple(sorted(rows[0])))


def one_by_one(compiled: Compiled, statement: Any, rows: list[Any]) -> list[list[Any]]:
    binds = statement._generate_cache_key()[1]
    return [compiled._arguments(binds, row) for row in rows]


def test_generated_binder_gives_the_same_arguments(dialect: Dialect) -> None:
    statement = insert(samples)
    rows = good_rows()
    compiled = compiled_for(dialect, statement, rows)
    sql, arg_rows = compiled.bind_many(statement, rows)
    assert compiled._row_binder is not None
    assert sql == compiled.sql
    assert [list(args) for args in arg_rows] == one_by_one(compiled, statement, rows)
    names = [slot.name for slot in compiled._slots]
    assert [row[names.index("counter")] for row in arg_rows[:2]] == [0, -1]
    flags = [row[names.index("flag")] for row in arg_rows[:3]]
    assert flags == ([1, 0, None] if dialect.name == "sqlite" else [True, False, None])


def test_binder_is_generated_once_and_only_for_enough_rows(dialect: Dialect) -> None:
    statement = insert(samples)
    rows = good_rows()
    compiled = compiled_for(dialect, statement, rows)
    compiled.bind_many(statement, rows[:10])
    assert compiled._row_binder is None  # a small flush does not pay for generating it
    compiled.bind_many(statement, rows)
    binder = compiled._row_binder
    assert binder is not None
    assert dialect.compile(statement, tuple(sorted(rows[0]))) is compiled
    bound = compiled.bind_many(statement, rows[:3])[1]
    assert [list(args) for args in bound] == one_by_one(compiled, statement, rows[:3])
    assert compiled._row_binder is binder


def test_defaults_and_rows_of_other_kinds(dialect: Dialect) -> None:
    calls = itertools.count(100)
    table = Table(
        "defaults",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(20), default="anon"),
        Column("serial", Integer, default=lambda: next(calls)),
        Column("twice", Integer, default=lambda context: context.current_parameters["id"] * 2),
    )

    class Params(Mapping[str, Any]):
        def __init__(self, data: dict[str, Any]) -> None:
            self._data = data

        def __getitem__(self, key: str) -> Any:
            return self._data[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self._data)

        def __len__(self) -> int:
            return len(self._data)

    statement = insert(table)
    rows: list[Any] = [{"id": i, "serial": i, "twice": 0} for i in range(ROWS)]
    rows[5] = {"id": 5}  # defaults: a scalar, a callable, a callable taking the context
    rows[6] = {"id": 6, "name": None, "serial": 1, "twice": 1}
    rows[7] = Params({"id": 7, "serial": 7, "twice": 0})
    rows[8] = ParamsDict(id=8, serial=8, twice=0)
    compiled = compiled_for(dialect, statement, rows)
    _, arg_rows = compiled.bind_many(statement, rows)
    assert compiled._row_binder is not None
    assert list(arg_rows[5]) == [5, "anon", 100, 10]
    assert list(arg_rows[6]) == [6, None, 1, 1]
    assert list(arg_rows[7]) == [7, "anon", 7, 0]
    assert list(arg_rows[8]) == [8, "anon", 8, 0]
    assert list(arg_rows[9]) == [9, "anon", 9, 0]
    assert next(calls) == 101  # the callable default ran once, for the one row without it
    # The first row lacking a name the comprehension needs sends every row the long way.
    rows[0] = {"id": 0}
    _, arg_rows = compiled.bind_many(statement, rows)
    assert list(arg_rows[0]) == [0, "anon", 102, 0] and arg_rows[5] == [5, "anon", 103, 10]
    assert list(arg_rows[9]) == [9, "anon", 9, 0]


def test_named_parameters_of_an_update(dialect: Dialect) -> None:
    statement = (
        update(samples)
        .where(samples.c.id == bindparam("pk"))
        .values(string=bindparam("new_name"), big=bindparam("new_big"))
    )
    rows = [{"pk": i, "new_name": f"n{i}", "new_big": i * 10} for i in range(ROWS)]
    compiled = compiled_for(dialect, statement, rows)
    compiled.bind_many(statement, rows)  # as one joined UPDATE (test_joined_update.py)
    binder = compiled._row_binder
    assert binder is not None
    arg_rows = binder.bind(rows)
    assert arg_rows is not None
    assert [list(args) for args in arg_rows] == one_by_one(compiled, statement, rows)
    with pytest.raises(ArgumentError, match="'new_big'"):
        compiled.bind_many(statement, [*rows[:-1], {"pk": 1, "new_name": "x"}])


BAD: list[tuple[str, Any, str]] = [
    ("id", "12", "Integer expects an int"),
    ("id", True, "Integer expects an int"),
    ("id", 2**31, "out of range"),
    ("id", 1.0, "Integer expects an int"),
    ("small", 40000, "out of range"),
    ("big", 2**63, "out of range"),
    ("counter", False, "Integer expects an int"),
    ("string", 5, "expects a str"),
    ("string", b"bytes", "expects a str"),
    ("string", "x" * 11, "does not fit"),
    ("string", "lone \ud800", "surrogate"),
    ("text", "\udfff", "surrogate"),
    ("flag", 1, "Boolean expects a bool"),
    ("real", "1.5", "Float expects a float"),
    ("real", True, "Float expects a float"),
    ("money", decimal.Decimal("1e30"), "integer digits"),
    ("day", datetime.datetime(2024, 1, 1), "Date expects"),
    ("stamp", datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC), "naive"),
    ("stamp_tz", datetime.datetime(2024, 1, 1), "aware"),
    ("clock", "10:00", "Time expects"),
    ("blob", "text", "LargeBinary expects bytes"),
    ("ident", "not-a-uuid", "Uuid expects"),
    ("mood", "angry", "not a member of Mood"),
]


@pytest.mark.parametrize(("column", "value", "message"), BAD)
@pytest.mark.parametrize("at", [0, ROWS - 1])
def test_a_bad_value_raises_what_a_single_bind_raises(
    dialect: Dialect, column: str, value: Any, message: str, at: int
) -> None:
    statement = insert(samples)
    rows = good_rows()
    rows[at] = {**rows[at], column: value}
    compiled = compiled_for(dialect, statement, rows)
    compiled.bind_many(statement, rows[at + 1 :] + rows[:at])  # generate the binder
    assert compiled._row_binder is not None
    with pytest.raises(DataError, match=message) as single:
        compiled.bind(statement, rows[at])
    with pytest.raises(DataError, match=message) as many:
        compiled.bind_many(statement, rows)
    assert str(many.value) == str(single.value)
    assert str(many.value).startswith(f"invalid value for samples.{column}: ")


@pytest.mark.parametrize("column", ["string", "text"])
def test_nul_in_a_string(dialect: Dialect, column: str) -> None:
    statement = insert(samples)
    rows = good_rows()
    rows[-1] = {**rows[-1], column: "a\x00b"}
    compiled = compiled_for(dialect, statement, rows)
    if dialect.name == "postgresql":
        compiled.bind_many(statement, rows[:-1])
        assert compiled._row_binder is not None
        with pytest.raises(DataError, match=rf"samples\.{column}: PostgreSQL cannot store a NUL"):
            compiled.bind_many(statement, rows)
    else:
        _, arg_rows = compiled.bind_many(statement, rows)
        assert compiled._row_binder is not None
        assert arg_rows[-1][list(rows[-1]).index(column)] == "a\x00b"


def test_nan_in_a_float(dialect: Dialect) -> None:
    statement = insert(samples)
    rows = good_rows()
    rows[-1] = {**rows[-1], "real": float("nan")}
    compiled = compiled_for(dialect, statement, rows)
    compiled.bind_many(statement, rows[:-1])
    assert compiled._row_binder is not None
    if dialect.name == "sqlite":
        with pytest.raises(DataError, match=r"samples\.real: SQLite has no NaN"):
            compiled.bind_many(statement, rows)
    else:
        _, arg_rows = compiled.bind_many(statement, rows)
        assert math.isnan(arg_rows[-1][list(rows[-1]).index("real")])


def test_the_first_bad_row_is_reported(dialect: Dialect) -> None:
    statement = insert(samples)
    rows = good_rows()
    rows[100] = {**rows[100], "big": "x"}
    rows[200] = {**rows[200], "string": 5}
    compiled = compiled_for(dialect, statement, rows)
    compiled.bind_many(statement, good_rows())
    assert compiled._row_binder is not None
    with pytest.raises(DataError, match=r"samples\.big"):
        compiled.bind_many(statement, rows)


def test_single_bind_of_named_parameters(dialect: Dialect) -> None:
    statement = select(samples.c.id).where(
        samples.c.string == bindparam("s"), samples.c.big > bindparam("b")
    )
    compiled = dialect.compile(statement)
    assert compiled.bind(statement, {"s": "x", "b": 5, "other": 1})[1] == ["x", 5]
    assert compiled.bind(statement, {"s": Name("y"), "b": Level.low})[1] == ["y", 1]
    with pytest.raises(DataError, match=r"^invalid value for samples\.big: BigInteger expects"):
        compiled.bind(statement, {"s": "x", "b": "5"})
    with pytest.raises(DataError, match=r"^invalid value for samples\.string: .* expects a str"):
        compiled.bind(statement, {"s": 11, "b": 2**64})  # the first slot is reported
    # Only storing is bounded by the length: a longer string may be looked for.
    assert compiled.bind(statement, {"s": "x" * 11, "b": 1})[1] == ["x" * 11, 1]
    with pytest.raises(ArgumentError, match="'b'"):
        compiled.bind(statement, {"s": "x"})
    assert compiled.bind(statement, {"s": "z", "b": 6})[1] == ["z", 6]


def test_single_bind_of_values_not_in_the_parameters(dialect: Dialect) -> None:
    statement = select(samples.c.id).where(
        samples.c.string == bindparam("s", "dflt"), samples.c.big > bindparam("b")
    )
    compiled = dialect.compile(statement)
    assert compiled.bind(statement, {"s": "x", "b": 1})[1] == ["x", 1]
    assert compiled.bind(statement, {"b": 2})[1] == ["dflt", 2]  # the statement's value
    assert compiled.bind(statement, {"s": "y", "b": 3})[1] == ["y", 3]
    other = select(samples.c.id).where(
        samples.c.string == bindparam("s", "other"), samples.c.big > bindparam("b")
    )
    assert dialect.compile(other) is compiled
    assert compiled.bind(other, {"b": 4})[1] == ["other", 4]
    assert compiled.bind(other, ParamsDict(b=5))[1] == ["other", 5]
    assert compiled.bind(other, ParamsDict(s="s", b=6))[1] == ["s", 6]


def multirow_insert(rows: int) -> tuple[Any, tuple[str, ...]]:
    """A multi-row INSERT of ``samples`` (as a flush builds one), with its parameter names
    in slot order."""
    keys = [column.key for column in samples.columns if column.key != "id"]
    values = [{samples.c[key]: bindparam(f"r{i}_{key}") for key in keys} for i in range(rows)]
    names = tuple(f"r{i}_{key}" for i in range(rows) for key in keys)
    return insert(samples).values(values), names


def test_positional_binding_gives_the_arguments_of_the_dict(dialect: Dialect) -> None:
    rows = good_rows()[:20]
    statement, names = multirow_insert(len(rows))
    values = [row[name.split("_", 1)[1]] for row in rows for name in names[: len(names) // 20]]
    compiled = dialect.compile(statement)
    expected = compiled.bind(statement, dict(zip(names, values, strict=True)))
    assert compiled.bind_positional(statement, names, values) == expected
    assert compiled._positional is not None and compiled._positional[1] is not None
    # Names in another order than the slots': bound through their dict, still right.
    reordered = names[::-1]
    assert compiled.bind_positional(statement, reordered, values[::-1]) == expected
    assert compiled._positional[1] is None


def test_positional_binding_reports_a_bad_value_like_the_dict(dialect: Dialect) -> None:
    rows = good_rows()[:3]
    statement, names = multirow_insert(len(rows))
    values = [row[name.split("_", 1)[1]] for row in rows for name in names[: len(names) // 3]]
    values[names.index("r2_small")] = 2**40
    compiled = dialect.compile(statement)
    with pytest.raises(DataError) as by_dict:
        compiled.bind(statement, dict(zip(names, values, strict=True)))
    with pytest.raises(DataError) as by_position:
        compiled.bind_positional(statement, names, values)
    assert str(by_position.value) == str(by_dict.value)
    assert "small" in str(by_position.value)


def test_positional_rows_give_the_arguments_of_their_dicts(dialect: Dialect) -> None:
    statement = (
        update(samples)
        .where(samples.c.id == bindparam("pk"))
        .values(string=bindparam("new_name"), big=bindparam("new_big"))
    )
    names = ("new_big", "new_name", "pk")  # in slot order: bound by position
    compiled = dialect.compile(statement, names)
    assert tuple(slot.name for slot in compiled._slots) == names
    values = [(i * 10, f"n{i}", i) for i in range(ROWS)]
    values[3] = (Level.low, Name("sub"), 3)  # processed: not of the checks' exact classes
    values[4] = (2**62, "héllo ✓", 4)  # not ASCII: the processor checks it encodes
    by_position = compiled.bind_positional_many(statement, names, values)
    dicts = [dict(zip(names, row, strict=True)) for row in values]
    assert compiled._positional is not None and compiled._positional[1] is not None
    assert by_position == compiled.bind_many(statement, dicts)
    sql, args = compiled.bind_positional(statement, names, values[3])
    assert sql == compiled.sql and list(args) == one_by_one(compiled, statement, [dicts[3]])[0]
    values[5] = (5, "x" * 11, 5)
    with pytest.raises(DataError, match=r"samples\.string: a string of 11"):
        compiled.bind_positional_many(statement, names, values)


def test_a_joined_update_binds_every_row_once_in_order(dialect: Dialect) -> None:
    statement = (
        update(samples)
        .where(samples.c.id == bindparam("pk"))
        .values(string=bindparam("new_name"), big=bindparam("new_big"))
    )
    names = ("new_big", "new_name", "pk")
    compiled = dialect.compile(statement, names)
    values = [(i * 10, f"n{i}", i) for i in range(ROWS)]
    values[7] = (Level.low, Name("sub"), 7)  # processed
    expected = one_by_one(
        compiled, statement, [dict(zip(names, row, strict=True)) for row in values]
    )
    sql, arg_rows = compiled.bind_positional_many(statement, names, values)
    if isinstance(dialect, SQLiteDialect):
        # Chunks of 256 rows, one after another, the last one padded with rows of NULLs.
        assert sql.count("(?, ?, ?)") == 256 and len(arg_rows) == 2
        padding = [None] * 3 * (512 - ROWS)
        assert [*arg_rows[0], *arg_rows[1]] == [*itertools.chain(*expected), *padding]
    else:  # one array per column
        assert " FROM unnest(" in sql
        assert arg_rows == [[[row[n] for row in expected] for n in range(3)]]
    values.append(values[0])  # a key twice: the rows run one by one, as they are
    sql, arg_rows = compiled.bind_positional_many(statement, names, values)
    assert sql == compiled.sql
    assert [list(row) for row in arg_rows] == [*expected, expected[0]]


def test_the_c_binder_binds_rows_flat_as_it_binds_them_one_by_one() -> None:
    from asyncorm._sql.types import InlineCheck

    binder = c_binder()(
        ((0, None, True, None, None), (1, None, True, str, InlineCheck(str, max_length=3))),
        False,
        True,
    )
    rows = [(1, "ab"), [2, 5], (3, "abcd")]
    assert binder.flat(rows) == [1, "ab", 2, "5", 3, "abcd"]
    assert binder.flat(rows) == list(itertools.chain(*binder.many(rows)))
    assert binder.flat([]) == []
    with pytest.raises(IndexError):
        binder.flat([(1, "a"), (2,)])

    def shrink(value: Any) -> str:
        rows.clear()
        return str(value)

    shrinking = c_binder()(((0, None, True, shrink, None),), False, True)
    for bind in (shrinking.flat, shrinking.many):
        rows = [(1,), (2,)]
        with pytest.raises(RuntimeError, match="changed size"):
            bind(rows)


def test_the_c_binder_refuses_slots_it_cannot_check() -> None:
    from asyncorm._sql.types import InlineCheck

    binder = c_binder()
    with pytest.raises(TypeError, match="cls int"):
        binder(((0, None, True, abs, InlineCheck(str, low=1, high=2)),), False, True)
    with pytest.raises(TypeError, match="cls str"):
        binder(((0, None, True, abs, InlineCheck(int, max_length=3)),), False, True)
    with pytest.raises(TypeError, match="cls float"):
        binder(((0, None, True, abs, InlineCheck(int, no_nan=True)),), False, True)
    with pytest.raises(TypeError, match="str names"):
        binder(((0, None, True, None, None),), True, False)
    with pytest.raises(TypeError, match="must be a dict"):
        binder((("a", None, True, None, None),), True, False).one([1])
    with pytest.raises(KeyError, match="'a'"):
        binder((("a", None, True, None, None),), True, False).one({"b": 1})
    assert binder((("a", 7, False, None, None),), True, False).one({"b": 1}) == (7,)
    with pytest.raises(IndexError):
        binder(((2, None, True, None, None),), False, True).one((1, 2))
