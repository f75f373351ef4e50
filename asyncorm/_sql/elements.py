"""Column expressions: bound parameters, operators, functions, labels, textual SQL."""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..exc import ArgumentError
from . import operators as ops
from . import types as sqltypes
from .base import ClauseElement, Executable
from .cache_key import AnonMap

if TYPE_CHECKING:
    from .selectable import FromClause, ScalarSelect

__all__ = [
    "BinaryExpression",
    "BindParameter",
    "BooleanClauseList",
    "Cast",
    "ColumnClause",
    "ColumnElement",
    "ColumnOperators",
    "False_",
    "FunctionElement",
    "Label",
    "Null",
    "TextClause",
    "True_",
    "UnaryExpression",
    "and_",
    "asc",
    "bindparam",
    "cast",
    "coerce_column",
    "coerce_where",
    "desc",
    "false",
    "func",
    "literal",
    "literal_column",
    "not_",
    "null",
    "or_",
    "text",
    "true",
]

_T = TypeVar("_T")


class _NoValue:
    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Any = _NoValue()

# A high precedence: the element is atomic and never needs parentheses.
ATOM = 100


class ColumnOperators:
    """Every column operator, implemented on top of ``__clause_element__()``.

    Inherit it and implement ``__clause_element__()`` (as ORM attributes do) to get
    ``==``, ``in_``, ``like``, ``desc`` and the rest.
    """

    __slots__ = ()

    def __clause_element__(self) -> ColumnElement[Any]:
        raise NotImplementedError

    __hash__ = object.__hash__

    def __eq__(self, other: Any) -> BinaryExpression[bool]:  # type: ignore[override]
        return _compare(self.__clause_element__(), ops.EQ, other)

    def __ne__(self, other: Any) -> BinaryExpression[bool]:  # type: ignore[override]
        return _compare(self.__clause_element__(), ops.NE, other)

    def __lt__(self, other: Any) -> BinaryExpression[bool]:
        return _compare(self.__clause_element__(), ops.LT, other)

    def __le__(self, other: Any) -> BinaryExpression[bool]:
        return _compare(self.__clause_element__(), ops.LE, other)

    def __gt__(self, other: Any) -> BinaryExpression[bool]:
        return _compare(self.__clause_element__(), ops.GT, other)

    def __ge__(self, other: Any) -> BinaryExpression[bool]:
        return _compare(self.__clause_element__(), ops.GE, other)

    def __add__(self, other: Any) -> ColumnElement[Any]:
        return _arithmetic(self.__clause_element__(), ops.ADD, other)

    def __radd__(self, other: Any) -> ColumnElement[Any]:
        return _arithmetic(self.__clause_element__(), ops.ADD, other, reverse=True)

    def __sub__(self, other: Any) -> ColumnElement[Any]:
        return _arithmetic(self.__clause_element__(), ops.SUB, other)

    def __rsub__(self, other: Any) -> ColumnElement[Any]:
        return _arithmetic(self.__clause_element__(), ops.SUB, other, reverse=True)

    def __mul__(self, other: Any) -> ColumnElement[Any]:
        return _arithmetic(self.__clause_element__(), ops.MUL, other)

    def __rmul__(self, other: Any) -> ColumnElement[Any]:
        return _arithmetic(self.__clause_element__(), ops.MUL, other, reverse=True)

    def __truediv__(self, other: Any) -> ColumnElement[Any]:
        return _arithmetic(self.__clause_element__(), ops.DIV, other)

    def __rtruediv__(self, other: Any) -> ColumnElement[Any]:
        return _arithmetic(self.__clause_element__(), ops.DIV, other, reverse=True)

    def __floordiv__(self, other: Any) -> ColumnElement[Any]:
        return _arithmetic(self.__clause_element__(), ops.FLOORDIV, other)

    def __rfloordiv__(self, other: Any) -> ColumnElement[Any]:
        return _arithmetic(self.__clause_element__(), ops.FLOORDIV, other, reverse=True)

    def __mod__(self, other: Any) -> ColumnElement[Any]:
        return _arithmetic(self.__clause_element__(), ops.MOD, other)

    def __neg__(self) -> ColumnElement[Any]:
        element = self.__clause_element__()
        return UnaryExpression(element, operator="-", type_=element.type)

    def __invert__(self) -> ColumnElement[bool]:
        return not_(self.__clause_element__())

    def __and__(self, other: Any) -> ColumnElement[bool]:
        return and_(self.__clause_element__(), other)

    def __or__(self, other: Any) -> ColumnElement[bool]:
        return or_(self.__clause_element__(), other)

    def concat(self, other: Any) -> ColumnElement[Any]:
        """``self || other``."""
        left = self.__clause_element__()
        return BinaryExpression(left, _operand(left, other), ops.CONCAT, left.type)

    def in_(self, values: Any) -> BinaryExpression[bool]:
        """``IN``: a list of values (one expanding parameter), or a subquery."""
        return _in(self.__clause_element__(), values, ops.IN)

    def not_in(self, values: Any) -> BinaryExpression[bool]:
        return _in(self.__clause_element__(), values, ops.NOT_IN)

    notin_ = not_in

    def is_(self, other: Any) -> BinaryExpression[bool]:
        return _compare(self.__clause_element__(), ops.IS, other)

    def is_not(self, other: Any) -> BinaryExpression[bool]:
        return _compare(self.__clause_element__(), ops.IS_NOT, other)

    isnot = is_not

    def like(self, other: Any, escape: str | None = None) -> BinaryExpression[bool]:
        """``LIKE``: case-sensitive on PostgreSQL, ASCII case-insensitive on SQLite."""
        return _like(self.__clause_element__(), ops.LIKE, other, escape)

    def not_like(self, other: Any, escape: str | None = None) -> BinaryExpression[bool]:
        return _like(self.__clause_element__(), ops.NOT_LIKE, other, escape)

    def ilike(self, other: Any, escape: str | None = None) -> BinaryExpression[bool]:
        """Case-insensitive ``LIKE`` on both databases."""
        return _like(self.__clause_element__(), ops.ILIKE, other, escape)

    def not_ilike(self, other: Any, escape: str | None = None) -> BinaryExpression[bool]:
        return _like(self.__clause_element__(), ops.NOT_ILIKE, other, escape)

    def startswith(self, other: Any) -> BinaryExpression[bool]:
        """Starts with ``other`` taken literally: ``%``, ``_`` and ``\\`` are escaped."""
        return _pattern(self.__clause_element__(), other, prefix=False, suffix=True)

    def endswith(self, other: Any) -> BinaryExpression[bool]:
        return _pattern(self.__clause_element__(), other, prefix=True, suffix=False)

    def contains(self, other: Any) -> BinaryExpression[bool]:
        return _pattern(self.__clause_element__(), other, prefix=True, suffix=True)

    def between(self, lower: Any, upper: Any) -> ColumnElement[bool]:
        left = self.__clause_element__()
        return Between(left, _operand(left, lower), _operand(left, upper))

    def asc(self) -> UnaryExpression[Any]:
        return UnaryExpression(self.__clause_element__(), modifier="ASC")

    def desc(self) -> UnaryExpression[Any]:
        return UnaryExpression(self.__clause_element__(), modifier="DESC")

    def nulls_first(self) -> UnaryExpression[Any]:
        return UnaryExpression(self.__clause_element__(), modifier="NULLS FIRST")

    def nulls_last(self) -> UnaryExpression[Any]:
        return UnaryExpression(self.__clause_element__(), modifier="NULLS LAST")

    def distinct(self) -> UnaryExpression[Any]:
        """``DISTINCT expr``, as in ``func.count(col.distinct())``."""
        element = self.__clause_element__()
        return UnaryExpression(element, operator="DISTINCT", type_=element.type)

    def label(self, name: str) -> Label[Any]:
        return Label(name, self.__clause_element__())

    def cast(self, type_: Any) -> Cast[Any]:
        return Cast(self.__clause_element__(), type_)

    def op(self, operator: str, precedence: int = 5) -> Any:
        """A custom binary operator: ``col.op("~")("^a")``."""
        custom = _custom_operator(operator, precedence)
        left = self.__clause_element__()

        def apply(other: Any) -> BinaryExpression[Any]:
            return BinaryExpression(left, _operand(left, other), custom, sqltypes.NULLTYPE)

        return apply


