"""The interface every implementation provides: one coroutine per workload.

Each workload method does exactly the work that is timed, nothing else: the harness resets
and seeds the tables before it and verifies the outcome after it. Methods that produce
objects return them, so the harness can check their values (through ``values`` and
``children``) outside the timed part.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar

from ..databases import Database
from ..schema import ChildRow, UserRow, UserValues

__all__ = ["Implementation", "NotApplicable"]


class NotApplicable(Exception):
    """The workload has no meaning for this implementation (its cell reads "n/a")."""


class Implementation(ABC):
    name: ClassVar[str]
    is_orm: ClassVar[bool] = False
    """ORMs keep an identity map: W3b checks that repeated gets return the same object."""

    @abstractmethod
    async def open(self, database: Database, pool_size: int) -> None:
        """Create the engine or pool (no timing; may connect lazily)."""

    @abstractmethod
    async def close(self) -> None: ...

    def version(self) -> str:
        return ""

    # --- reading results back (never timed) ---------------------------------------------

    @abstractmethod
    def values(self, item: Any) -> UserRow:
        """(id, name, email, age, counter) of a user this implementation returned."""

    def eager_user(self, item: Any) -> Any:
        """The user in one of W8's results (for ``values``)."""
        return item

    def children(self, item: Any) -> list[ChildRow]:
        """A W8 user's children, in the order they were loaded."""
        raise NotImplementedError

    def primary_key(self, item: Any) -> Any:
        """The primary key an inserted object got, read without I/O."""
        return self.values(item)[0]

    # --- the workloads -------------------------------------------------------------------

    @abstractmethod
    async def insert_objects(self, rows: Sequence[UserValues]) -> list[Any] | None:
        """W1: make one object per row, add them all, commit once."""

    @abstractmethod
    async def insert_dicts(self, rows: Sequence[dict[str, Any]]) -> None:
        """W1b: insert the rows as parameter dicts, no objects."""

    @abstractmethod
    async def fetch_all(self) -> list[Any]:
        """W2: every user."""

    @abstractmethod
    async def get_distinct(self, keys: Sequence[int], per_session: int) -> list[Any]:
        """W3: one get per key, a new session (connection) per ``per_session`` keys."""

    @abstractmethod
    def repeated_session(self, keys: Sequence[int]) -> AbstractAsyncContextManager[Any]:
        """W3b's setup and teardown (untimed): a session (raw: a connection) that has met
        every one of ``keys`` once, so the timed gets are identity-map hits."""

    @abstractmethod
    async def get_repeated(self, session: Any, keys: Sequence[int]) -> list[Any]:
        """W3b: one get per key (keys repeat), all in ``session``."""

    @abstractmethod
    async def update_loaded(self, limit: int) -> None:
        """W4: load the users with ``id <= limit``, add 1 to each one's age, commit once."""

    @abstractmethod
    async def insert_per_transaction(self, rows: Sequence[UserValues]) -> None:
        """W5: one transaction (session) per row: insert it, commit."""

    @abstractmethod
    async def concurrent_increment(self, keys: Sequence[int], iterations: int) -> None:
        """W6: one task per key, each ``iterations`` times: session, get, counter += 1,
        commit; all tasks at once through the pool."""

    @abstractmethod
    async def delete_loaded(self, limit: int) -> None:
        """W7: load the users with ``id <= limit``, delete each, commit once."""

    @abstractmethod
    async def eager_load(self) -> list[Any]:
        """W8: every user with its children (ordered by id), two queries (selectin)."""
