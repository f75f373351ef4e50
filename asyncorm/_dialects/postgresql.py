"""PostgreSQL through asyncpg: ``$n`` parameters, native types, ``= ANY($n)`` for IN lists.

asyncpg prepares every statement and types each parameter from its context, so:

* a parameter compared with a typed column renders as a plain ``$n`` (the SQL text stays the
  same, and asyncpg's prepared-statement cache keeps hitting);
* a parameter typed only by its Python value (``literal(5)``, ``func.coalesce(None, 3)``)
  gets a cast from its type (``$1::BIGINT``), since ``SELECT $1`` alone would be text;
* a ``text()`` parameter gets a cast chosen from its value at bind time (``$1::int8``);
  str and None get none, so ``WHERE name = :x`` and ``VALUES (:x)`` are left to PostgreSQL;
* ``IN`` lists are one array parameter: ``col = ANY($1)`` / ``col <> ALL($1)``.

asyncpg returns native Python values (``Decimal``, aware UTC ``datetime`` for
``timestamptz``, ``uuid.UUID`` subclasses), so most result columns need no conversion. JSON
values pass through unchanged: the engine registers a JSON codec for ``jsonb``.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from .._sql import types as sqltypes
from .._sql.compiler import BindSlot, KeyedUpdate, SQLCompiler
from .._sql.elements import BinaryExpression, BindParameter
from .._sql.types import Processor, refusing
from .base import Dialect, JoinedUpdate

__all__ = ["PGCompiler", "PGDialect"]

_INT8_MIN = -(1 << 63)
_INT8_MAX = (1 << 63) - 1


def _string_processor(validate: Processor) -> Processor:
    return refusing(
        validate,
        lambda value: "\x00" in value,
        "PostgreSQL cannot store a NUL character (\\x00) in a string",
        no_nul=True,
    )


def _bind_processor(type_: sqltypes.TypeEngine[Any]) -> Processor | None:
    validate = type_.validator()
    if validate is not None and type_._is_string:
        return _string_processor(validate)
    return validate


def _value_processor(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    return value


def _value_cast(value: Any) -> str:
    """The cast for a ``text()`` parameter, chosen from its (processed) value."""
    cls = value.__class__
    if cls is str or value is None:
        return ""
    if cls is bool:
        return "bool"
    if cls is int:
        return "int8" if _INT8_MIN <= value <= _INT8_MAX else "numeric"
    if cls is float:
        return "float8"
    if isinstance(value, decimal.Decimal):
        return "numeric"
    if isinstance(value, datetime.datetime):
        return "timestamptz" if value.utcoffset() is not None else "timestamp"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytea"
    if isinstance(value, uuid.UUID):
        return "uuid"
    if isinstance(value, dict):
        return "jsonb"
    return ""


class PGCompiler(SQLCompiler):
    """PostgreSQL rendering."""

    name = "postgresql"
    _bind_processors: ClassVar[dict[sqltypes.TypeEngine[Any], Processor | None]] = {}

    def bind_processor(self, type_: sqltypes.TypeEngine[Any]) -> Processor | None:
        try:
            return self._bind_processors[type_]
        except KeyError:
            processor = self._bind_processors[type_] = _bind_processor(type_)
            return processor

    def value_processor(self) -> Processor | None:
        return _value_processor

    def _is_variant(self, type_: sqltypes.TypeEngine[Any], expanding: bool) -> bool:
        return type_ is sqltypes.NULLTYPE and not expanding

    def bind_placeholder(self, slot_number: int, bind: BindParameter[Any] | None, name: str) -> str:
        text = "$" + str(slot_number + 1)
        if bind is not None and bind.inferred:
            text += "::" + self.cast_name(bind.type)
        return text

    def expanding_placeholder(self, slot_number: int, name: str) -> str:
        return "$" + str(slot_number + 1)

    def cast_name(self, type_: sqltypes.TypeEngine[Any]) -> str:
        # Lengths and precisions are left out: a cast to VARCHAR(5) or NUMERIC(5, 2) would
        # silently truncate or round the value instead of letting validation refuse it.
        if type_._is_string or isinstance(type_, sqltypes.Enum):
            return "VARCHAR"
        if isinstance(type_, sqltypes.Numeric):
            return "NUMERIC"
        return self.type_ddl(type_)

    def visit_in_binary(self, binary: BinaryExpression[Any], **kw: Any) -> str:
        if isinstance(binary.right, BindParameter) and binary.right.expanding:
            return (
                self._operand(binary.left, binary.operator, False, **kw)
                + " = ANY("
                + self.process(binary.right, **kw)
                + ")"
            )
        return self._render_binary(binary, "IN", **kw)

    def visit_not_in_binary(self, binary: BinaryExpression[Any], **kw: Any) -> str:
        if isinstance(binary.right, BindParameter) and binary.right.expanding:
            return (
                self._operand(binary.left, binary.operator, False, **kw)
                + " <> ALL("
                + self.process(binary.right, **kw)
                + ")"
            )
        return self._render_binary(binary, "NOT IN", **kw)

    def column_type_ddl(self, column: Any) -> str:
        text = self.type_ddl(column.type)
        if column._autoincrements:
            text += " GENERATED BY DEFAULT AS IDENTITY"
        return text

    def type_float(self, type_: Any) -> str:
        return "DOUBLE PRECISION"

    def type_time(self, type_: Any) -> str:
        return "TIME WITHOUT TIME ZONE"

    def type_large_binary(self, type_: Any) -> str:
        return "BYTEA"

    def type_json(self, type_: Any) -> str:
        return "JSONB"


# The types whose arrays assign to a column as their single values do. Left out: JSON and
# Enum, which a table made elsewhere may store as ``json`` (a ``jsonb`` array would reorder
# its keys) or as a native enum (no cast from ``VARCHAR``), where a plain parameter takes
# the column's own type.
_UNNEST_TYPES = (
    sqltypes.Integer,
    sqltypes.Float,
    sqltypes.Numeric,
    sqltypes.String,
    sqltypes.Boolean,
    sqltypes.Date,
    sqltypes.DateTime,
    sqltypes.Time,
    sqltypes.LargeBinary,
    sqltypes.Uuid,
)


class _UnnestUpdate(JoinedUpdate):
    """``UPDATE t SET a = v.p0 FROM unnest($1::INTEGER[], $2::BIGINT[]) AS v(p0, p1)
    WHERE t.id = v.p1``: one array parameter per column, so one SQL text (and one prepared
    statement) for any number of rows."""

    __slots__ = ("_sql",)

    def __init__(self, keyed: KeyedUpdate, compiler: PGCompiler) -> None:
        super().__init__(keyed)
        columns = (*keyed.assignments, *keyed.keys)
        alias, sets, where = self._clauses(compiler, lambda n: f"p{n}")
        arrays = ", ".join(
            f"${n}::{compiler.cast_name(column.type)}[]" for n, column in enumerate(columns, 1)
        )
        names = ", ".join(f"p{n}" for n in range(len(columns)))
        self._sql = (
            f"UPDATE {keyed.table} SET {sets} FROM unnest({arrays}) AS {alias}({names}) "
            f"WHERE {where}"
        )

    def _join(self, values: list[Any], count: int, width: int) -> tuple[str, list[Sequence[Any]]]:
        return self._sql, [[values[n::width] for n in range(width)]]


class PGDialect(Dialect):
    """PostgreSQL through asyncpg."""

    name = "postgresql"
    compiler_class = PGCompiler

    def _make_result_processor(self, type_: sqltypes.TypeEngine[Any]) -> Processor | None:
        if isinstance(type_, sqltypes.Enum) and type_.enum_class is not None:
            members = type_.enum_class.__members__

            def enum_member(value: Any) -> Any:
                return None if value is None else members[value]

            return enum_member
        return None

    def joined_update(self, keyed: KeyedUpdate, compiler: SQLCompiler) -> JoinedUpdate | None:
        assert isinstance(compiler, PGCompiler)
        if not all(isinstance(c.type, _UNNEST_TYPES) for c in keyed.assignments):
            return None
        return _UnnestUpdate(keyed, compiler)

    def variant_token(self, slot: BindSlot, value: Any) -> Any:
        return _value_cast(value)

    def variant_placeholder(self, slot_number: int, token: Any) -> str:
        return "$" + str(slot_number + 1) + ("::" + token if token else "")