_custom_operators: dict[tuple[str, int], ops.Operator] = {}


def _custom_operator(sql: str, precedence: int) -> ops.Operator:
    key = (sql, precedence)
    operator = _custom_operators.get(key)
    if operator is None:
        operator = _custom_operators[key] = ops.Operator(f"custom {sql}", sql, precedence)
    return operator


class ColumnElement(ColumnOperators, ClauseElement, Generic[_T]):
    """A SQL expression with a type, usable in a columns clause or a WHERE clause."""

    __visit_name__ = "column_element"
    type: sqltypes.TypeEngine[Any] = sqltypes.NULLTYPE
    # The key this expression gets in a result row when it is not labelled; None means an
    # anonymous name is chosen when the statement is compiled.
    _result_name: str | None = None
    _bind_name_hint: str = "param"
    _precedence: int = ATOM

    def __clause_element__(self) -> ColumnElement[_T]:
        return self

    @property
    def _from_objects(self) -> tuple[FromClause, ...]:
        return ()

    def __bool__(self) -> bool:
        raise TypeError(
            "the truth value of a SQL expression is undefined; use and_()/or_()/not_() "
            "or the & | ~ operators instead of and/or/not"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {str(self)!r}>"


def _unique_froms(*groups: Iterable[FromClause]) -> tuple[FromClause, ...]:
    seen: dict[int, FromClause] = {}
    for group in groups:
        for item in group:
            seen.setdefault(id(item), item)
    return tuple(seen.values())


class BindParameter(ColumnElement[_T]):
    """A value sent as a bound parameter, never spliced into SQL.

    ``key`` is the parameter's name for named parameters (``bindparam("x")``, ``text(":x")``)
    and None for literal values (``col == 5``), whose value lives in the statement.
    ``inferred`` means the type came from the Python value rather than from a column, so
    PostgreSQL renders a cast (asyncpg's prepared statements could not type the parameter).
    ``origin`` names the column the value is for, for error messages.
    """

    __visit_name__ = "bindparam"

    def __init__(
        self,
        key: str | None,
        value: Any = NO_VALUE,
        type_: Any = None,
        *,
        expanding: bool = False,
        inferred: bool = False,
        origin: str | None = None,
        name_hint: str | None = None,
    ) -> None:
        self.key = key
        self.value = value
        if type_ is None:
            if value is NO_VALUE or expanding:
                self.type = sqltypes.NULLTYPE
            else:
                self.type = sqltypes.type_for_value(value)
                inferred = True
        else:
            self.type = sqltypes.to_instance(type_)
        self.expanding = expanding
        self.inferred = inferred and self.type is not sqltypes.NULLTYPE
        self.origin = origin or key
        self._bind_name_hint = name_hint or key or "param"

    @property
    def required(self) -> bool:
        return self.value is NO_VALUE

    def _with_type(self, type_: sqltypes.TypeEngine[Any], origin: str | None) -> BindParameter[_T]:
        new = BindParameter.__new__(BindParameter)
        new.__dict__.update(self.__dict__)
        new.type = type_
        new.inferred = False
        if new.origin is None or new.origin == new.key:
            new.origin = origin or new.origin
        return new

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        binds.append(self)
        # The type's own key, not the type: hashing it then stays in C.
        return ("bind", self.key, self.type._cache_key, self.expanding, self.inferred)


class Null(ColumnElement[None]):
    """SQL ``NULL``."""

    __visit_name__ = "null"

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return "null"


class True_(ColumnElement[bool]):
    """SQL true (``true`` on PostgreSQL, ``1`` on SQLite)."""

    __visit_name__ = "true"
    type = sqltypes.Boolean()

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return "true"


class False_(ColumnElement[bool]):
    """SQL false."""

    __visit_name__ = "false"
    type = sqltypes.Boolean()

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return "false"


_NULL = Null()
_TRUE = True_()
_FALSE = False_()
_BOOLEAN = sqltypes.Boolean()
_STRING = sqltypes.String()
_INTEGER = sqltypes.Integer()


def null() -> Null:
    return _NULL


def true() -> True_:
    return _TRUE


def false() -> False_:
    return _FALSE


class BinaryExpression(ColumnElement[_T]):
    """``left <operator> right``."""

    __visit_name__ = "binary"

    def __init__(
        self,
        left: ColumnElement[Any],
        right: ColumnElement[Any],
        operator: ops.Operator,
        type_: sqltypes.TypeEngine[Any],
        escape: str | None = None,
    ) -> None:
        self.left = left
        self.right = right
        self.operator = operator
        self.type = type_
        self.escape = escape
        self._precedence = operator.precedence

    @property
    def _from_objects(self) -> tuple[FromClause, ...]:
        return _unique_froms(self.left._from_objects, self.right._from_objects)

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return (
            self.operator.name,
            self.left._gen_cache_key(anon_map, binds),
            self.right._gen_cache_key(anon_map, binds),
            self.escape,
        )

    def __bool__(self) -> bool:
        # Lets ``column in [a, b]`` and dict lookups work: ``a == b`` is truthy only when
        # both sides are the same object, as with plain Python objects.
        if self.operator is ops.EQ:
            return self.left is self.right
        if self.operator is ops.NE:
            return self.left is not self.right
        return super().__bool__()


class Between(ColumnElement[bool]):
    """``expr BETWEEN lower AND upper``."""

    __visit_name__ = "between"
    type = _BOOLEAN
    _precedence = ops.COMPARISON_PRECEDENCE

    def __init__(
        self, element: ColumnElement[Any], lower: ColumnElement[Any], upper: ColumnElement[Any]
    ) -> None:
        self.element = element
        self.lower = lower
        self.upper = upper

    @property
    def _from_objects(self) -> tuple[FromClause, ...]:
        return _unique_froms(
            self.element._from_objects, self.lower._from_objects, self.upper._from_objects
        )

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return (
            "between",
            self.element._gen_cache_key(anon_map, binds),
            self.lower._gen_cache_key(anon_map, binds),
            self.upper._gen_cache_key(anon_map, binds),
        )


class ExpressionList(ColumnElement[Any]):
    """A parenthesised, comma-separated list: the right side of ``IN (a, b)``."""

    __visit_name__ = "expression_list"

    def __init__(self, elements: Sequence[ColumnElement[Any]]) -> None:
        self.elements = tuple(elements)

    @property
    def _from_objects(self) -> tuple[FromClause, ...]:
        return _unique_froms(*(element._from_objects for element in self.elements))

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return ("list", *(element._gen_cache_key(anon_map, binds) for element in self.elements))


class BooleanClauseList(ColumnElement[bool]):
    """Criteria joined by ``AND`` or ``OR``."""

    __visit_name__ = "boolean_clause_list"
    type = _BOOLEAN

    def __init__(self, operator: ops.Operator, clauses: Sequence[ColumnElement[Any]]) -> None:
        self.operator = operator
        self.clauses = tuple(clauses)
        self._precedence = operator.precedence

    @property
    def _from_objects(self) -> tuple[FromClause, ...]:
        return _unique_froms(*(clause._from_objects for clause in self.clauses))

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return (
            self.operator.name,
            *(clause._gen_cache_key(anon_map, binds) for clause in self.clauses),
        )


class UnaryExpression(ColumnElement[_T]):
    """A prefix operator (``NOT x``, ``-x``, ``DISTINCT x``) or a suffix modifier
    (``x DESC``, ``x NULLS FIRST``)."""

    __visit_name__ = "unary"

    def __init__(
        self,
        element: ColumnElement[Any],
        *,
        operator: str | None = None,
        modifier: str | None = None,
        type_: sqltypes.TypeEngine[Any] | None = None,
    ) -> None:
        self.element = element
        self.operator = operator
        self.modifier = modifier
        self.type = type_ if type_ is not None else element.type
        if operator == "NOT":
            self._precedence = ops.NOT_PRECEDENCE

    @property
    def _from_objects(self) -> tuple[FromClause, ...]:
        return self.element._from_objects

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return (
            "unary",
            self.operator,
            self.modifier,
            self.element._gen_cache_key(anon_map, binds),
        )


class Label(ColumnElement[_T]):
    """``expr AS name``; its result key is ``name``."""

    __visit_name__ = "label"

    def __init__(self, name: str, element: ColumnElement[_T]) -> None:
        self.name = name
        self.element = coerce_column(element)
        self.type = self.element.type
        self._result_name = name

    @property
    def _from_objects(self) -> tuple[FromClause, ...]:
        return self.element._from_objects

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return ("label", self.name, self.element._gen_cache_key(anon_map, binds))


class LabelReference(ColumnElement[Any]):
    """``order_by("name")``: refers to a label of the enclosing SELECT by name."""

    __visit_name__ = "label_reference"

    def __init__(self, name: str) -> None:
        self.name = name

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return ("label_reference", self.name)


class ColumnClause(ColumnElement[_T]):
    """A named column of a FROM object (an alias's or subquery's column, or the base of
    ``Column``), or a raw SQL fragment from ``literal_column()``."""

    __visit_name__ = "column"

    def __init__(
        self,
        name: str,
        type_: Any = None,
        table: FromClause | None = None,
        *,
        is_literal: bool = False,
        proxied: ColumnElement[Any] | None = None,
    ) -> None:
        self.name = name
        self.key = name
        self.type = sqltypes.to_instance(type_)
        self.table = table
        self.is_literal = is_literal
        self._proxied = proxied
        self._result_name = name
        self._bind_name_hint = name

    @property
    def _from_objects(self) -> tuple[FromClause, ...]:
        return (self.table,) if self.table is not None else ()

    @property
    def _origin(self) -> str:
        table_name = getattr(self.table, "name", None)
        return f"{table_name}.{self.name}" if table_name else self.name

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        if self.table is None:
            return ("column", self.name, self.type._cache_key, self.is_literal)
        return (self.table._from_cache_key(anon_map, binds), self.name)


class Cast(ColumnElement[_T]):
    """``CAST(expr AS type)``."""

    __visit_name__ = "cast"

    def __init__(self, element: Any, type_: Any) -> None:
        self.type = sqltypes.to_instance(type_)
        self.element = _operand_with_type(element, self.type)
        self._result_name = self.element._result_name

    @property
    def _from_objects(self) -> tuple[FromClause, ...]:
        return self.element._from_objects

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return ("cast", self.type._cache_key, self.element._gen_cache_key(anon_map, binds))


def cast(expression: Any, type_: Any) -> Cast[Any]:
    """``CAST(expression AS type)``."""
    return Cast(expression, type_)


class FunctionElement(ColumnElement[_T]):
    """A SQL function call, ``func.name(*args)``; ``func.count()`` is ``count(*)``."""

    __visit_name__ = "function"

    def __init__(
        self, name: str, args: Sequence[Any], type_: Any = None, packages: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.packages = packages
        self.args = tuple(_function_argument(arg) for arg in args)
        self.type = (
            sqltypes.to_instance(type_) if type_ is not None else _function_type(name, self.args)
        )
        self._result_name = name

    @property
    def _from_objects(self) -> tuple[FromClause, ...]:
        return _unique_froms(*(arg._from_objects for arg in self.args))

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return (
            "function",
            self.packages,
            self.name,
            self.type._cache_key,
            *(arg._gen_cache_key(anon_map, binds) for arg in self.args),
        )


def _function_argument(arg: Any) -> ColumnElement[Any]:
    element = _as_clause(arg)
    if element is not None:
        return element
    if arg is None:
        return BindParameter(None, None, sqltypes.NULLTYPE)
    return BindParameter(None, arg)


_STRING_FUNCTIONS = frozenset(
    {"lower", "upper", "trim", "ltrim", "rtrim", "substr", "substring", "replace", "concat"}
)
_INTEGER_FUNCTIONS = frozenset({"count", "length", "char_length"})
_SAME_AS_ARGUMENT = frozenset({"max", "min", "sum", "coalesce", "abs", "nullif", "round"})
_TIMESTAMP_FUNCTIONS = frozenset({"now", "current_timestamp", "localtimestamp"})


def _function_type(name: str, args: tuple[ColumnElement[Any], ...]) -> sqltypes.TypeEngine[Any]:
    lowered = name.lower()
    if lowered in _INTEGER_FUNCTIONS:
        return sqltypes.BigInteger()
    if lowered in _STRING_FUNCTIONS:
        return _STRING
    if lowered in _TIMESTAMP_FUNCTIONS:
        return sqltypes.DateTime(timezone=True)
    if lowered in _SAME_AS_ARGUMENT:
        for arg in args:
            if arg.type is not sqltypes.NULLTYPE:
                return arg.type
    if lowered == "avg" and args:
        if isinstance(args[0].type, sqltypes.Float):
            return args[0].type
        if args[0].type._is_numeric:
            return sqltypes.Numeric()
    return sqltypes.NULLTYPE


class _FunctionGenerator:
    """``func.anything(*args)``; ``func.schema.name(...)`` for qualified names."""

    def __init__(self, packages: tuple[str, ...] = ()) -> None:
        self._packages = packages

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name.endswith("_"):
            name = name[:-1]
        return _FunctionGenerator((*self._packages, name))

    def __call__(self, *args: Any, type_: Any = None) -> FunctionElement[Any]:
        if not self._packages:
            raise ArgumentError("name the function: func.count(), func.lower(column), ...")
        *packages, name = self._packages
        return FunctionElement(name, args, type_, tuple(packages))


func: Any = _FunctionGenerator()
"""Any SQL function: ``func.count()``, ``func.lower(users.c.name)``, ``func.now()``."""


# ":name", but not "::cast" or "a:b"; "\\:" escapes a colon. ":name::type" is a parameter
# with a PostgreSQL cast.
TEXT_BIND_NAME = re.compile(r"(?<![:\w\\]):(\w+)(?!:(?!:))")


class TextClause(Executable, ColumnElement[Any]):
    """Literal SQL with ``:name`` parameters: ``text("SELECT * FROM t WHERE id = :id")``.

    ``\\:`` is a literal colon; ``::`` (a PostgreSQL cast) is left alone. Values come from the
    execution parameters, or from ``.bindparams(name=value)``.
    """

    __visit_name__ = "textclause"
    _precedence = 0

    def __init__(self, sql: str) -> None:
        self.text = sql
        self.bind_names = tuple(dict.fromkeys(TEXT_BIND_NAME.findall(sql)))
        self.binds: dict[str, BindParameter[Any]] = {}
        self.result_columns: tuple[tuple[str, sqltypes.TypeEngine[Any]], ...] | None = None

    def bindparams(self, *binds: BindParameter[Any], **values: Any) -> TextClause:
        """A copy with values (or typed ``bindparam()`` objects) for some parameters."""
        new = self._generate()
        new.binds = dict(self.binds)
        for bind in binds:
            if bind.key is None or bind.key not in self.bind_names:
                raise ArgumentError(f"this text() has no parameter :{bind.key}")
            new.binds[bind.key] = bind
        for name, value in values.items():
            if name not in self.bind_names:
                raise ArgumentError(f"this text() has no parameter :{name}")
            existing = new.binds.get(name)
            type_ = existing.type if existing is not None else sqltypes.NULLTYPE
            new.binds[name] = BindParameter(name, value, type_)
        return new

    def columns(self, *names: str, **types: Any) -> TextClause:
        """Declare the result columns (and their types, for conversion) of this SQL."""
        new = self._generate()
        new.result_columns = (
            *((name, sqltypes.NULLTYPE) for name in names),
            *((name, sqltypes.to_instance(type_)) for name, type_ in types.items()),
        )
        return new

    @property
    def _returns_rows(self) -> bool:
        head = self.text.lstrip().split(None, 1)[0].upper() if self.text.strip() else ""
        return head in _ROW_RETURNING_KEYWORDS or "RETURNING" in self.text.upper()

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return (
            "text",
            self.text,
            self.result_columns,
            tuple(
                (name, self.binds[name]._gen_cache_key(anon_map, binds))
                for name in self.bind_names
                if name in self.binds
            ),
        )


_ROW_RETURNING_KEYWORDS = frozenset(
    {"SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN", "PRAGMA", "TABLE", "FETCH"}
)


def text(sql: str) -> TextClause:
    """Literal SQL with ``:name`` bound parameters."""
    return TextClause(sql)


def literal_column(sql: str, type_: Any = None) -> ColumnClause[Any]:
    """A raw SQL fragment used as a column: ``literal_column("1")``, ``literal_column("*")``."""
    return ColumnClause(sql, type_, is_literal=True)


def literal(value: Any, type_: Any = None) -> BindParameter[Any]:
    """A value as a bound parameter, typed from the value unless ``type_`` is given."""
    return BindParameter(None, value, type_, inferred=type_ is None)


def bindparam(
    key: str, value: Any = NO_VALUE, type_: Any = None, *, expanding: bool = False
) -> BindParameter[Any]:
    """A named parameter whose value comes from the execution parameters (or ``value``)."""
    return BindParameter(key, value, type_, expanding=expanding, inferred=False)


def and_(*clauses: Any) -> ColumnElement[bool]:
    """Criteria joined by AND; nested ANDs are flattened. ``and_()`` is true."""
    return _boolean_list(ops.AND, clauses, _TRUE)


def or_(*clauses: Any) -> ColumnElement[bool]:
    """Criteria joined by OR. ``or_()`` is false."""
    return _boolean_list(ops.OR, clauses, _FALSE)


def _boolean_list(
    operator: ops.Operator, clauses: Sequence[Any], empty: ColumnElement[bool]
) -> ColumnElement[bool]:
    flat: list[ColumnElement[Any]] = []
    for clause in clauses:
        element = coerce_where(clause)
        if isinstance(element, BooleanClauseList) and element.operator is operator:
            flat.extend(element.clauses)
        else:
            flat.append(element)
    if not flat:
        return empty
    if len(flat) == 1:
        return flat[0]
    return BooleanClauseList(operator, flat)


def not_(clause: Any) -> ColumnElement[bool]:
    """The negation: ``x = y`` becomes ``x != y``, ``IN`` becomes ``NOT IN``, else ``NOT (x)``."""
    element = coerce_where(clause)
    if isinstance(element, BinaryExpression) and element.operator.negate is not None:
        return BinaryExpression(
            element.left, element.right, element.operator.negate, element.type, element.escape
        )
    if isinstance(element, UnaryExpression) and element.operator == "NOT":
        return element.element
    if element is _TRUE:
        return _FALSE
    if element is _FALSE:
        return _TRUE
    return UnaryExpression(element, operator="NOT", type_=_BOOLEAN)


def asc(column: Any) -> UnaryExpression[Any]:
    return UnaryExpression(coerce_order_by(column), modifier="ASC")


def desc(column: Any) -> UnaryExpression[Any]:
    return UnaryExpression(coerce_order_by(column), modifier="DESC")


# --- coercion -----------------------------------------------------------------------------


#: Classes whose instances are always bound values, never SQL expressions.
_PLAIN_VALUES = frozenset({int, str, float, bool, bytes, type(None)})


def _as_clause(obj: Any) -> ColumnElement[Any] | None:
    """A column expression for ``obj``, or None when ``obj`` is a plain Python value."""
    if isinstance(obj, ColumnElement):
        return obj
    clause_element = getattr(obj, "__clause_element__", None)
    if clause_element is not None and not isinstance(obj, type):
        obj = clause_element()
        if isinstance(obj, ColumnElement):
            return obj
    if getattr(obj, "_is_select_statement", False):
        scalar: ScalarSelect[Any] = obj.scalar_subquery()
        return scalar
    return None


def coerce_column(obj: Any) -> ColumnElement[Any]:
    """A column expression, or ArgumentError saying what was expected."""
    element = _as_clause(obj)
    if element is None:
        raise ArgumentError(
            f"expected a column or SQL expression, got {type(obj).__name__} {obj!r}; "
            "wrap plain values in literal()"
        )
    return element


def coerce_where(obj: Any) -> ColumnElement[Any]:
    """A WHERE/ON/HAVING criterion. A str is refused (textual SQL must be ``text()``)."""
    if obj is True:
        return _TRUE
    if obj is False:
        return _FALSE
    if isinstance(obj, str):
        raise ArgumentError(f"textual SQL must be wrapped in text(): text({obj!r})")
    return coerce_column(obj)


def coerce_order_by(obj: Any) -> ColumnElement[Any]:
    """An ORDER BY / GROUP BY item; a str names a label of the SELECT."""
    if isinstance(obj, str):
        return LabelReference(obj)
    return coerce_column(obj)


def _operand(left: ColumnElement[Any], other: Any) -> ColumnElement[Any]:
    """The right side of an operator whose left side is ``left``: values become parameters
    typed like ``left``, so they are checked and converted as ``left``'s column would be."""
    element = _as_clause(other)
    if element is not None:
        if (
            isinstance(element, BindParameter)
            and element.type is sqltypes.NULLTYPE
            and left.type is not sqltypes.NULLTYPE
        ):
            return element._with_type(left.type.comparison_type, _origin_of(left))
        return element
    if other is None:
        return _NULL
    return _value_bind(left, other, left.type.comparison_type)


def _value_bind(
    left: ColumnElement[Any], value: Any, type_: sqltypes.TypeEngine[Any]
) -> BindParameter[Any]:
    if type_ is sqltypes.NULLTYPE:
        return BindParameter(
            None,
            value,
            None,
            inferred=True,
            origin=_origin_of(left),
            name_hint=left._bind_name_hint,
        )
    return BindParameter(
        None, value, type_, origin=_origin_of(left), name_hint=left._bind_name_hint
    )


def _operand_with_type(value: Any, type_: sqltypes.TypeEngine[Any]) -> ColumnElement[Any]:
    element = _as_clause(value)
    if element is not None:
        return element
    return BindParameter(None, value, type_, inferred=True)


def _origin_of(element: ColumnElement[Any]) -> str | None:
    while isinstance(element, Label | UnaryExpression | Cast):
        element = element.element
    if isinstance(element, ColumnClause) and not element.is_literal:
        return element._origin
    return None


def _compare(
    left: ColumnElement[Any], operator: ops.Operator, other: Any
) -> BinaryExpression[bool]:
    if other is None or other is _NULL:
        if operator is ops.EQ:
            operator = ops.IS
        elif operator is ops.NE:
            operator = ops.IS_NOT
        return BinaryExpression(left, _NULL, operator, _BOOLEAN)
    if operator is ops.IS or operator is ops.IS_NOT:
        if other is True:
            return BinaryExpression(left, _TRUE, operator, _BOOLEAN)
        if other is False:
            return BinaryExpression(left, _FALSE, operator, _BOOLEAN)
    return BinaryExpression(left, _operand(left, other), operator, _BOOLEAN)


_FRACTIONS = (float, decimal.Decimal)


def _arithmetic(
    left: ColumnElement[Any], operator: ops.Operator, other: Any, *, reverse: bool = False
) -> BinaryExpression[Any]:
    if left.type._is_integer and other.__class__ in _FRACTIONS:
        # `age * 1.5` is not an integer: the value keeps its own type (and cast), and so
        # does the result.
        right: ColumnElement[Any] = _value_bind(left, other, sqltypes.NULLTYPE)
        type_ = right.type
    else:
        right = _operand(left, other)
        type_ = left.type if left.type is not sqltypes.NULLTYPE else right.type
    if operator is ops.ADD and type_._is_string:
        operator = ops.CONCAT
    elif operator is ops.DIV and left.type._is_integer and right.type._is_integer:
        # As in Python (and SQLAlchemy 2): 7 / 2 is 3.5; `//` keeps SQL's integer division.
        operator, type_ = ops.TRUEDIV, sqltypes.Numeric()
    if reverse:
        left, right = right, left
    return BinaryExpression(left, right, operator, type_)


def _in(left: ColumnElement[Any], values: Any, operator: ops.Operator) -> BinaryExpression[bool]:
    if isinstance(values, BindParameter):
        bind = values._with_type(
            left.type.comparison_type if values.type is sqltypes.NULLTYPE else values.type,
            _origin_of(left),
        )
        bind.expanding = True  # a fresh copy: the caller's bindparam() is left as it was
        return BinaryExpression(left, bind, operator, _BOOLEAN)
    subquery = _as_clause(values)
    if subquery is not None:
        return BinaryExpression(left, subquery, operator, _BOOLEAN)
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ArgumentError(
            f"in_() takes a list of values or a subquery, got {type(values).__name__}"
        )
    items = list(values)
    # Plain values (the usual list of keys) are told apart in one pass in C, not a Python
    # call per item.
    plain = _PLAIN_VALUES.issuperset(map(type, items))
    if not plain and any(
        item.__class__ not in _PLAIN_VALUES and _as_clause(item) is not None for item in items
    ):
        return BinaryExpression(
            left, ExpressionList([_operand(left, item) for item in items]), operator, _BOOLEAN
        )
    expanding: BindParameter[Any] = BindParameter(
        None,
        items,
        left.type.comparison_type,
        expanding=True,
        origin=_origin_of(left),
        name_hint=left._bind_name_hint,
    )
    return BinaryExpression(left, expanding, operator, _BOOLEAN)


def _like(
    left: ColumnElement[Any], operator: ops.Operator, other: Any, escape: str | None
) -> BinaryExpression[bool]:
    # A pattern is not a value of the column: String(5) may well be matched by a longer
    # pattern, so patterns are typed as unbounded strings.
    right = _as_clause(other)
    if right is None:
        right = _value_bind(left, other, _STRING)
    return BinaryExpression(left, right, operator, _BOOLEAN, escape)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _pattern(
    left: ColumnElement[Any], other: Any, *, prefix: bool, suffix: bool
) -> BinaryExpression[bool]:
    element = _as_clause(other)
    if element is None:
        if not isinstance(other, str):
            raise ArgumentError(
                f"startswith/endswith/contains take a str, got {type(other).__name__}"
            )
        pattern = ("%" if prefix else "") + _escape_like(other) + ("%" if suffix else "")
        return BinaryExpression(left, _value_bind(left, pattern, _STRING), ops.LIKE, _BOOLEAN, "\\")
    if prefix:
        element = BinaryExpression(literal("%", _STRING), element, ops.CONCAT, _STRING)
    if suffix:
        element = BinaryExpression(element, literal("%", _STRING), ops.CONCAT, _STRING)
    return BinaryExpression(left, element, ops.LIKE, _BOOLEAN)
