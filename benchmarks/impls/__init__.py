"""The implementations compared, in the order they are interleaved."""

from __future__ import annotations

from .base import Implementation, NotApplicable

__all__ = ["Implementation", "NotApplicable", "create"]


def create(name: str) -> Implementation:
    """A new, unopened implementation by name (imported here so a missing peer library
    fails only its own cells)."""
    if name == "asyncorm":
        from .asyncorm_impl import AsyncormImplementation

        return AsyncormImplementation()
    if name == "sqlalchemy":
        from .sqlalchemy_impl import SQLAlchemyImplementation

        return SQLAlchemyImplementation()
    if name == "tortoise":
        try:
            from .tortoise_impl import TortoiseImplementation
        except ModuleNotFoundError as missing:  # the optional peer: its cells read n/a
            message = f"{missing.name} is not installed (pip install -e '.[bench]')"
            raise NotApplicable(message) from None
        return TortoiseImplementation()
    if name == "raw":
        from .raw import RawImplementation

        return RawImplementation()
    if name == "raw_objects":
        from .raw import RawObjectsImplementation

        return RawObjectsImplementation()
    raise ValueError(f"unknown implementation {name!r}")
