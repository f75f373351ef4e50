"""Tortoise ORM, the optional third peer, used the way its documentation shows.

Tortoise has neither a unit of work nor an identity map: a change is written by the
object's own ``save()`` or by a bulk query (``bulk_create``, ``bulk_update``, a queryset's
``delete()``), inside ``in_transaction()``. So W3b's
gets are queries, as the raw driver's are, and W1b (a statement with rows of dicts) has no
Tortoise spelling. Its configuration is process-wide: one database at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any
from urllib.parse import urlsplit

from tortoise import Tortoise, fields
from tortoise.models import Model
from tortoise.query_utils import Prefetch
from tortoise.transactions import in_transaction

from ..databases import Database
from ..schema import ChildRow, UserRow, UserValues
from .base import Implementation, NotApplicable

__all__ = ["TortoiseImplementation"]


class User(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    email = fields.CharField(max_length=200)
    age = fields.IntField()
    counter = fields.IntField(default=0)
    children: fields.ReverseRelation[Child]

    class Meta:
        table = "users"


class Child(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "bench.User", related_name="children", on_delete=fields.CASCADE
    )
    label = fields.CharField(max_length=100)

    class Meta:
        table = "children"


def _connection(database: Database, pool_size: int) -> dict[str, Any]:
    if database.backend == "sqlite":
        if database.raw_uri:
            raise NotApplicable("Tortoise opens SQLite by file path, not by URI")
        return {
            "engine": "tortoise.backends.sqlite",
            "credentials": {"file_path": database.raw_target, "foreign_keys": "ON"},
        }
    url = urlsplit(database.raw_target)
    return {
        "engine": "tortoise.backends.asyncpg",
        "credentials": {
            "host": url.hostname or "127.0.0.1",
            "port": url.port or 5432,
            "user": url.username or "postgres",
            "password": url.password or "",
            "database": url.path.lstrip("/"),
            "minsize": 1,
            "maxsize": pool_size,
        },
    }


class TortoiseImplementation(Implementation):
    name = "tortoise"
    is_orm = False  # no identity map: W3b checks values only

    async def open(self, database: Database, pool_size: int) -> None:
        await Tortoise.init(
            config={
                "connections": {"default": _connection(database, pool_size)},
                "apps": {"bench": {"models": [__name__], "default_connection": "default"}},
                "use_tz": False,
            }
        )

    async def close(self) -> None:
        await Tortoise.close_connections()

    def version(self) -> str:
        return version("tortoise-orm")

    def values(self, item: Any) -> UserRow:
        return (item.id, item.name, item.email, item.age, item.counter)

    def children(self, item: Any) -> list[ChildRow]:
        return [(c.id, c.user_id, c.label) for c in item.children]

    async def insert_objects(self, rows: Sequence[UserValues]) -> list[Any] | None:
        users = [User(name=n, email=e, age=a, counter=c) for n, e, a, c in rows]
        async with in_transaction():
            await User.bulk_create(users)
        # bulk_create leaves the objects without their primary keys on some backends:
        # then only the rows are checked, as the raw driver's are.
        return users if all(user.id is not None for user in users) else None

    async def insert_dicts(self, rows: Sequence[dict[str, Any]]) -> None:
        raise NotApplicable("Tortoise inserts objects (W1), not rows of parameter dicts")

    async def fetch_all(self) -> list[Any]:
        return await User.all()

    async def get_distinct(self, keys: Sequence[int], per_session: int) -> list[Any]:
        found = []
        for start in range(0, len(keys), per_session):
            async with in_transaction():
                for key in keys[start : start + per_session]:
                    found.append(await User.get(id=key))
        return found

    @asynccontextmanager
    async def repeated_session(self, keys: Sequence[int]) -> AsyncIterator[Any]:
        async with in_transaction() as connection:
            yield connection

    async def get_repeated(self, session: Any, keys: Sequence[int]) -> list[Any]:
        return [await User.get(id=key, using_db=session) for key in keys]

    async def update_loaded(self, limit: int) -> None:
        async with in_transaction():
            users = await User.filter(id__lte=limit)
            for user in users:
                user.age += 1
            await User.bulk_update(users, fields=["age"])

    async def insert_per_transaction(self, rows: Sequence[UserValues]) -> None:
        for n, e, a, c in rows:
            async with in_transaction():
                await User.create(name=n, email=e, age=a, counter=c)

    async def concurrent_increment(self, keys: Sequence[int], iterations: int) -> None:
        async def task(key: int) -> None:
            for _ in range(iterations):
                async with in_transaction():
                    user = await User.get(id=key)
                    user.counter += 1
                    await user.save(update_fields=["counter"])

        await asyncio.gather(*(task(key) for key in keys))

    async def delete_loaded(self, limit: int) -> None:
        # One DELETE for the loaded objects, as bulk_update is one UPDATE in W4 (each
        # object's own delete() would be a round trip apiece).
        async with in_transaction():
            users = await User.filter(id__lte=limit)
            await User.filter(id__in=[user.id for user in users]).delete()

    async def eager_load(self) -> list[Any]:
        children = Prefetch("children", queryset=Child.all().order_by("id"))
        return await User.all().prefetch_related(children)
