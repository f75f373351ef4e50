"""PostgreSQL and SQLite: SQL rendering, type conversion and the compiled-statement cache."""

from __future__ import annotations

from ..exc import ArgumentError
from .base import Compiled, Dialect
from .postgresql import PGDialect
from .sqlite import SQLiteDialect

__all__ = ["Compiled", "Dialect", "get_dialect"]

_DIALECT_CLASSES: dict[str, type[Dialect]] = {
    "postgresql": PGDialect,
    "sqlite": SQLiteDialect,
}
_dialects: dict[str, Dialect] = {}


def get_dialect(name: str) -> Dialect:
    """The shared dialect (and compiled cache) for ``"postgresql"`` or ``"sqlite"``."""
    dialect = _dialects.get(name)
    if dialect is None:
        dialect_class = _DIALECT_CLASSES.get(name)
        if dialect_class is None:
            raise ArgumentError(
                f"unknown dialect {name!r}; asyncorm supports {', '.join(_DIALECT_CLASSES)}"
            )
        dialect = _dialects[name] = dialect_class()
    return dialect
