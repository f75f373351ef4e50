"""Database drivers behind one small protocol (:mod:`asyncorm._drivers.base`).

Driver modules import their driver package at import time, so the engine loads them by
name only when a URL asks for one: a missing driver is an ``ArgumentError`` naming the URL's
scheme, and importing asyncorm never needs both drivers installed.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..exc import ArgumentError

__all__ = ["load_driver"]

_MODULES = {"asyncpg": "asyncpg", "aiosqlite": "aiosqlite"}


def load_driver(scheme: str, driver: str) -> ModuleType:
    """The driver module for ``driver`` (``"asyncpg"`` / ``"aiosqlite"``)."""
    module = _MODULES.get(driver)
    if module is None:
        raise ArgumentError(f"no asyncorm driver {driver!r} for scheme {scheme!r}")
    try:
        return importlib.import_module(f"{__name__}.{module}")
    except ImportError as error:
        raise ArgumentError(
            f"scheme {scheme!r} needs the {driver!r} package, which is not installed "
            f"(pip install {driver}): {error}"
        ) from error
