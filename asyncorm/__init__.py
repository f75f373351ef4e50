"""asyncorm: an async-first ORM with SQLAlchemy 2.x's API and no implicit I/O."""

from __future__ import annotations

from . import event as event
from . import exc as exc

# --- engine layer (asyncorm._engine) re-exports: keep this block sorted ---
# --- end engine layer ---

# --- SQL layer (asyncorm._sql) re-exports: keep this block sorted ---
# --- end SQL layer ---

# --- ORM layer (asyncorm._orm) re-exports: keep this block sorted ---
# --- end ORM layer ---

__all__ = [
    "event",
    "exc",
]
