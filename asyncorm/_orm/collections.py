"""The list that holds a loaded one-to-many or many-to-many collection.

Every mutation goes through ``_added``/``_removed`` so the other side of a
``back_populates`` pair stays in step at once, and the first change of a persistent
parent's collection records the original list for the unit of work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, SupportsIndex, TypeVar

if TYPE_CHECKING:
    from .relationships import Relationship

_T = TypeVar("_T")


class InstrumentedList(list[_T]):
    """A ``list`` that reports appends and removals to its relationship."""

    __slots__ = ("_owner", "_relationship")

    def __init__(
        self, owner: object, relationship: Relationship[Any], items: Iterable[_T] = ()
    ) -> None:
        super().__init__(items)
        self._owner = owner
        self._relationship = relationship

    def _before_change(self) -> None:
        self._relationship.collection_will_change(self._owner, self)

    def _added(self, item: Any) -> None:
        self._relationship.collection_added(self._owner, item)

    def _removed(self, item: Any) -> None:
        self._relationship.collection_removed(self._owner, item)

    def append(self, item: _T) -> None:
        self._before_change()
        super().append(item)
        self._added(item)

    def extend(self, items: Iterable[_T]) -> None:
        for item in list(items):
            self.append(item)

    def __iadd__(self, items: Iterable[_T]) -> InstrumentedList[_T]:  # type: ignore[override,misc]
        self.extend(items)
        return self

    def insert(self, index: SupportsIndex, item: _T) -> None:
        self._before_change()
        super().insert(index, item)
        self._added(item)

    def remove(self, item: _T) -> None:
        self._before_change()
        super().remove(item)
        self._removed(item)

    def pop(self, index: SupportsIndex = -1) -> _T:
        self._before_change()
        item = super().pop(index)
        self._removed(item)
        return item

    def clear(self) -> None:
        self._before_change()
        items = list(self)
        super().clear()
        for item in items:
            self._removed(item)

    def __setitem__(self, index: Any, value: Any) -> None:
        self._before_change()
        old = self[index]
        super().__setitem__(index, value)
        for item in old if isinstance(index, slice) else [old]:
            self._removed(item)
        for item in value if isinstance(index, slice) else [value]:
            self._added(item)

    def __delitem__(self, index: Any) -> None:
        self._before_change()
        old = self[index]
        super().__delitem__(index)
        for item in old if isinstance(index, slice) else [old]:
            self._removed(item)

    def _load_quietly(self, items: Iterable[_T]) -> None:
        """Fill from the database: no events, no history."""
        super().extend(items)

    def _append_quietly(self, item: _T) -> None:
        """Mirror the other side of ``back_populates``; that side already recorded it."""
        self._before_change()
        super().append(item)

    def _remove_quietly(self, item: _T) -> None:
        self._before_change()
        for position, existing in enumerate(self):
            if existing is item:
                super().__delitem__(position)
                return

    def __reduce__(self) -> Any:
        return (list, (list(self),))
