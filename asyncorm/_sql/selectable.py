"""SELECT and the FROM objects it reads: aliases, subqueries, joins, set operations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from ..exc import ArgumentError
from . import types as sqltypes
from .base import ClauseElement, ColumnCollection, Executable
from .cache_key import AnonMap
from .elements import (
    BindParameter,
    ColumnClause,
    ColumnElement,
    Label,
    _as_clause,
    and_,
    coerce_column,
    coerce_order_by,
    coerce_where,
    literal_column,
)

if TYPE_CHECKING:
    from .schema import ForeignKey

__all__ = [
    "Alias",
    "CompoundSelect",
    "Exists",
    "FromClause",
    "Join",
    "ScalarSelect",
    "Select",
    "Subquery",
    "exists",
    "select",
    "union",
    "union_all",
]

_TP = TypeVar("_TP")
_T = TypeVar("_T")

_INTEGER = sqltypes.Integer()


class FromClause(ClauseElement):
    """Something that can appear in a FROM clause and has columns (``.c``)."""

    _is_from_clause = True
    name: str | None = None

    @property
    def c(self) -> ColumnCollection[ColumnElement[Any]]:
        """The columns, by key: ``t.c.name`` or ``t.c["name"]``."""
        try:
            return self.__dict__["_columns"]  # type: ignore[no-any-return]
        except KeyError:
            columns = self.__dict__["_columns"] = self._populate_columns()
            return columns

    @property
    def columns(self) -> ColumnCollection[ColumnElement[Any]]:
        return self.c

    def _populate_columns(self) -> ColumnCollection[ColumnElement[Any]]:
        raise NotImplementedError

    @property
    def _select_columns(self) -> Sequence[ColumnElement[Any]]:
        """What ``select(this)`` selects."""
        return list(self.c)

    @property
    def _from_objects(self) -> tuple[FromClause, ...]:
        return (self,)

    @property
    def _hidden_froms(self) -> tuple[FromClause, ...]:
        """FROM objects this one already contains (a join's sides)."""
        return ()

    @property
    def _tables(self) -> tuple[FromClause, ...]:
        """The named FROM objects inside (itself, or both sides of a join)."""
        return (self,)

    @property
    def foreign_keys(self) -> Sequence[ForeignKey]:
        return ()

    def _from_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return self._gen_cache_key(anon_map, binds)

    def corresponding_column(self, column: ColumnElement[Any]) -> ColumnElement[Any] | None:
        """This object's column that is, or stands for, ``column`` (None if there is none)."""
        for own in self.c:
            candidate: ColumnElement[Any] | None = own
            while candidate is not None:
                if candidate is column:
                    return own
                candidate = getattr(candidate, "_proxied", None)
        return None

    def alias(self, name: str | None = None) -> Alias:
        """This FROM object under another name (``users AS u``); unnamed ones get anon names."""
        return Alias(self, name)

    def join(
        self, right: Any, onclause: Any = None, *, isouter: bool = False, full: bool = False
    ) -> Join:
        """``self JOIN right ON ...``; without ``onclause`` the foreign keys decide."""
        return Join(self, coerce_from(right), onclause, isouter=isouter, full=full)

    def outerjoin(self, right: Any, onclause: Any = None, *, full: bool = False) -> Join:
        return self.join(right, onclause, isouter=True, full=full)

    def select(self) -> Select[Any]:
        return Select((self,))


def coerce_from(obj: Any) -> FromClause:
    """A FROM object for a table, alias, subquery, mapped class or SELECT (made a subquery)."""
    if isinstance(obj, FromClause):
        return obj
    clause_element = getattr(obj, "__clause_element__", None)
    if clause_element is not None:
        element = clause_element()
        if isinstance(element, FromClause):
            return element
        obj = element
    if isinstance(obj, Select):
        return obj.subquery()
    raise ArgumentError(f"expected a table, alias, subquery or mapped class, got {obj!r}")


class Alias(FromClause):
    """Another name for a FROM object: ``users.alias("u")`` renders ``users AS u``."""

    __visit_name__ = "alias"

    def __init__(self, element: FromClause, name: str | None = None) -> None:
        self.element = element
        self.name = name

    def _populate_columns(self) -> ColumnCollection[ColumnElement[Any]]:
        return ColumnCollection(
            [
                (key, ColumnClause(getattr(column, "name", key), column.type, self, proxied=column))
                for key, column in self.element.c.items()
            ]
        )

    @property
    def foreign_keys(self) -> Sequence[ForeignKey]:
        return self.element.foreign_keys

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        if self.name is not None and not isinstance(self.element, Subquery):
            return ("alias", self.name, self.element._from_cache_key(anon_map, binds))
        return _anonymous_key(self, anon_map, binds)

    def _structural_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return ("alias", self.name, self.element._from_cache_key(anon_map, binds))


def _anonymous_key(
    element: Alias | Subquery, anon_map: AnonMap, binds: list[BindParameter[Any]]
) -> Any:
    number = anon_map.get(id(element))
    if number is not None:
        return ("ref", number)
    number = anon_map[id(element)] = len(anon_map)
    return ("anon", number, element._structural_key(anon_map, binds))


class Subquery(FromClause):
    """A SELECT used as a FROM object: ``(SELECT ...) AS name``."""

    __visit_name__ = "subquery"

    def __init__(self, element: Select[Any] | CompoundSelect, name: str | None = None) -> None:
        self.element = element
        self.name = name

    def _populate_columns(self) -> ColumnCollection[ColumnElement[Any]]:
        return ColumnCollection(
            [
                (key, ColumnClause(key, column.type, self, proxied=column))
                for key, column in self.element._labelled_columns(dedupe=True)
            ]
        )

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return _anonymous_key(self, anon_map, binds)

    def _structural_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return ("subquery", self.name, self.element._gen_cache_key(anon_map, binds))


class Join(FromClause):
    """``left [LEFT OUTER] JOIN right ON onclause``."""

    __visit_name__ = "join"

    def __init__(
        self,
        left: FromClause,
        right: FromClause,
        onclause: Any = None,
        *,
        isouter: bool = False,
        full: bool = False,
    ) -> None:
        self.left = left
        self.right = right
        self.onclause = (
            coerce_where(onclause) if onclause is not None else join_condition(left, right)
        )
        self.isouter = isouter
        self.full = full

    def _populate_columns(self) -> ColumnCollection[ColumnElement[Any]]:
        collection: ColumnCollection[ColumnElement[Any]] = ColumnCollection()
        for side in (self.left, self.right):
            for key, column in side.c.items():
                table_name = getattr(getattr(column, "table", None), "name", None)
                qualified = f"{table_name}_{key}" if table_name else key
                collection._add(qualified, column)
        return collection

    @property
    def _hidden_froms(self) -> tuple[FromClause, ...]:
        return (
            self.left,
            self.right,
            *self.left._hidden_froms,
            *self.right._hidden_froms,
        )

    @property
    def _tables(self) -> tuple[FromClause, ...]:
        return (*self.left._tables, *self.right._tables)

    def corresponding_column(self, column: ColumnElement[Any]) -> ColumnElement[Any] | None:
        found = self.left.corresponding_column(column)
        return found if found is not None else self.right.corresponding_column(column)

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return (
            "join",
            self.left._from_cache_key(anon_map, binds),
            self.right._from_cache_key(anon_map, binds),
            self.onclause._gen_cache_key(anon_map, binds),
            self.isouter,
            self.full,
        )


def _foreign_key_pairs(
    referrer: FromClause, referred: FromClause
) -> dict[int, list[tuple[ColumnElement[Any], ColumnElement[Any]]]]:
    """For each FK constraint from ``referrer`` into ``referred``: (referred, referrer) pairs."""
    found: dict[int, list[tuple[ColumnElement[Any], ColumnElement[Any]]]] = {}
    for table in referrer._tables:
        for fk in table.foreign_keys:
            target = fk.column
            referred_column = referred.corresponding_column(target)
            if referred_column is None:
                continue
            parent = table.corresponding_column(fk.parent)
            if parent is None:
                continue
            found.setdefault(id(fk.constraint), []).append((referred_column, parent))
    return found


def join_condition(left: FromClause, right: FromClause) -> ColumnElement[bool]:
    """The ON clause from the foreign keys between ``left`` and ``right``.

    Raises ArgumentError, telling the user to pass an ON clause, when there is no foreign
    key between them or more than one.
    """
    constraints = list(_foreign_key_pairs(right, left).values())
    constraints += [
        [(b, a) for a, b in pairs] for pairs in _foreign_key_pairs(left, right).values()
    ]
    if not constraints:
        raise ArgumentError(
            f"can't find a foreign key between {_describe_from(left)} and "
            f"{_describe_from(right)}; pass an ON clause: .join(target, onclause)"
        )
    if len(constraints) > 1:
        raise ArgumentError(
            f"there are {len(constraints)} foreign key paths between {_describe_from(left)} "
            f"and {_describe_from(right)}; pass an ON clause to choose one: "
            ".join(target, onclause)"
        )
    return and_(*(a == b for a, b in constraints[0]))


def _describe_from(from_: FromClause) -> str:
    names = [getattr(table, "name", None) or "(subquery)" for table in from_._tables]
    return repr(names[0]) if len(names) == 1 else "(" + ", ".join(map(repr, names)) + ")"


class ScalarSelect(ColumnElement[_T]):
    """A SELECT of one column used as a value: ``(SELECT max(x) FROM t)``."""

    __visit_name__ = "scalar_select"

    def __init__(self, element: Select[Any]) -> None:
        self.element = element
        columns = element._expanded_columns
        self.type = columns[0].type if len(columns) == 1 else sqltypes.NULLTYPE

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return ("scalar", self.element._gen_cache_key(anon_map, binds))

    def where(self, *criteria: Any) -> ScalarSelect[_T]:
        return ScalarSelect(self.element.where(*criteria))


class Exists(ColumnElement[bool]):
    """``EXISTS (SELECT ...)``."""

    __visit_name__ = "exists"
    type = sqltypes.Boolean()

    def __init__(self, element: Select[Any]) -> None:
        self.element = element

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return ("exists", self.element._gen_cache_key(anon_map, binds))

    def where(self, *criteria: Any) -> Exists:
        return Exists(self.element.where(*criteria))

    def select_from(self, *froms: Any) -> Exists:
        return Exists(self.element.select_from(*froms))


def exists(*what: Any) -> Exists:
    """``EXISTS``: ``exists(select(...))``, ``exists().where(...)``, ``exists(col)``."""
    if len(what) == 1 and isinstance(what[0], Select):
        return Exists(what[0])
    return Exists(Select(what or (literal_column("*"),)))


class _SelectBase(Executable):
    """What SELECT and UNION share: subqueries, labels, ordering and limits."""

    _order_by: tuple[ColumnElement[Any], ...] = ()
    _limit: BindParameter[Any] | None = None
    _offset: BindParameter[Any] | None = None
    _returns_rows = True

    def _labelled_columns(self, *, dedupe: bool) -> list[tuple[str, ColumnElement[Any]]]:
        raise NotImplementedError

    def subquery(self, name: str | None = None) -> Subquery:
        """This SELECT as a FROM object; its columns are ``.c``."""
        return Subquery(self, name)  # type: ignore[arg-type]

    def alias(self, name: str | None = None) -> Subquery:
        return self.subquery(name)

    def order_by(self, *clauses: Any) -> Any:
        """ORDER BY columns, ``col.desc()``, labels or label names; ``order_by(None)`` resets."""
        new = self._generate()
        if len(clauses) == 1 and clauses[0] is None:
            new._order_by = ()
        else:
            new._order_by = self._order_by + _order_items(clauses)
        return new

    def limit(self, limit: int | None) -> Any:
        """LIMIT, sent as a bound parameter."""
        new = self._generate()
        new._limit = None if limit is None else BindParameter(None, limit, _INTEGER, origin="LIMIT")
        return new

    def offset(self, offset: int | None) -> Any:
        """OFFSET, sent as a bound parameter."""
        new = self._generate()
        new._offset = (
            None if offset is None else BindParameter(None, offset, _INTEGER, origin="OFFSET")
        )
        return new

    def _limit_offset_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return (
            tuple(c._gen_cache_key(anon_map, binds) for c in self._order_by),
            self._limit._gen_cache_key(anon_map, binds) if self._limit is not None else None,
            self._offset._gen_cache_key(anon_map, binds) if self._offset is not None else None,
        )


class Select(_SelectBase, Generic[_TP]):
    """``SELECT``: built with :func:`select` and refined by generative methods.

    Keeps the objects it was given in ``_raw_columns`` (a mapped class stays the class) and
    expands tables and classes to their columns only when compiled.
    """

    __visit_name__ = "select"
    _is_select_statement = True

    _where_criteria: tuple[ColumnElement[Any], ...] = ()
    _from_obj: tuple[FromClause, ...] = ()
    _group_by: tuple[ColumnElement[Any], ...] = ()
    _having: tuple[ColumnElement[Any], ...] = ()
    _distinct: bool = False
    _for_update: tuple[bool, bool, bool] | None = None
    #: ``FOR UPDATE OF`` these (the ORM's, to leave out the tables of joined eager loads)
    _lock_of: tuple[FromClause, ...] = ()
    _options: tuple[Any, ...] = ()

    def __init__(self, entities: Sequence[Any]) -> None:
        for entity in entities:
            if isinstance(entity, list | tuple):
                raise ArgumentError(
                    "select() takes columns as arguments: select(a, b), not select([a, b])"
                )
        self._raw_columns: tuple[Any, ...] = tuple(entities)
        for entity in self._raw_columns:
            _coerce_entity(entity)

    # --- what the compiler and the ORM read ----------------------------------------------

    @property
    def _expanded_columns(self) -> list[ColumnElement[Any]]:
        """The SELECT list: tables and mapped classes expanded to their columns."""
        memo = self.__dict__.setdefault("_memoized", {})
        if "columns" not in memo:
            columns: list[ColumnElement[Any]] = []
            spans: list[tuple[int, int]] = []
            for entity in self._raw_columns:
                element = _selected_element(entity)
                start = len(columns)
                if isinstance(element, FromClause):
                    columns.extend(element._select_columns)
                else:
                    columns.append(element)
                spans.append((start, len(columns)))
            memo["columns"] = columns
            memo["spans"] = tuple(spans)
        return memo["columns"]  # type: ignore[no-any-return]

    @property
    def _entity_spans(self) -> tuple[tuple[int, int], ...]:
        """For each entry of ``_raw_columns``, its ``(start, stop)`` in the result row."""
        self._expanded_columns  # noqa: B018 - fills the memo
        return self.__dict__["_memoized"]["spans"]  # type: ignore[no-any-return]

    @property
    def selected_columns(self) -> ColumnCollection[ColumnElement[Any]]:
        return ColumnCollection(self._labelled_columns(dedupe=True))

    @property
    def whereclause(self) -> ColumnElement[bool] | None:
        return and_(*self._where_criteria) if self._where_criteria else None

    def _labelled_columns(self, *, dedupe: bool) -> list[tuple[str, ColumnElement[Any]]]:
        """(result key, expression) per selected column; unnamed expressions get ``anon_N``."""
        used: set[str] = set()
        result: list[tuple[str, ColumnElement[Any]]] = []
        anonymous = 0
        for column in self._expanded_columns:
            name = column._result_name
            if name is None:
                anonymous += 1
                name = f"anon_{anonymous}"
            key = name
            # Plain columns of different tables may share a name in a top-level result row
            # (``users.id, addresses.id``); anything rendered with AS, or inside a subquery,
            # needs a name of its own.
            if key in used and (dedupe or not isinstance(column, ColumnClause)):
                suffix = 1
                while f"{name}_{suffix}" in used:
                    suffix += 1
                key = f"{name}_{suffix}"
            used.add(key)
            result.append((key, column))
        return result

    def _froms(self) -> list[FromClause]:
        """The FROM list: explicit FROMs, then those the columns and criteria refer to,
        leaving out the ones a join already contains."""
        found: dict[int, FromClause] = {}
        for from_ in self._from_obj:
            found.setdefault(id(from_), from_)
        for column in self._expanded_columns:
            for from_ in column._from_objects:
                found.setdefault(id(from_), from_)
        for criterion in self._where_criteria:
            for from_ in criterion._from_objects:
                found.setdefault(id(from_), from_)
        hidden = {id(h) for from_ in found.values() for h in from_._hidden_froms}
        return [from_ for key, from_ in found.items() if key not in hidden]

    # --- generative API ---------------------------------------------------------------

    def where(self, *criteria: Any) -> Select[_TP]:
        """Add WHERE criteria; several criteria (and repeated calls) are ANDed."""
        new = self._generate()
        new._where_criteria = self._where_criteria + tuple(coerce_where(c) for c in criteria)
        return new

    filter = where

    def filter_by(self, **values: Any) -> Select[_TP]:
        """``where(entity.key == value, ...)`` for the last joined entity or the first one."""
        entity = self._filter_by_entity()
        criteria = []
        for key, value in values.items():
            if not isinstance(entity, ClauseElement):
                attribute = getattr(entity, key, None)
                if attribute is None:
                    raise ArgumentError(f"{entity!r} has no attribute {key!r}")
                column = coerce_column(attribute)
            else:
                from_ = coerce_from(entity)
                if key not in from_.c:
                    raise ArgumentError(f"{_describe_from(from_)} has no column {key!r}")
                column = from_.c[key]
            criteria.append(column == value)
        return self.where(*criteria)

    def _filter_by_entity(self) -> Any:
        joins = self.__dict__.get("_join_entities", ())
        if joins:
            return joins[-1]
        for entity in self._raw_columns:
            element = _coerce_entity(entity)
            if isinstance(element, FromClause):
                return entity
            table = getattr(element, "table", None)
            if table is not None:
                return table
        raise ArgumentError("filter_by() needs a SELECT of a table or mapped class")

    def select_from(self, *froms: Any) -> Select[_TP]:
        """Add explicit FROM objects (``select(func.count()).select_from(users)``)."""
        new = self._generate()
        new._from_obj = self._from_obj + tuple(coerce_from(f) for f in froms)
        return new

    def join(
        self, target: Any, onclause: Any = None, *, isouter: bool = False, full: bool = False
    ) -> Select[_TP]:
        """JOIN ``target``; ON comes from ``onclause`` or the foreign keys.

        The left side is the FROM object ``onclause`` refers to, or the one with a foreign key
        to ``target``.
        """
        join_target = getattr(target, "__join_target__", None)
        if join_target is not None and onclause is None:
            target, onclause = join_target()
        right = coerce_from(target)
        on = coerce_where(onclause) if onclause is not None else None
        froms = self._froms()
        left = self._join_left(froms, right, on)
        joined = Join(left, right, on, isouter=isouter, full=full)
        new = self._generate()
        explicit = list(self._from_obj)
        if any(from_ is left for from_ in explicit):
            explicit = [joined if from_ is left else from_ for from_ in explicit]
        else:
            explicit.append(joined)
        new._from_obj = tuple(explicit)
        new.__dict__["_join_entities"] = (*self.__dict__.get("_join_entities", ()), target)
        return new

    def outerjoin(self, target: Any, onclause: Any = None, *, full: bool = False) -> Select[_TP]:
        return self.join(target, onclause, isouter=True, full=full)

    def join_from(
        self, left: Any, target: Any, onclause: Any = None, *, isouter: bool = False
    ) -> Select[_TP]:
        """JOIN with an explicit left side."""
        left_from = coerce_from(left)
        return self.select_from(left_from.join(target, onclause, isouter=isouter))

    @staticmethod
    def _join_left(
        froms: list[FromClause], right: FromClause, onclause: ColumnElement[Any] | None
    ) -> FromClause:
        candidates = [from_ for from_ in froms if from_ is not right]
        if not candidates:
            raise ArgumentError(
                "nothing to join from: select something first, or use select_from()/join_from()"
            )
        if onclause is not None:
            referred = {id(from_) for from_ in onclause._from_objects}
            for from_ in candidates:
                if any(id(t) in referred for t in (from_, *from_._hidden_froms)):
                    return from_
            return candidates[0]
        if len(candidates) == 1:
            return candidates[0]  # join_condition() explains what is missing
        linked = [
            from_
            for from_ in candidates
            if _foreign_key_pairs(from_, right) or _foreign_key_pairs(right, from_)
        ]
        if len(linked) == 1:
            return linked[0]
        if not linked:
            raise ArgumentError(
                f"can't find a foreign key from any of the FROM objects to "
                f"{_describe_from(right)}; pass an ON clause: .join(target, onclause)"
            )
        raise ArgumentError(
            f"several FROM objects have foreign keys to {_describe_from(right)}; pass an ON "
            "clause or use join_from(left, target)"
        )

    def group_by(self, *clauses: Any) -> Select[_TP]:
        new = self._generate()
        new._group_by = self._group_by + _order_items(clauses)
        return new

    def having(self, *criteria: Any) -> Select[_TP]:
        new = self._generate()
        new._having = self._having + tuple(coerce_where(c) for c in criteria)
        return new

    def distinct(self) -> Select[_TP]:
        new = self._generate()
        new._distinct = True
        return new

    def with_for_update(
        self, *, nowait: bool = False, skip_locked: bool = False, read: bool = False
    ) -> Select[_TP]:
        """``FOR UPDATE`` (``FOR SHARE`` with ``read``) on PostgreSQL; nothing on SQLite,
        which locks the whole database for a writing transaction anyway."""
        new = self._generate()
        new._for_update = (read, nowait, skip_locked)
        return new

    def _locking_only(self, froms: Sequence[FromClause]) -> Select[_TP]:
        """The statement with its lock (if any) limited to ``froms``' rows: joins are
        replaced by the tables and aliases they join."""
        relations: list[FromClause] = []

        def add(from_: FromClause) -> None:
            if isinstance(from_, Join):
                add(from_.left)
                add(from_.right)
            else:
                relations.append(from_)

        for from_ in froms:
            add(from_)
        new = self._generate()
        new._lock_of = tuple(relations)
        return new

    def add_columns(self, *entities: Any) -> Select[Any]:
        new = self._generate()
        new._raw_columns = self._raw_columns + tuple(entities)
        for entity in entities:
            _coerce_entity(entity)
        return new

    def with_only_columns(self, *entities: Any) -> Select[Any]:
        """The same statement selecting other columns (its FROMs are kept)."""
        new = self._generate()
        froms = self._froms()
        new._raw_columns = tuple(entities)
        for entity in entities:
            _coerce_entity(entity)
        new._from_obj = tuple(froms)
        return new

    def options(self, *options: Any) -> Select[_TP]:
        """Store loader options (read by the ORM); each has a hashable ``_cache_key``."""
        new = self._generate()
        new._options = self._options + options
        return new

    def populate_existing(self) -> Select[_TP]:
        return self.execution_options(populate_existing=True)

    def scalar_subquery(self) -> ScalarSelect[Any]:
        """This SELECT of one column as a value."""
        return ScalarSelect(self)

    def label(self, name: str) -> Label[Any]:
        return self.scalar_subquery().label(name)

    def exists(self) -> Exists:
        return Exists(self)

    def union(self, *others: Select[Any]) -> CompoundSelect:
        return CompoundSelect("UNION", (self, *others))

    def union_all(self, *others: Select[Any]) -> CompoundSelect:
        return CompoundSelect("UNION ALL", (self, *others))

    # --- cache key --------------------------------------------------------------------

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return (
            "select",
            tuple(_entity_key(e, anon_map, binds) for e in self._raw_columns),
            tuple(f._from_cache_key(anon_map, binds) for f in self._from_obj),
            tuple(c._gen_cache_key(anon_map, binds) for c in self._where_criteria),
            tuple(c._gen_cache_key(anon_map, binds) for c in self._group_by),
            tuple(c._gen_cache_key(anon_map, binds) for c in self._having),
            self._limit_offset_key(anon_map, binds),
            self._distinct,
            self._for_update,
            tuple(f._from_cache_key(anon_map, binds) for f in self._lock_of),
            tuple(option._cache_key for option in self._options),
        )


def _order_items(clauses: tuple[Any, ...]) -> tuple[ColumnElement[Any], ...]:
    """ORDER BY / GROUP BY items; a mapped class or a table stands for its columns, as in
    SQLAlchemy (``group_by(User)`` with ``select(User, func.count(...))``)."""
    items: list[ColumnElement[Any]] = []
    for clause in clauses:
        element = clause
        if isinstance(clause, type) and hasattr(clause, "__clause_element__"):
            element = clause.__clause_element__()
        if isinstance(element, FromClause):
            items.extend(element._select_columns)
        else:
            items.append(coerce_order_by(clause))
    return tuple(items)


def _coerce_entity(entity: Any) -> ColumnElement[Any] | FromClause:
    if isinstance(entity, ColumnElement | FromClause):
        return entity
    clause_element = getattr(entity, "__clause_element__", None)
    if clause_element is not None:
        element = clause_element()
        if isinstance(element, ColumnElement | FromClause):
            return element
    column = _as_clause(entity)
    if column is not None:
        return column
    if isinstance(entity, str):
        raise ArgumentError(
            f"select() does not take strings; use literal_column({entity!r}) or text()"
        )
    raise ArgumentError(f"select() expects columns, tables or mapped classes, got {entity!r}")


def _selected_element(entity: Any) -> ColumnElement[Any] | FromClause:
    """What ``select(entity)`` selects: a column reached through an attribute (an ORM
    attribute's ``__clause_element__``) whose key differs from its name is labelled by its
    key, so that ``select(User.fullname)`` has ``row.fullname`` whatever the column's name."""
    element = _coerce_entity(entity)
    if element is not entity and isinstance(element, ColumnClause) and element.key != element.name:
        return element.label(element.key)
    return element


def _entity_key(entity: Any, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
    element = _selected_element(entity)
    if isinstance(element, FromClause):
        return ("entity", element._from_cache_key(anon_map, binds))
    return element._gen_cache_key(anon_map, binds)


_T0 = TypeVar("_T0")
_T1 = TypeVar("_T1")
_T2 = TypeVar("_T2")
_T3 = TypeVar("_T3")


class _HasTypedClauseElement(Protocol[_T]):
    """An ORM attribute such as ``User.id``: typed by the value it holds."""

    def __clause_element__(self) -> ColumnElement[_T]: ...


#: What ``select()`` can type: a mapped class (rows hold its objects), a column expression,
#: or an ORM attribute (rows hold its values).
_TypedEntity = type[_T] | ColumnElement[_T] | _HasTypedClauseElement[_T]


@overload
def select(entity0: _TypedEntity[_T0], /) -> Select[tuple[_T0]]: ...
@overload
def select(
    entity0: _TypedEntity[_T0], entity1: _TypedEntity[_T1], /
) -> Select[tuple[_T0, _T1]]: ...
@overload
def select(
    entity0: _TypedEntity[_T0], entity1: _TypedEntity[_T1], entity2: _TypedEntity[_T2], /
) -> Select[tuple[_T0, _T1, _T2]]: ...
@overload
def select(
    entity0: _TypedEntity[_T0],
    entity1: _TypedEntity[_T1],
    entity2: _TypedEntity[_T2],
    entity3: _TypedEntity[_T3],
    /,
) -> Select[tuple[_T0, _T1, _T2, _T3]]: ...
@overload
def select(*entities: Any) -> Select[Any]: ...
def select(*entities: Any) -> Select[Any]:
    """``SELECT``: ``select(users)``, ``select(User)``, ``select(users.c.id, func.count())``.

    For type checkers ``select(User.id, User.name)`` is a ``Select[tuple[int, str]]`` and
    ``select(User)`` a ``Select[tuple[User]]``.
    """
    return Select(entities)


class CompoundSelect(_SelectBase):
    """``UNION`` / ``UNION ALL`` of SELECTs, with its own ORDER BY / LIMIT / OFFSET."""

    __visit_name__ = "compound_select"

    def __init__(self, keyword: str, selects: Iterable[Select[Any]]) -> None:
        self.keyword = keyword
        self.selects = tuple(selects)

    def _labelled_columns(self, *, dedupe: bool) -> list[tuple[str, ColumnElement[Any]]]:
        return self.selects[0]._labelled_columns(dedupe=dedupe)

    @property
    def selected_columns(self) -> ColumnCollection[ColumnElement[Any]]:
        return self.selects[0].selected_columns

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return (
            "compound",
            self.keyword,
            tuple(s._gen_cache_key(anon_map, binds) for s in self.selects),
            self._limit_offset_key(anon_map, binds),
        )


def union(*selects: Select[Any]) -> CompoundSelect:
    return CompoundSelect("UNION", selects)


def union_all(*selects: Select[Any]) -> CompoundSelect:
    return CompoundSelect("UNION ALL", selects)
