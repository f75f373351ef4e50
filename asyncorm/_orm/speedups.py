"""The optional C extension (``_speedups.c``): its parts, or ``None`` where it is not built.

Setting ``ASYNCORM_NO_EXTENSIONS=1`` before import runs the pure-Python code instead: the
two must behave the same, and the test suite runs under both.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._speedups import ColumnAccess as CColumnAccess
    from ._speedups import Hydrator as CHydrator


def _extension() -> ModuleType | None:
    if os.environ.get("ASYNCORM_NO_EXTENSIONS"):
        return None
    try:
        return importlib.import_module("asyncorm._orm._speedups")
    except ImportError:  # installed without a C compiler: the Python loops run instead
        return None


_module = _extension()

#: one row layout's hydration loop (see ``Mapper._build_row_loader``)
Hydrator: type[CHydrator] | None = None if _module is None else _module.Hydrator
#: ``state.session = None`` for every state among a dict's values
forget_session: Callable[[dict[Any, Any]], None] | None = (
    None if _module is None else _module.forget_session
)
#: the base of InstrumentedAttribute: its __get__ and __set__ (see ``attributes.py``)
ColumnAccess: type[CColumnAccess] | None = None if _module is None else _module.ColumnAccess
#: tells the extension the slot layout of InstanceState (``state.py`` calls it)
register_state_class: Callable[[type], None] | None = (
    None if _module is None else _module.register_state_class
)
#: the states' weakref callback (see ``state.object_collected``)
object_collected: Callable[[Any], None] | None = (
    None if _module is None else _module.object_collected
)
