"""The ORM's optional C extension (``_speedups.c``): its parts, or ``None`` where it is not
built or ``ASYNCORM_NO_EXTENSIONS`` is set (see ``asyncorm._extensions``)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from .._extensions import load

if TYPE_CHECKING:
    from ._speedups import ColumnAccess as CColumnAccess
    from ._speedups import Hydrator as CHydrator

_module = load("asyncorm._orm._speedups")

#: one row layout's hydration loop (see ``Mapper._build_row_loader``)
Hydrator: type[CHydrator] | None = None if _module is None else _module.Hydrator
#: ``state.session = None`` for every state among a dict's values
forget_session: Callable[[dict[Any, Any]], None] | None = (
    None if _module is None else _module.forget_session
)
#: the base of InstrumentedAttribute: its __get__ and __set__ (see ``attributes.py``)
ColumnAccess: type[CColumnAccess] | None = None if _module is None else _module.ColumnAccess
#: tells the extension the slot layout of InstanceState and the NO_VALUE marker (``state.py``)
register_state_class: Callable[[type, object], None] | None = (
    None if _module is None else _module.register_state_class
)
#: tells the extension the slot layout of AsyncSession and IdentityMap (``session.py``)
register_session_class: Callable[[type, type], None] | None = (
    None if _module is None else _module.register_session_class
)
#: the states' weakref callback (see ``state.object_collected``)
object_collected: Callable[[Any], None] | None = (
    None if _module is None else _module.object_collected
)
#: flush planning's run of one-column updates (see ``unitofwork._extend_column_updates``)
extend_column_updates: Callable[..., int] | None = (
    None if _module is None else _module.extend_column_updates
)
#: a flush's release of the changed objects (see ``AsyncSession._clear_changes``)
release_changes: Callable[[list[Any], dict[Any, Any]], None] | None = (
    None if _module is None else _module.release_changes
)
#: the states whose objects have a relationship loaded or set (``session._with_relationships``)
linked_states: Callable[[list[Any], AbstractSet[str]], list[Any]] | None = (
    None if _module is None else _module.linked_states
)
