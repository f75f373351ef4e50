"""Results and rows.

Speed: a result is a hot path (fetching 10,000 rows must stay within 2x the raw driver), so
rows stay as the driver delivered them (asyncpg ``Record``, sqlite3 tuple) until a caller
asks for them, and then become output objects one batch at a time:

* :class:`Row` objects are built with ``tuple.__new__(RowClass, raw)`` mapped over the
  batch in C when no column needs a result processor. With processors, a small function is
  generated once per (keys, processors) that builds each row with one tuple display, so the
  per-row cost is one tuple plus the processor calls themselves.
* Each distinct set of keys gets a cached ``Row`` subclass whose column labels are
  ``itemgetter`` properties, so ``row.fullname`` is a C-level lookup.
* :meth:`Result.scalars` never builds rows at all; it picks (and processes) one column.

A :class:`Result`, its :class:`ScalarResult` and its :class:`MappingResult` are three views of
one buffered source: consuming rows through one view consumes them for all of them, as in
SQLAlchemy. :class:`AsyncResult` (from ``stream()``) is the same over a cursor that is read
in chunks.
"""

from __future__ import annotations

import operator
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from itertools import repeat
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, overload

from .. import exc

__all__ = [
    "AsyncMappingResult",
    "AsyncResult",
    "AsyncScalarResult",
    "MappingResult",
    "Result",
    "Row",
    "RowMapping",
    "ScalarResult",
]

_T = TypeVar("_T")
_S = TypeVar("_S")
_TP = TypeVar("_TP")
Processors = Sequence[Callable[[Any], Any] | None]
Maker = Callable[[list[Any]], list[Any]]

_AMBIGUOUS = -1
_tuple_new = tuple.__new__


# --- rows -------------------------------------------------------------------------------


def _rebuild_row(keys: tuple[str, ...], values: tuple[Any, ...]) -> Row[Any]:
    return _tuple_new(row_class(keys), values)


class Row(tuple[Any, ...], Generic[_TP]):
    """One result row: a tuple with access by column label.

    ``row[0]``, unpacking and ``row == (1, "x")`` behave as for a tuple; ``row.fullname``
    and ``row._mapping["fullname"]`` read a column by its label. A label that collides
    with a tuple method (``count``, ``index``) shadows the method on that row. Labels that
    are not identifiers, or start with ``_``, are reachable through ``_mapping`` only.
    """

    __slots__ = ()

    _fields: tuple[str, ...] = ()
    """The column labels, in order."""

    _index: Mapping[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        # Reached only when no column property matched: explain instead of a bare error.
        position = self._index.get(name)
        if position == _AMBIGUOUS:
            raise AttributeError(
                f"column label {name!r} is ambiguous in this row (it appears more than "
                f"once); give the columns distinct labels with .label()"
            )
        raise AttributeError(
            f"Row has no column {name!r}; its columns are: {', '.join(self._fields) or '-'}"
        )

    @property
    def _mapping(self) -> RowMapping:
        """The row as a read-only mapping of label -> value."""
        return RowMapping(self)

    @property
    def _t(self) -> tuple[Any, ...]:
        """The row as a plain tuple."""
        return tuple(self)

    def _tuple(self) -> tuple[Any, ...]:
        return tuple(self)

    def _asdict(self) -> dict[str, Any]:
        """A new ``dict`` of label -> value."""
        return dict(zip(self._fields, self, strict=False))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_row, (self._fields, tuple(self)))

    def __repr__(self) -> str:
        return tuple.__repr__(self)


_row_classes: dict[tuple[str, ...], type[Row[Any]]] = {}


def _key_index(keys: tuple[str, ...]) -> dict[str, int]:
    index: dict[str, int] = {}
    for position, key in enumerate(keys):
        index[key] = _AMBIGUOUS if key in index else position
    return index


def row_class(keys: tuple[str, ...]) -> type[Row[Any]]:
    """The cached :class:`Row` subclass for one tuple of column labels."""
    cls = _row_classes.get(keys)
    if cls is not None:
        return cls
    index = _key_index(keys)
    namespace: dict[str, Any] = {"__slots__": (), "_fields": keys, "_index": index}
    for key, position in index.items():
        if position != _AMBIGUOUS and key.isidentifier() and not key.startswith("_"):
            namespace[key] = property(operator.itemgetter(position))
    cls = type("Row", (Row,), namespace)
    cls.__module__ = Row.__module__
    cls.__qualname__ = "Row"
    if len(_row_classes) > 4096:  # statement shapes are finite; this only bounds abuse
        _row_classes.clear()
    _row_classes[keys] = cls
    return cls


