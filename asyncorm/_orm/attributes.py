"""Attribute descriptors on mapped classes.

At class level an attribute is a SQL expression (``User.id == 5``); on an instance it reads
the object's ``__dict__`` and records the old value on the first change, which is all the
unit of work needs to UPDATE only changed columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar, overload

from .._sql.elements import ColumnOperators
from ..exc import UnloadedAttributeError
from . import speedups
from .state import NO_VALUE, InstanceState, instance_state

if TYPE_CHECKING:
    from .._sql.schema import Column
    from .mapper import Mapper

_T = TypeVar("_T")


class History(NamedTuple):
    """An attribute's change since it was loaded: ``added``, ``unchanged``, ``deleted``."""

    added: tuple[Any, ...]
    unchanged: tuple[Any, ...]
    deleted: tuple[Any, ...]

    def has_changes(self) -> bool:
        return bool(self.added or self.deleted)

    def empty(self) -> bool:
        return not (self.added or self.unchanged or self.deleted)


class QueryableAttribute(ColumnOperators, Generic[_T]):
    """Behaviour shared by every mapped attribute: a name, an owning mapper, expression use."""

    key: str
    mapper: Mapper

    def __init__(self, mapper: Mapper, key: str) -> None:
        self.mapper = mapper
        self.key = key

    @property
    def class_(self) -> type:
        return self.mapper.class_

    def __repr__(self) -> str:
        return f"{self.mapper.class_.__name__}.{self.key}"

    def unloaded_error(self, obj: object, state: InstanceState) -> UnloadedAttributeError:
        name = type(obj).__name__
        expired = bool(state.expired and self.key in state.expired)
        why = (
            "was expired (by a commit, a rollback, expire() or a bulk UPDATE)"
            if expired
            else "was not loaded"
        )
        if state.session is None:
            fix = (
                "the object is detached, so attach it first (session.add(obj) or "
                "obj = await session.merge(obj)) and then "
                f"`await session.refresh(obj, [{self.key!r}])`"
            )
        else:
            fix = f"`await session.refresh(obj, [{self.key!r}])`"
        advice = (
            " To keep committed objects readable, create the session with expire_on_commit=False."
            if expired
            else ""
        )
        return UnloadedAttributeError(
            f"{name}.{self.key} {why}, and asyncorm never loads implicitly. Load it with "
            f"{fix}{self._load_hint()}.{advice}"
        )

    def _load_hint(self) -> str:
        return ""

    # The instance side: one ``__dict__`` lookup, and ``_unloaded`` for a value it lacks.
    # (A column attribute reads through the C extension's ColumnAccess, ahead in its MRO.)
    def __get__(self, obj: object | None, owner: type) -> Any:
        if obj is None:
            return self
        try:
            return obj.__dict__[self.key]
        except KeyError:
            return self._unloaded(obj)

    def _unloaded(self, obj: object) -> Any:
        raise NotImplementedError


class _PythonColumnAccess:
    """The writes of a column attribute, through ``InstrumentedAttribute._set`` (reads are
    ``QueryableAttribute.__get__``). The C extension's ``ColumnAccess`` replaces this class
    and that read (measured: a read 87 → 31 ns, a write 127 → 37 ns); it records the
    changes of loaded attributes itself, and calls back ``_unloaded`` for a missing value
    and ``_set`` for the other writes (see ``_speedups.c``)."""

    __slots__ = ()

    def __set__(self, obj: object, value: Any) -> None:
        self._set(obj, value)

    def __delete__(self, obj: object) -> None:
        self._set(obj, None)

    def _set(self, obj: object, value: Any) -> None:
        raise NotImplementedError


if TYPE_CHECKING:
    _ColumnAccess = _PythonColumnAccess
else:
    _ColumnAccess = speedups.ColumnAccess or _PythonColumnAccess


