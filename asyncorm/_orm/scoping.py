"""``async_scoped_session``: one AsyncSession per task behind a single object."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..exc import InvalidRequestError
from .session import AsyncSession, async_sessionmaker

_S = TypeVar("_S", bound=AsyncSession)


class async_scoped_session(Generic[_S]):
    """Gives each asyncio task its own session (own identity map, own connection).

    ``scoped = async_scoped_session(Session)``; then ``scoped.add(...)``,
    ``await scoped.commit()``, ``await scoped.get(...)`` act on the current task's session,
    and ``scoped()`` returns it. ``await scoped.remove()`` closes it; a task that finishes
    without calling it has its session closed and dropped for it.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[_S],
        scopefunc: Callable[[], Any] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self._scopefunc = scopefunc or _current_task
        self._registry: dict[Any, _S] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __call__(self, **kw: Any) -> _S:
        scope = self._scopefunc()
        session = self._registry.get(scope)
        if session is None:
            session = self._registry[scope] = self.session_factory(**kw)
            if isinstance(scope, asyncio.Task):
                scope.add_done_callback(self._task_done)
        elif kw:
            raise InvalidRequestError(
                "this task already has a session, and options apply only when it is made; "
                "call `await scoped.remove()` first to get a new one with these options"
            )
        return session

    def has(self) -> bool:
        """Whether the current task has a session yet."""
        return self._scopefunc() in self._registry

    async def remove(self) -> None:
        """Close the current task's session and forget it."""
        session = self._registry.pop(self._scopefunc(), None)
        if session is not None:
            await session.close()

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        session = self._registry.pop(task, None)
        if session is None:
            return
        try:
            closer = asyncio.get_running_loop().create_task(session.close())
        except RuntimeError:  # the loop is gone; nothing can be awaited any more
            return
        self._closing.add(closer)
        closer.add_done_callback(self._closing.discard)

    def __getattr__(self, name: str) -> Any:
        # Everything else (add, commit, execute, get, new, dirty, …) is the task's session's.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self(), name)

    def __contains__(self, obj: object) -> bool:
        return obj in self()


def _current_task() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("async_scoped_session must be used from inside a task")
    return task
