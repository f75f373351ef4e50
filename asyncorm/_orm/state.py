"""Per-object ORM state, kept compact for sessions that load many rows.

An ``InstanceState`` *is* the weak reference to its object: one small slotted object per
instance serves as the state, the identity map's weak handle, and (through its callback) the
hook that drops a garbage-collected object from its session. The object holds its state
strongly in the ``_asyncorm_state`` slot that ``DeclarativeBase`` declares; attribute values
live in the object's own ``__dict__`` under their attribute names, so reading a loaded
attribute is one dictionary lookup, and a ``__dict__`` of plain values stays out of the
cyclic collector's sight. Nothing here refers to the object strongly: the session pins
objects it has unflushed work for (``IdentityMap.pin``), and the mapper is an attribute of
the class.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, Final

from . import speedups

if TYPE_CHECKING:
    from .mapper import Mapper
    from .session import AsyncSession

STATE_ATTR: Final = "_asyncorm_state"


class _NoValue:
    """Marks an attribute that had no loaded value (never loaded, expired, or transient)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_VALUE"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Final = _NoValue()


def _drop_entry(state: InstanceState) -> None:
    """The weakref callback: the object is gone, so only its identity-map entry is left to
    drop. It runs for every object that dies in a session (W4 and W7 let 2,000 go at
    once), so the map's dictionary is reached directly, in this one call. The C extension's
    ``object_collected`` does the same (W4's 2,000 objects dying at commit: 0.97 ms in
    Python, 0.64 ms with it)."""
    session = state.session
    key = state.key
    if session is not None and key is not None:
        entries = session._identity_map._by_mapper.get(state.mapper)
        if entries is not None and entries.get(key) is state:
            del entries[key]


#: the callback of every state's weak reference
object_collected: Callable[[InstanceState], None] = speedups.object_collected or _drop_entry


class InstanceState(weakref.ref):  # type: ignore[type-arg]
    """What the ORM knows about one mapped object.

    ``key`` is the row's primary key once the row exists: the value itself, or a tuple of
    values for a composite key (the identity map is per mapper, so that is identity
    enough). ``session`` is the owning session;
    ``committed`` the values attributes had before they were changed (``None`` while nothing
    changed, to keep unmodified objects small); ``expired`` the names expired since the last
    load (``None`` when none); ``deleted`` is set once a flush deleted the row.
    """

    # ``mapper`` is a class attribute of the per-mapper subclass (``Mapper.state_class``).
    __slots__ = ("committed", "deleted", "expired", "key", "session")

    mapper: Mapper
    key: Any
    session: AsyncSession | None
    committed: dict[str, Any] | None
    expired: AbstractSet[str] | None
    deleted: bool

    # No Python-level __new__/__init__: constructing one is the C weakref constructor, and
    # the slots are filled by ``new_state`` (or inline by generated row loaders).

    # A state is itself, not its object: a weakref hashes and compares by its referent,
    # which may define __eq__/__hash__ (or be gone). By identity, a state can key a dict
    # (the identity map's held and pinned objects, the session's new and deleted ones) with
    # no id() int made per object.
    __hash__ = object.__hash__
    __eq__ = object.__eq__
    __ne__ = object.__ne__

    @property
    def obj(self) -> Any:
        return self()

    @property
    def modified(self) -> bool:
        return bool(self.committed)

    def __repr__(self) -> str:
        return f"<InstanceState of {self.mapper.class_.__name__} key={self.key!r}>"


if speedups.register_state_class is not None:
    speedups.register_state_class(InstanceState, NO_VALUE)


def new_state(obj: object, mapper: Mapper) -> InstanceState:
    """A fresh state for ``obj`` (not yet attached to it)."""
    state = mapper.state_class(obj, object_collected)
    state.key = None
    state.session = None
    state.committed = None
    state.expired = None
    state.deleted = False
    return state


def instance_state(obj: object) -> InstanceState:
    """The state of a mapped object, created on first need (e.g. a custom ``__init__``)."""
    try:
        return obj._asyncorm_state  # type: ignore[attr-defined,no-any-return]
    except AttributeError:
        pass
    from .mapper import mapper_of_class

    mapper = mapper_of_class(type(obj))
    if mapper is None:
        raise _not_mapped(obj)
    state = new_state(obj, mapper)
    obj._asyncorm_state = state  # type: ignore[attr-defined]
    return state


def _not_mapped(obj: object) -> Exception:
    from ..exc import InvalidRequestError

    return InvalidRequestError(
        f"{obj!r} is not an instance of a mapped class; map its class by subclassing "
        "a DeclarativeBase"
    )
