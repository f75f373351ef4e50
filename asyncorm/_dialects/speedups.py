"""The dialects' optional C extension (``_speedups.c``): its parts, or ``None`` where it is
not built or ``ASYNCORM_NO_EXTENSIONS`` is set (see ``asyncorm._extensions``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._extensions import load

if TYPE_CHECKING:
    from ._speedups import Binder as CBinder

_module = load("asyncorm._dialects._speedups")

#: binds rows of parameters for one statement shape (see ``base._RowBinder``)
Binder: type[CBinder] | None = None if _module is None else _module.Binder
