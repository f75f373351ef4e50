"""The identity map: one object per row per session, held weakly unless it has changes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set
from typing import TYPE_CHECKING, Any

from . import speedups
from .state import InstanceState

if TYPE_CHECKING:
    from .mapper import Mapper


class IdentityMap:
    """Maps each mapper's primary keys to states; an object stays alive only while someone
    else holds it, or while the session has unflushed work for it: then it is *pinned*
    (held strongly here, see ``pin`` and ``hold``).

    One dictionary per mapper, keyed by the bare primary key (the value itself, or a tuple
    for a composite key): no key object is allocated per row, and a lookup hashes a value,
    not a ``(class, (value,))`` pair.
    """

    __slots__ = ("_by_mapper", "_held", "_pinned")

    def __init__(self) -> None:
        self._by_mapper: dict[Mapper, dict[Any, InstanceState]] = {}
        #: changed persistent objects by state (states hash by identity), kept alive until
        #: their changes are flushed
        self._held: dict[InstanceState, object] = {}
        #: pending objects and objects marked for deletion, kept alive until flushed
        self._pinned: dict[InstanceState, object] = {}

    def __len__(self) -> int:
        return sum(map(len, self._by_mapper.values()))

    def states_of(self, mapper: Mapper) -> dict[Any, InstanceState]:
        """The live dictionary of one mapper's states (row loaders write into it)."""
        states = self._by_mapper.get(mapper)
        if states is None:
            states = self._by_mapper[mapper] = {}
        return states

    def get_state(self, mapper: Mapper, key: Any) -> InstanceState | None:
        states = self._by_mapper.get(mapper)
        return None if states is None else states.get(key)

    def get(self, mapper: Mapper, key: Any) -> Any:
        state = self.get_state(mapper, key)
        return None if state is None else state()

    def add(self, state: InstanceState) -> None:
        assert state.key is not None
        self.states_of(state.mapper)[state.key] = state

    def pin(self, state: InstanceState, obj: object) -> None:
        """Keep ``obj`` alive while the session has work for it."""
        self._pinned[state] = obj

    def unpin(self, state: InstanceState) -> None:
        self._pinned.pop(state, None)

    def hold(self, state: InstanceState, obj: object) -> None:
        """Keep ``obj`` alive until its changes are flushed."""
        self._held[state] = obj

    def release(self, state: InstanceState) -> None:
        self._held.pop(state, None)

    def discard(self, state: InstanceState) -> None:
        self.discard_all((state,))

    def discard_all(self, states: Iterable[InstanceState]) -> None:
        """Forget the states (the rows a flush deleted, say). Entries go before the pins, so
        an object dying as its pin goes finds nothing left to drop."""
        by_mapper, held, pinned = self._by_mapper, self._held, self._pinned
        mapper = entries = None  # the states come a mapper at a time, as a rule
        for state in states:
            if state.mapper is not mapper:
                mapper = state.mapper
                entries = by_mapper.get(mapper)
            key = state.key
            if entries is not None and entries.get(key) is state:
                del entries[key]
            held.pop(state, None)
            pinned.pop(state, None)

    def states(self) -> list[InstanceState]:
        return [state for states in self._by_mapper.values() for state in states.values()]

    def objects(self) -> list[Any]:
        return [obj for obj in (state() for state in self.states()) if obj is not None]

    def changed_states(self) -> list[InstanceState]:
        """The states of held objects that still have changes (one set back has none)."""
        return [state for state in self._held if state.committed]

    def detach_all(self) -> None:
        """Forget every state, each now belonging to no session (what a close does)."""
        self._pinned.clear()
        self._held.clear()
        # Runs at every close, over every loaded object, so no list of the states is built.
        forget_session = speedups.forget_session
        for states in self._by_mapper.values():
            if forget_session is not None:
                forget_session(states)
            else:
                for state in states.values():
                    state.session = None
            # Emptied in place: row loaders bound to a result (a stream) keep writing into
            # these very dictionaries.
            states.clear()


class IdentitySet(Set[Any]):
    """A read-only set of objects compared by identity, never by their ``__eq__``."""

    __slots__ = ("_objects",)

    def __init__(self, objects: Iterable[Any] = ()) -> None:
        self._objects = {id(obj): obj for obj in objects}

    def __contains__(self, obj: object) -> bool:
        return id(obj) in self._objects

    def __iter__(self) -> Iterator[Any]:
        return iter(self._objects.values())

    def __len__(self) -> int:
        return len(self._objects)

    def __repr__(self) -> str:
        return f"IdentitySet({list(self._objects.values())!r})"
