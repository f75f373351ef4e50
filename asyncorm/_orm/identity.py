"""The identity map: one object per row per session, held weakly unless it has changes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set
from typing import Any

from .state import IdentityKey, InstanceState


class IdentityMap:
    """Maps identity keys to states; an object stays alive only while someone else holds it,
    or while it has unflushed changes (then its state holds it strongly, see ``hold``)."""

    __slots__ = ("_held", "_states")

    def __init__(self) -> None:
        self._states: dict[IdentityKey, InstanceState] = {}
        # States whose object is pinned through ``state.strong``; keyed by id() because
        # user classes may define __eq__/__hash__ and weakrefs compare by their referents.
        self._held: dict[int, InstanceState] = {}

    def __len__(self) -> int:
        return len(self._states)

    def get_state(self, key: IdentityKey) -> InstanceState | None:
        return self._states.get(key)

    def get(self, key: IdentityKey) -> Any:
        state = self._states.get(key)
        return None if state is None else state()

    def add(self, state: InstanceState) -> None:
        assert state.key is not None
        self._states[state.key] = state

    def hold(self, state: InstanceState, obj: object) -> None:
        """Keep ``obj`` alive until its changes are flushed."""
        state.strong = obj
        self._held[id(state)] = state

    def release(self, state: InstanceState) -> None:
        state.strong = None
        self._held.pop(id(state), None)

    def discard(self, state: InstanceState) -> None:
        if state.key is not None and self._states.get(state.key) is state:
            del self._states[state.key]
        self.release(state)

    def discard_collected(self, state: InstanceState) -> None:
        # Weakref callback: the object is gone, so only its map entry is left to drop.
        key = state.key
        if key is not None and self._states.get(key) is state:
            del self._states[key]

    def states(self) -> list[InstanceState]:
        return list(self._states.values())

    def objects(self) -> list[Any]:
        return [obj for obj in (state() for state in self._states.values()) if obj is not None]

    def held_states(self) -> list[InstanceState]:
        return list(self._held.values())

    def clear(self) -> None:
        for state in self._held.values():
            state.strong = None
        self._held.clear()
        self._states.clear()


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
