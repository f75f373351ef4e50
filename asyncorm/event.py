"""Register listeners on engines, sessions and sessionmakers.

``listen(engine, "before_execute", fn)`` or, as a decorator,
``@listens_for(session, "after_commit")``. Listeners may be plain or async functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._events import Dispatcher
from .exc import ArgumentError

__all__ = ["contains", "listen", "listens_for", "remove"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _dispatcher(target: object) -> Dispatcher:
    dispatch = getattr(target, "dispatch", None)
    if not isinstance(dispatch, Dispatcher):
        raise ArgumentError(
            f"{target!r} does not take event listeners; listen on an engine, "
            "an AsyncSession or an async_sessionmaker"
        )
    return dispatch


def listen(target: object, identifier: str, fn: Callable[..., Any]) -> None:
    """Call ``fn`` whenever ``target`` fires the event ``identifier``."""
    _dispatcher(target).add(identifier, fn)


def listens_for(target: object, identifier: str) -> Callable[[_F], _F]:
    """Decorator form of :func:`listen`."""

    def decorate(fn: _F) -> _F:
        listen(target, identifier, fn)
        return fn

    return decorate


def remove(target: object, identifier: str, fn: Callable[..., Any]) -> None:
    """Stop calling ``fn`` for ``identifier`` on ``target``."""
    _dispatcher(target).remove(identifier, fn)


def contains(target: object, identifier: str, fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` listens to ``identifier`` directly on ``target``."""
    return fn in _dispatcher(target).listeners(identifier)