class RowMapping(Mapping[str, Any]):
    """A read-only ``label -> value`` view of one :class:`Row` (``row._mapping``).

    Besides a label, a key may be any object with a ``key`` or ``name`` string attribute
    (a column), which is looked up by that string, or a mapped class (an entity of an ORM
    row: ``row._mapping[User]``), looked up by its name.
    """

    __slots__ = ("_row",)

    def __init__(self, row: Row[Any]) -> None:
        self._row = row

    def _position(self, key: object) -> int:
        index = self._row._index
        position = index.get(key) if isinstance(key, str) else None
        if position is None and not isinstance(key, str):
            if isinstance(key, type):  # an ORM entity, labelled by its class name
                label: object = key.__name__
            else:
                label = getattr(key, "key", None) or getattr(key, "name", None)
            if isinstance(label, str):
                position = index.get(label)
        if position is None:
            raise KeyError(key)
        if position == _AMBIGUOUS:
            raise exc.InvalidRequestError(
                f"column label {key!r} is ambiguous in this row; give the columns distinct "
                "labels with .label()"
            )
        return position

    def __getitem__(self, key: object) -> Any:
        return self._row[self._position(key)]

    def __contains__(self, key: object) -> bool:
        try:
            self._position(key)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._row._fields)

    def __len__(self) -> int:
        return len(self._row)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._row)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class ResultKeys(tuple[str, ...]):
    """The column labels of a result; also equal to a ``list`` of the same labels."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return list(self) == other
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return tuple.__hash__(self)


# --- makers: raw driver rows -> output objects, one batch at a time ----------------------

_makers: dict[tuple[Any, ...], Maker] = {}


def _generated(kind: str, keys: tuple[str, ...], processors: Processors, index: int) -> Maker:
    """Compile a batch converter that applies ``processors`` in one tuple display per row."""
    names: dict[str, Any] = {"_new": _tuple_new, "_cls": row_class(keys)}
    parts = []
    for position, processor in enumerate(processors):
        if processor is None:
            parts.append(f"r[{position}]")
        else:
            names[f"p{position}"] = processor
            parts.append(f"p{position}(r[{position}])")
    if kind == "scalar":
        body = parts[index]
    elif kind == "tuple":
        body = "(" + ", ".join(parts) + ",)"
    else:
        body = "_new(_cls, (" + ", ".join(parts) + ",))"
    source = f"def make(raw):\n    return [{body} for r in raw]\n"
    exec(compile(source, f"<asyncorm result maker {keys!r}>", "exec"), names)
    maker: Maker = names["make"]
    return maker


def _maker(kind: str, keys: tuple[str, ...], processors: Processors | None, index: int) -> Maker:
    """The cached converter of one kind ("row", "tuple", "scalar") for keys + processors."""
    cache_key = (kind, keys, tuple(processors) if processors is not None else None, index)
    maker = _makers.get(cache_key)
    if maker is not None:
        return maker
    if processors is None or not any(processors) or (kind == "scalar" and not processors[index]):
        if kind == "row":
            cls = row_class(keys)

            def maker(raw: list[Any]) -> list[Any]:
                return list(map(_tuple_new, repeat(cls), raw))

        elif kind == "tuple":

            def maker(raw: list[Any]) -> list[Any]:
                if raw and type(raw[0]) is tuple:
                    return raw
                return list(map(tuple, raw))

        else:
            getter = operator.itemgetter(index)

            def maker(raw: list[Any]) -> list[Any]:
                return list(map(getter, raw))

    else:
        maker = _generated(kind, keys, processors, index)
    if len(_makers) > 4096:
        _makers.clear()
    _makers[cache_key] = maker
    return maker


def process_rows(
    keys: Sequence[str], raw: list[Any], processors: Processors | None
) -> list[tuple[Any, ...]]:
    """Driver rows -> processed plain tuples, without building :class:`Row` objects."""
    return _maker("tuple", tuple(keys), processors, 0)(raw)


# --- shapes: how one source's raw rows turn into rows, tuples or scalars --------------


class _Shape:
    """Keys plus the converters of one result; a transform (from the ORM) may sit on top.

    A ``bare`` shape has one column whose raw rows are the values themselves (the ORM's
    one-entity results): ``scalars()`` then hands them out without a tuple per row.
    """

    __slots__ = ("bare", "keys", "processors", "rows", "transform", "tuples")

    def __init__(
        self,
        keys: tuple[str, ...],
        processors: Processors | None,
        transform: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None,
        base: _Shape | None = None,
        *,
        bare: bool = False,
    ) -> None:
        self.keys = keys
        self.processors = processors
        self.transform = transform
        self.bare = bare
        self.tuples: Maker
        self.rows: Maker
        if bare:
            cls = row_class(keys)
            self.tuples = _bare_tuples
            self.rows = lambda raw: [_tuple_new(cls, (value,)) for value in raw]
        elif transform is None or base is None:
            self.tuples = _maker("tuple", keys, processors, 0)
            self.rows = _maker("row", keys, processors, 0)
        else:
            base_tuples = base.tuples
            cls = row_class(keys)

            def tuples(raw: list[Any]) -> list[Any]:
                return list(map(transform, base_tuples(raw)))

            def rows(raw: list[Any]) -> list[Any]:
                return list(map(_tuple_new, repeat(cls), map(transform, base_tuples(raw))))

            self.tuples = tuples
            self.rows = rows

    def column(self, index: int | str) -> int:
        if isinstance(index, int):
            if not -len(self.keys) <= index < max(len(self.keys), 1):
                raise exc.InvalidRequestError(
                    f"no column {index} in a result of {len(self.keys)} column(s)"
                )
            return index
        position = _key_index(self.keys).get(index)
        if position is None or position == _AMBIGUOUS:
            raise exc.InvalidRequestError(
                f"no single column labelled {index!r}; columns: {', '.join(self.keys)}"
            )
        return position

    def scalars(self, index: int | str) -> Maker:
        position = self.column(index)
        if self.bare:
            return _bare_values
        if self.transform is None:
            return _maker("scalar", self.keys, self.processors, position)
        tuples = self.tuples
        getter = operator.itemgetter(position)

        def make(raw: list[Any]) -> list[Any]:
            return list(map(getter, tuples(raw)))

        return make

    def mappings(self) -> Maker:
        rows = self.rows

        def make(raw: list[Any]) -> list[Any]:
            return list(map(RowMapping, rows(raw)))

        return make


def _take_back(lent: tuple[list[Any], Iterator[Any]]) -> int:
    """How many of a lent chunk's items its loop has not reached; the loop gets none of
    them now (they go back to the source, to be read again by whatever reads next)."""
    chunk, items = lent
    left = operator.length_hint(items)
    chunk.clear()
    return left


def _bare_tuples(raw: list[Any]) -> list[Any]:
    return [(value,) for value in raw]


def _bare_values(raw: list[Any]) -> list[Any]:
    return raw  # ``_Source.take`` hands out lists of their own


def _unique_marker(item: Any) -> Any:
    """A hashable stand-in for ``item`` (a row, a mapping or a scalar), made of its parts'
    stand-ins (see ``_unique_part``)."""
    if isinstance(item, tuple):
        return tuple(map(_unique_part, item))
    if isinstance(item, RowMapping):
        return tuple(map(_unique_part, item._row))
    return _unique_part(item)


def _unique_part(value: Any) -> Any:
    """A hashable stand-in for one value: itself, or its identity.

    A mapped object (its class has the ORM's ``_asyncorm_state`` slot) is told apart by
    identity, as in SQLAlchemy: the identity map makes one row one object, and a class whose
    ``__eq__``/``__hash__`` compare fields must not fold two rows into one. Unhashable values
    (JSON dicts and lists, objects defining ``__eq__`` without ``__hash__``) are too.
    """
    if hasattr(type(value), "_asyncorm_state"):
        return ("<id>", id(value))
    try:
        hash(value)
    except TypeError:
        if isinstance(value, tuple):
            return tuple(map(_unique_part, value))
        return ("<id>", id(value))
    return value


def _no_rows() -> NoReturn:
    raise exc.ResourceClosedError(
        "this result does not return rows (the statement was not a SELECT or had no "
        "RETURNING); it was closed automatically. Use .rowcount for the affected row count"
    )


def _closed() -> NoReturn:
    raise exc.ResourceClosedError(
        "this result is closed: first(), one(), one_or_none() and scalar*() close a result "
        "after reading it; keep the value they returned, or run the statement again"
    )


# --- buffered results -------------------------------------------------------------------


class _Source:
    """The buffered rows of one executed statement, shared by its Result views."""

    __slots__ = ("closed", "lent", "pos", "raw", "rowcount")

    def __init__(self, raw: list[Any] | None, rowcount: int) -> None:
        self.raw = raw
        self.rowcount = rowcount
        self.pos = 0
        self.closed = False
        #: the chunk an iteration is handing out, and its iterator (see ``_View.__iter__``)
        self.lent: tuple[list[Any], Iterator[Any]] | None = None

    def take(self, n: int | None) -> list[Any]:
        raw = self.raw
        if raw is None:
            _no_rows()
        if self.closed:
            _closed()
        if self.lent is not None:
            self.pos -= _take_back(self.lent)
            self.lent = None
        start = self.pos
        if start == 0 and n is None:
            # All of it: the list itself changes hands (no copy, and no second list alive
            # beside the caller's); nothing is left to read.
            self.raw = []
            return raw
        end = len(raw) if n is None else min(start + n, len(raw))
        self.pos = end
        return raw[start:end]


class _Unique:
    """De-duplication shared by the buffered and the streamed views."""

    __slots__ = ("_seen", "_unique_key")

    def __init__(self) -> None:
        self._unique_key: Callable[[Any], Any] | None = None
        self._seen: set[Any] | None = None

    def _filter(self, items: list[Any]) -> list[Any]:
        seen = self._seen
        if seen is None:
            return items
        key = self._unique_key or _unique_marker
        out = []
        for item in items:
            marker = key(item)
            if marker not in seen:
                seen.add(marker)
                out.append(item)
        return out

    def _set_unique(self, strategy: Callable[[Any], Any] | None) -> None:
        self._seen = set()
        self._unique_key = strategy

    def _inherit_unique(self, view: _V) -> _V:
        if self._seen is not None:
            view._set_unique(None)
        return view


_V = TypeVar("_V", bound=_Unique)


class _View(_Unique):
    """One way of reading a source: as rows, scalars or mappings, optionally de-duplicated."""

    __slots__ = ("_make", "_shape", "_source")

    def __init__(self, source: _Source, shape: _Shape, make: Maker) -> None:
        super().__init__()
        self._source = source
        self._shape = shape
        self._make = make

    def _fetch(self, n: int | None) -> list[Any]:
        if self._seen is None or n is None:
            return self._filter(self._make(self._source.take(n)))
        out: list[Any] = []
        while len(out) < n:
            chunk = self._source.take(n - len(out))
            if not chunk:
                break
            out.extend(self._filter(self._make(chunk)))
        return out

    def _close(self) -> None:
        self._source.closed = True

    # The consuming API, common to Result, ScalarResult and MappingResult.

    def __iter__(self) -> Iterator[Any]:
        if self._seen is not None:
            # A de-duplicated chunk could not be given back (see below): one at a time.
            while chunk := self._fetch(1):
                yield chunk[0]
            return
        # Rows are taken a chunk at a time and lent to the loop; any other read of the
        # result first takes back what the loop has not reached (a ``break``, or a
        # ``fetchone()`` inside the loop), so every row is read once, and in order.
        source = self._source
        while chunk := self._fetch(256):
            items = iter(chunk)
            source.lent = (chunk, items)
            yield from items

    def all(self) -> Sequence[Any]:
        """Every remaining item."""
        return self._fetch(None)

    def fetchall(self) -> Sequence[Any]:
        """The same as :meth:`all`."""
        return self._fetch(None)

    def fetchmany(self, size: int = 1) -> Sequence[Any]:
        """Up to ``size`` more items (an empty list when exhausted)."""
        return self._fetch(size)

    def fetchone(self) -> Any:
        """The next item, or None when exhausted."""
        chunk = self._fetch(1)
        return chunk[0] if chunk else None

    def partitions(self, size: int | None = None) -> Iterator[Sequence[Any]]:
        """Lists of up to ``size`` items (default 1000) until exhausted."""
        size = size or 1000
        while True:
            chunk = self._fetch(size)
            if not chunk:
                return
            yield chunk

    def first(self) -> Any:
        """The first item or None; closes the result."""
        chunk = self._fetch(1)
        self._close()
        return chunk[0] if chunk else None

    def one_or_none(self) -> Any:
        """The only item, or None if there is none; raises MultipleResultsFound; closes."""
        chunk = self._fetch(2)
        self._close()
        if len(chunk) > 1:
            raise exc.MultipleResultsFound(
                "one_or_none() found more than one row; add a filter or use first()"
            )
        return chunk[0] if chunk else None

    def one(self) -> Any:
        """Exactly one item; raises NoResultFound / MultipleResultsFound; closes."""
        chunk = self._fetch(2)
        self._close()
        if not chunk:
            raise exc.NoResultFound("one() found no row; use one_or_none() or first()")
        if len(chunk) > 1:
            raise exc.MultipleResultsFound(
                "one() found more than one row; add a filter or use first()"
            )
        return chunk[0]

    def close(self) -> None:
        """Release the buffered rows; further reads raise ResourceClosedError."""
        self._close()
        source = self._source
        if source.raw is not None:
            source.raw = []
        if source.lent is not None:
            _take_back(source.lent)  # a loop still reading stops, and finds the result closed
            source.lent = None


class ScalarResult(_View, Generic[_T]):
    """The values of one column, from :meth:`Result.scalars`."""

    if TYPE_CHECKING:  # the shared reading methods, typed by the column's values

        def __iter__(self) -> Iterator[_T]: ...
        def all(self) -> Sequence[_T]: ...
        def fetchall(self) -> Sequence[_T]: ...
        def fetchmany(self, size: int = 1) -> Sequence[_T]: ...
        def fetchone(self) -> _T | None: ...
        def partitions(self, size: int | None = None) -> Iterator[Sequence[_T]]: ...
        def first(self) -> _T | None: ...
        def one_or_none(self) -> _T | None: ...
        def one(self) -> _T: ...

    __slots__ = ()

    def unique(self, strategy: Callable[[Any], Any] | None = None) -> ScalarResult[_T]:
        """De-duplicate the values (by equality, or by ``strategy(value)``)."""
        self._set_unique(strategy)
        return self


class MappingResult(_View):
    """Rows as :class:`RowMapping` objects, from :meth:`Result.mappings`."""

    __slots__ = ()

    def keys(self) -> ResultKeys:
        return ResultKeys(self._shape.keys)

    def unique(self, strategy: Callable[[Any], Any] | None = None) -> MappingResult:
        """De-duplicate the rows."""
        self._set_unique(strategy)
        return self


class Result(_View, Generic[_T]):
    """The outcome of ``execute()``: buffered rows (if the statement returns any) and
    ``rowcount``.

    ``Result(keys, rows)`` builds one from column labels and plain tuples (already
    converted), which is how the ORM hands back results of objects; ``rows=None`` makes a
    result of a statement that returns no rows. For type checkers a ``Result[tuple[int,
    str]]`` yields ``Row[tuple[int, str]]`` rows.
    """

    __slots__ = ()

    if TYPE_CHECKING:  # the shared reading methods, typed by the row's tuple type

        def __iter__(self) -> Iterator[Row[_T]]: ...
        def all(self) -> Sequence[Row[_T]]: ...
        def fetchall(self) -> Sequence[Row[_T]]: ...
        def fetchmany(self, size: int = 1) -> Sequence[Row[_T]]: ...
        def fetchone(self) -> Row[_T] | None: ...
        def partitions(self, size: int | None = None) -> Iterator[Sequence[Row[_T]]]: ...
        def first(self) -> Row[_T] | None: ...
        def one_or_none(self) -> Row[_T] | None: ...
        def one(self) -> Row[_T]: ...

    def __init__(
        self,
        keys: Sequence[str],
        rows: Iterable[Sequence[Any]] | None = (),
        *,
        rowcount: int | None = None,
        _unique_entities: bool = False,
    ) -> None:
        raw = None if rows is None else list(rows)
        count = rowcount if rowcount is not None else (len(raw) if raw is not None else -1)
        shape = _Shape(tuple(keys), None)
        super().__init__(_Source(raw, count), shape, shape.rows)
        if _unique_entities:
            # Joined eager loads repeat a parent once per child row; hand each entity
            # row out once, as SQLAlchemy's unique() would.
            self._set_unique(None)

    @classmethod
    def _from_driver(
        cls,
        keys: tuple[str, ...],
        raw: list[Any] | None,
        processors: Processors | None,
        rowcount: int,
    ) -> Result[Any]:
        """Wrap rows exactly as the driver returned them; processors run when read."""
        self = cls.__new__(cls)
        shape = _Shape(keys, processors)
        _View.__init__(self, _Source(raw, rowcount), shape, shape.rows)
        return self

    @classmethod
    def _of_values(cls, key: str, values: list[Any]) -> Result[Any]:
        """A one-column result whose values are given as they are, with no tuple per row
        (a list of ORM objects stays the only list until rows are asked for)."""
        self = cls.__new__(cls)
        shape = _Shape((key,), None, bare=True)
        _View.__init__(self, _Source(values, len(values)), shape, shape.rows)
        return self

    @property
    def rowcount(self) -> int:
        """Rows affected by an INSERT/UPDATE/DELETE, or returned by a SELECT; -1 if unknown."""
        return self._source.rowcount

    @property
    def returns_rows(self) -> bool:
        return self._source.raw is not None

    def keys(self) -> ResultKeys:
        """The column labels."""
        return ResultKeys(self._shape.keys)

    def unique(self, strategy: Callable[[Any], Any] | None = None) -> Result[_T]:
        """De-duplicate the rows (by equality, or by ``strategy(row)``)."""
        self._set_unique(strategy)
        return self

    @overload
    def scalars(self: Result[tuple[_S]], index: int = 0) -> ScalarResult[_S]: ...
    @overload
    def scalars(self, index: int | str = 0) -> ScalarResult[Any]: ...
    def scalars(self, index: int | str = 0) -> ScalarResult[Any]:
        """The values of one column (the first by default) as a :class:`ScalarResult`."""
        if self._source.raw is None:
            _no_rows()
        view: ScalarResult[Any] = ScalarResult(
            self._source, self._shape, self._shape.scalars(index)
        )
        return self._inherit_unique(view)

    def mappings(self) -> MappingResult:
        """The rows as :class:`RowMapping` objects (dict-like)."""
        view = MappingResult(self._source, self._shape, self._shape.mappings())
        return self._inherit_unique(view)

    def tuples(self) -> Result[_T]:
        """The same result (rows already are tuples); for SQLAlchemy compatibility."""
        return self

    @overload
    def scalar(self: Result[tuple[_S]]) -> _S | None: ...
    @overload
    def scalar(self) -> Any: ...
    def scalar(self) -> Any:
        """The first column of the first row, or None if there are no rows; closes."""
        return self.scalars().first()

    @overload
    def scalar_one(self: Result[tuple[_S]]) -> _S: ...
    @overload
    def scalar_one(self) -> Any: ...
    def scalar_one(self) -> Any:
        """The first column of the only row; NoResultFound / MultipleResultsFound; closes."""
        return self.scalars().one()

    @overload
    def scalar_one_or_none(self: Result[tuple[_S]]) -> _S | None: ...
    @overload
    def scalar_one_or_none(self) -> Any: ...
    def scalar_one_or_none(self) -> Any:
        """The first column of the only row, or None; MultipleResultsFound; closes."""
        return self.scalars().one_or_none()

    def _plain_rows(self) -> list[tuple[Any, ...]]:
        """The remaining rows as processed plain tuples (no Row objects)."""
        return self._filter(self._shape.tuples(self._source.take(None)))

    def __repr__(self) -> str:
        source = self._source
        rows = "no rows" if source.raw is None else f"{len(source.raw) - source.pos} rows left"
        return f"<Result keys={list(self._shape.keys)} {rows} rowcount={source.rowcount}>"


# --- streaming --------------------------------------------------------------------------

Fetcher = Callable[[int], Awaitable[list[Any]]]
Closer = Callable[[], Awaitable[None]]


class _StreamSource:
    """Rows read from a cursor in chunks, shared by the views of one AsyncResult."""

    __slots__ = (
        "__weakref__",
        "_close",
        "_fetch",
        "buffer",
        "chunk_size",
        "closed",
        "cursor_done",
        "exhausted",
        "lent",
    )

    def __init__(self, fetch: Fetcher, close: Closer, chunk_size: int) -> None:
        self._fetch = fetch
        self._close = close
        self.chunk_size = chunk_size
        self.buffer: list[Any] = []
        self.exhausted = False
        self.closed = False
        self.cursor_done = False
        #: the raw rows of the chunk a loop is handing out, the chunk, and its iterator
        self.lent: tuple[list[Any], tuple[list[Any], Iterator[Any]]] | None = None

    async def take(self, n: int | None) -> list[Any]:
        if self.closed:
            raise exc.ResourceClosedError(
                "this streamed result is closed (it was read with first()/one()/scalar(), "
                "closed explicitly, or its transaction ended)"
            )
        if self.lent is not None:
            raw, lent = self.lent
            self.lent = None
            # Read before the chunk is cleared: a chunk of bare values is ``raw`` itself.
            self.buffer[:0] = raw[len(raw) - operator.length_hint(lent[1]) :]
            _take_back(lent)
        while not self.exhausted and (n is None or len(self.buffer) < n):
            want = self.chunk_size if n is None else max(self.chunk_size, n - len(self.buffer))
            chunk = await self._fetch(want)
            if len(chunk) < want:
                self.exhausted = True
            self.buffer.extend(chunk)
        if n is None or n >= len(self.buffer):
            out, self.buffer = self.buffer, []
        else:
            out, self.buffer = self.buffer[:n], self.buffer[n:]
        if self.exhausted and not self.buffer:
            # Read to the end: free the cursor now; further reads just return nothing.
            await self._finish()
        return out

    async def _finish(self) -> None:
        if not self.cursor_done:
            self.cursor_done = True
            await self._close()

    async def close(self) -> None:
        self.closed = True
        self.exhausted = True
        self.buffer = []
        if self.lent is not None:
            _take_back(self.lent[1])  # a loop still reading stops, and finds the result closed
            self.lent = None
        await self._finish()


class _AsyncView(_Unique):
    __slots__ = ("_make", "_shape", "_source")

    def __init__(self, source: _StreamSource, shape: _Shape, make: Maker) -> None:
        super().__init__()
        self._source = source
        self._shape = shape
        self._make = make

    async def _fetch(self, n: int | None) -> list[Any]:
        if self._seen is None or n is None:
            return self._filter(self._make(await self._source.take(n)))
        out: list[Any] = []
        while len(out) < n:
            chunk = await self._source.take(n - len(out))
            if not chunk:
                break
            out.extend(self._filter(self._make(chunk)))
        return out

    async def __aiter__(self) -> AsyncIterator[Any]:
        source = self._source
        if self._seen is not None:
            while chunk := await self._fetch(1):  # as in _View.__iter__
                yield chunk[0]
            return
        # Lent as in _View.__iter__; an ``async for`` left early is not even finalised at
        # once, so giving back what it did not reach falls to the next read.
        while raw := await source.take(source.chunk_size):
            chunk = self._make(raw)
            items = iter(chunk)
            source.lent = (raw, (chunk, items))
            for item in items:
                yield item

    async def all(self) -> list[Any]:
        """Every remaining item."""
        return await self._fetch(None)

    async def fetchall(self) -> list[Any]:
        return await self._fetch(None)

    async def fetchmany(self, size: int = 1) -> list[Any]:
        """Up to ``size`` more items (an empty list when exhausted)."""
        return await self._fetch(size)

    async def fetchone(self) -> Any:
        chunk = await self._fetch(1)
        return chunk[0] if chunk else None

    async def partitions(self, size: int | None = None) -> AsyncIterator[list[Any]]:
        """Lists of up to ``size`` items (default: the stream's chunk size)."""
        size = size or self._source.chunk_size
        while True:
            chunk = await self._fetch(size)
            if not chunk:
                return
            yield chunk

    async def first(self) -> Any:
        """The first item or None; closes the stream."""
        chunk = await self._fetch(1)
        await self._source.close()
        return chunk[0] if chunk else None

    async def one_or_none(self) -> Any:
        chunk = await self._fetch(2)
        await self._source.close()
        if len(chunk) > 1:
            raise exc.MultipleResultsFound(
                "one_or_none() found more than one row; add a filter or use first()"
            )
        return chunk[0] if chunk else None

    async def one(self) -> Any:
        chunk = await self._fetch(2)
        await self._source.close()
        if not chunk:
            raise exc.NoResultFound("one() found no row; use one_or_none() or first()")
        if len(chunk) > 1:
            raise exc.MultipleResultsFound(
                "one() found more than one row; add a filter or use first()"
            )
        return chunk[0]

    async def close(self) -> None:
        """Close the cursor; the connection stays usable."""
        await self._source.close()


class AsyncScalarResult(_AsyncView, Generic[_T]):
    """Streamed values of one column."""

    __slots__ = ()

    def unique(self, strategy: Callable[[Any], Any] | None = None) -> AsyncScalarResult[_T]:
        self._set_unique(strategy)
        return self


class AsyncMappingResult(_AsyncView):
    """Streamed rows as :class:`RowMapping` objects."""

    __slots__ = ()

    def keys(self) -> ResultKeys:
        return ResultKeys(self._shape.keys)

    def unique(self, strategy: Callable[[Any], Any] | None = None) -> AsyncMappingResult:
        self._set_unique(strategy)
        return self


class AsyncResult(_AsyncView, Generic[_T]):
    """The outcome of ``stream()``: rows read from a cursor as they are consumed.

    A server-side cursor on PostgreSQL, chunked ``fetchmany`` on SQLite; both live inside
    the connection's transaction, which ends the stream when it commits or rolls back.
    """

    __slots__ = ()

    @classmethod
    def _from_cursor(
        cls,
        keys: tuple[str, ...],
        fetch: Fetcher,
        close: Closer,
        processors: Processors | None,
        chunk_size: int,
    ) -> AsyncResult[Any]:
        """A stream over ``fetch(n)`` (raw driver rows, converted with ``processors``)."""
        shape = _Shape(keys, processors)
        return cls(_StreamSource(fetch, close, chunk_size), shape, shape.rows)

    def _with_row_transform(
        self, keys: Sequence[str], transform: Callable[[tuple[Any, ...]], tuple[Any, ...]]
    ) -> AsyncResult[Any]:
        """The same stream with each processed row mapped through ``transform`` (the ORM
        turns column values into entities) and labelled with ``keys``."""
        shape = _Shape(tuple(keys), None, transform, base=self._shape)
        view: AsyncResult[Any] = AsyncResult(self._source, shape, shape.rows)
        return self._inherit_unique(view)

    def _with_chunk_transform(
        self,
        keys: Sequence[str],
        transform: Callable[[list[tuple[Any, ...]]], Awaitable[list[Any]]],
        *,
        bare: bool,
    ) -> AsyncResult[Any]:
        """The same stream with each fetched chunk of processed rows mapped through
        ``transform`` as it arrives (the ORM makes the chunk's objects and runs their eager
        loads); ``bare``: it returns the values of a one-column result themselves."""
        source = self._source
        fetch, tuples = source._fetch, self._shape.tuples

        async def fetch_transformed(n: int) -> list[Any]:
            return await transform(tuples(await fetch(n)))

        source._fetch = fetch_transformed
        shape = _Shape(tuple(keys), None, bare=bare)
        view: AsyncResult[Any] = AsyncResult(source, shape, shape.rows)
        return self._inherit_unique(view)

    def keys(self) -> ResultKeys:
        return ResultKeys(self._shape.keys)

    @property
    def closed(self) -> bool:
        return self._source.closed

    def unique(self, strategy: Callable[[Any], Any] | None = None) -> AsyncResult[_T]:
        self._set_unique(strategy)
        return self

    def scalars(self, index: int | str = 0) -> AsyncScalarResult[Any]:
        """Streamed values of one column (the first by default)."""
        view: AsyncScalarResult[Any] = AsyncScalarResult(
            self._source, self._shape, self._shape.scalars(index)
        )
        return self._inherit_unique(view)

    def mappings(self) -> AsyncMappingResult:
        view = AsyncMappingResult(self._source, self._shape, self._shape.mappings())
        return self._inherit_unique(view)

    async def scalar(self) -> Any:
        return await self.scalars().first()

    async def scalar_one(self) -> Any:
        return await self.scalars().one()

    async def scalar_one_or_none(self) -> Any:
        return await self.scalars().one_or_none()

    async def _plain_fetch(self, n: int | None) -> list[tuple[Any, ...]]:
        """Up to ``n`` (or all remaining) rows as processed plain tuples."""
        return self._filter(self._shape.tuples(await self._source.take(n)))