class InstrumentedAttribute(_ColumnAccess, QueryableAttribute[_T]):
    """A mapped column attribute."""

    column: Column[Any]

    def __init__(self, mapper: Mapper, key: str, column: Column[Any]) -> None:
        super().__init__(mapper, key)
        self.column = column
        self._owner = mapper.class_  # ColumnAccess reads the state slot of its instances

    def __clause_element__(self) -> Column[_T]:
        return self.column

    if TYPE_CHECKING:  # the descriptor methods are _ColumnAccess's; these are their types

        @overload
        def __get__(self, obj: None, owner: type) -> InstrumentedAttribute[_T]: ...
        @overload
        def __get__(self, obj: object, owner: type) -> _T: ...
        def __get__(self, obj: object | None, owner: type) -> Any: ...
        def __set__(self, obj: object, value: _T) -> None: ...

    def _unloaded(self, obj: object) -> Any:
        """A read of a value ``__dict__`` does not hold."""
        state = instance_state(obj)
        if state.key is None:
            # Transient and pending objects have nothing to load: unset means None.
            return None
        raise self.unloaded_error(obj, state) from None

    def _set(self, obj: object, value: Any) -> None:
        values = obj.__dict__
        key = self.key
        try:
            state: InstanceState = obj._asyncorm_state  # type: ignore[attr-defined]
        except AttributeError:
            state = instance_state(obj)
        if state.key is not None:
            if state.committed is None and key in values:
                # The first change of a loaded object (W4's ``user.age += 1``), inline:
                # record_change, _same and IdentityMap.hold without a call.
                old = values[key]
                try:
                    same = old is value or (bool(old == value) and type(old) is type(value))
                except Exception:
                    same = False
                if not same:
                    state.committed = {key: old}
                    session = state.session
                    if session is not None:
                        session._identity_map._held[state] = obj
            else:
                record_change(state, obj, key, values.get(key, NO_VALUE), value)
        values[key] = value


def record_change(state: InstanceState, obj: object, key: str, old: Any, new: Any) -> None:
    """Keep the first old value of ``key``; forget it when the value is set back."""
    committed = state.committed
    if committed is None:
        if old is not NO_VALUE and _same(old, new):
            return
        state.committed = {key: old}
        if state.session is not None:
            state.session._identity_map.hold(state, obj)
    elif key in committed:
        original = committed[key]
        if original is not NO_VALUE and _same(original, new):
            del committed[key]
    elif old is NO_VALUE or not _same(old, new):
        committed[key] = old


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return False


def attribute_history(obj: object, key: str) -> History:
    """``added``/``unchanged``/``deleted`` for one attribute, as ``inspect()`` reports it."""
    state = instance_state(obj)
    values = obj.__dict__
    current = values.get(key, NO_VALUE)
    committed = state.committed
    relationship = state.mapper.relationships.get(key)
    if relationship is not None and relationship.uselist:
        return _collection_history(state, key, current, committed)
    if committed is not None and key in committed:
        old = committed[key]
        added = () if current is NO_VALUE else (current,)
        deleted = () if old is NO_VALUE or old is None else (old,)
        return History(added, (), deleted)
    if current is NO_VALUE:
        return History((), (), ())
    if state.key is None:
        return History((current,), (), ())
    return History((), (current,), ())


def _collection_history(
    state: InstanceState, key: str, current: Any, committed: dict[str, Any] | None
) -> History:
    """A collection's history item by item: the objects appended since it was loaded, those
    still in it, and those removed (SQLAlchemy's ``History`` for a collection)."""
    items = () if current is NO_VALUE or current is None else tuple(current)
    if committed is not None and key in committed:
        original = committed[key]
        before = original if isinstance(original, list) else []
        kept = {id(item) for item in before}
        now = {id(item) for item in items}
        return History(
            tuple(item for item in items if id(item) not in kept),
            tuple(item for item in items if id(item) in kept),
            tuple(item for item in before if id(item) not in now),
        )
    if state.key is None:
        return History(items, (), ())
    return History((), items, ())
