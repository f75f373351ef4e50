"""Issue 7's workloads: how each one sets the tables up, what it runs, and how it checks
that the work was done right.

``prepare`` (untimed) resets and seeds the tables and returns the workload's input;
``around`` (untimed) sets up and tears down what one timed call needs, and gives ``run``
its input (by default the prepared input as it is); ``run`` is the timed call into an
implementation; ``verify`` (untimed) reads the tables back through the admin connection and
checks what the implementation returned, raising ``VerificationError`` on any difference.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any, ClassVar

from .config import Sizes
from .databases import Admin
from .impls import Implementation
from .schema import UserRow, child_row, new_user, user_row

__all__ = ["WORKLOAD_BY_KEY", "VerificationError", "Workload"]


class VerificationError(Exception):
    """The workload ran but its result is wrong."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise VerificationError(message)


def seeded(count: int) -> list[UserRow]:
    return [user_row(i) for i in range(1, count + 1)]


def same_rows(
    actual: Sequence[tuple[Any, ...]], expected: Sequence[tuple[Any, ...]], what: str
) -> None:
    check(len(actual) == len(expected), f"{what}: {len(actual)} rows, expected {len(expected)}")
    for got, want in zip(actual, expected, strict=True):
        check(tuple(got) == tuple(want), f"{what}: got {tuple(got)!r}, expected {want!r}")


async def seed_users(admin: Admin, count: int) -> None:
    await admin.reset()
    await admin.insert_users(seeded(count))


class Workload:
    key: ClassVar[str]
    mutates: ClassVar[bool] = True
    """False: the tables are seeded once per repetition and shared by the implementations."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes

    async def prepare(self, admin: Admin) -> Any:
        raise NotImplementedError

    def around(self, impl: Implementation, data: Any) -> AbstractAsyncContextManager[Any]:
        return nullcontext(data)

    def run(self, impl: Implementation, data: Any) -> Awaitable[Any]:
        raise NotImplementedError

    async def verify(self, admin: Admin, impl: Implementation, data: Any, result: Any) -> None:
        raise NotImplementedError


class InsertObjects(Workload):
    key = "W1"

    async def prepare(self, admin: Admin) -> Any:
        await admin.reset()
        return [new_user(i) for i in range(1, self.sizes.insert_objects + 1)]

    def run(self, impl: Implementation, data: Any) -> Awaitable[Any]:
        return impl.insert_objects(data)

    async def verify(self, admin: Admin, impl: Implementation, data: Any, result: Any) -> None:
        rows = await admin.users()
        same_rows(sorted(r[1:] for r in rows), sorted(data), "users after insert")
        if result is None:
            return
        check(len(result) == len(data), f"{len(result)} objects returned, expected {len(data)}")
        by_id = {r[0]: r for r in rows}
        for obj, values in zip(result, data, strict=True):
            pk = impl.primary_key(obj)
            check(pk in by_id, f"object for {values!r} has primary key {pk!r}, not in the table")
            check(by_id[pk][1:] == values, f"row {pk} is {by_id[pk]!r}, object was {values!r}")


class InsertDicts(Workload):
    key = "W1b"

    async def prepare(self, admin: Admin) -> Any:
        await admin.reset()
        names = ("name", "email", "age", "counter")
        return [
            dict(zip(names, new_user(i), strict=True))
            for i in range(1, self.sizes.insert_dicts + 1)
        ]

    def run(self, impl: Implementation, data: Any) -> Awaitable[Any]:
        return impl.insert_dicts(data)

    async def verify(self, admin: Admin, impl: Implementation, data: Any, result: Any) -> None:
        expected = sorted(tuple(d.values()) for d in data)
        same_rows(sorted(r[1:] for r in await admin.users()), expected, "users after insert")


class Fetch(Workload):
    key = "W2"
    mutates = False

    async def prepare(self, admin: Admin) -> Any:
        await seed_users(admin, self.sizes.fetch)
        return self.sizes.fetch

    def run(self, impl: Implementation, data: Any) -> Awaitable[Any]:
        return impl.fetch_all()

    async def verify(self, admin: Admin, impl: Implementation, data: Any, result: Any) -> None:
        same_rows(sorted(impl.values(item) for item in result), seeded(data), "fetched users")


class GetDistinct(Workload):
    key = "W3"
    mutates = False

    async def prepare(self, admin: Admin) -> Any:
        await seed_users(admin, self.sizes.get_distinct + self.sizes.untouched)
        keys = list(range(1, self.sizes.get_distinct + 1))
        random.Random(7).shuffle(keys)
        return keys

    def run(self, impl: Implementation, data: Any) -> Awaitable[Any]:
        return impl.get_distinct(data, self.sizes.get_per_session)

    async def verify(self, admin: Admin, impl: Implementation, data: Any, result: Any) -> None:
        check(None not in result, "a get returned None for an existing key")
        same_rows([impl.values(item) for item in result], [user_row(k) for k in data], "gets")


class GetRepeated(Workload):
    """The gets are timed in a session that has already met each key once: the workload
    measures identity-map hits (its target, 0.05x raw, is what a hit costs against a query).
    The first get of each key is a query, W3's work; timed here, those 100 queries alone
    would be 100/2,000 = 0.05 of raw's 2,000 at parity."""

    key = "W3b"
    mutates = False

    async def prepare(self, admin: Admin) -> Any:
        distinct = self.sizes.get_repeated_keys
        await seed_users(admin, distinct + self.sizes.untouched)
        return [1 + (i * 37) % distinct for i in range(self.sizes.get_repeated)]

    @asynccontextmanager
    async def around(self, impl: Implementation, data: Any) -> AsyncIterator[Any]:
        async with impl.repeated_session(sorted(set(data))) as session:
            yield session, data

    def run(self, impl: Implementation, data: Any) -> Awaitable[Any]:
        session, keys = data
        return impl.get_repeated(session, keys)

    async def verify(self, admin: Admin, impl: Implementation, data: Any, result: Any) -> None:
        check(None not in result, "a get returned None for an existing key")
        same_rows([impl.values(item) for item in result], [user_row(k) for k in data], "gets")
        if impl.is_orm:
            objects = len({id(item) for item in result})
            check(objects == len(set(data)), f"{objects} objects for {len(set(data))} keys")


class Update(Workload):
    key = "W4"

    async def prepare(self, admin: Admin) -> Any:
        await seed_users(admin, self.sizes.update + self.sizes.untouched)
        return self.sizes.update

    def run(self, impl: Implementation, data: Any) -> Awaitable[Any]:
        return impl.update_loaded(data)

    async def verify(self, admin: Admin, impl: Implementation, data: Any, result: Any) -> None:
        expected = [
            (i, n, e, a + 1, c) if i <= data else (i, n, e, a, c)
            for i, n, e, a, c in seeded(data + self.sizes.untouched)
        ]
        same_rows(await admin.users(), expected, "users after update")


class OneInsertTransactions(Workload):
    key = "W5"

    async def prepare(self, admin: Admin) -> Any:
        await admin.reset()
        return [new_user(i) for i in range(1, self.sizes.transactions + 1)]

    def run(self, impl: Implementation, data: Any) -> Awaitable[Any]:
        return impl.insert_per_transaction(data)

    async def verify(self, admin: Admin, impl: Implementation, data: Any, result: Any) -> None:
        same_rows(sorted(r[1:] for r in await admin.users()), sorted(data), "users after inserts")


class Concurrency(Workload):
    key = "W6"

    async def prepare(self, admin: Admin) -> Any:
        await seed_users(admin, self.sizes.tasks + self.sizes.untouched)
        return list(range(1, self.sizes.tasks + 1))

    def run(self, impl: Implementation, data: Any) -> Awaitable[Any]:
        return impl.concurrent_increment(data, self.sizes.task_iterations)

    async def verify(self, admin: Admin, impl: Implementation, data: Any, result: Any) -> None:
        keys = set(data)
        expected = [
            (i, n, e, a, self.sizes.task_iterations if i in keys else c)
            for i, n, e, a, c in seeded(self.sizes.tasks + self.sizes.untouched)
        ]
        same_rows(await admin.users(), expected, "counters after the concurrent increments")


class Delete(Workload):
    key = "W7"

    async def prepare(self, admin: Admin) -> Any:
        await seed_users(admin, self.sizes.delete + self.sizes.untouched)
        return self.sizes.delete

    def run(self, impl: Implementation, data: Any) -> Awaitable[Any]:
        return impl.delete_loaded(data)

    async def verify(self, admin: Admin, impl: Implementation, data: Any, result: Any) -> None:
        expected = seeded(data + self.sizes.untouched)[data:]
        same_rows(await admin.users(), expected, "users left after delete")


class EagerLoad(Workload):
    key = "W8"
    mutates = False

    async def prepare(self, admin: Admin) -> Any:
        users, per_user = self.sizes.eager_users, self.sizes.eager_children
        await seed_users(admin, users)
        # Children ids interleave the users, so each user's children are not adjacent.
        children = [
            child_row(n * users + u, u, n) for n in range(per_user) for u in range(1, users + 1)
        ]
        await admin.insert_children(children)
        return users

    def run(self, impl: Implementation, data: Any) -> Awaitable[Any]:
        return impl.eager_load()

    async def verify(self, admin: Admin, impl: Implementation, data: Any, result: Any) -> None:
        per_user = self.sizes.eager_children
        users = [impl.values(impl.eager_user(item)) for item in result]
        same_rows(sorted(users), seeded(data), "loaded users")
        for item, user in zip(result, users, strict=True):
            user_id = user[0]
            expected = [child_row(n * data + user_id, user_id, n) for n in range(per_user)]
            got = impl.children(item)
            check(got == expected, f"user {user_id}'s children are {got!r}, expected {expected!r}")


WORKLOAD_BY_KEY: dict[str, type[Workload]] = {
    cls.key: cls
    for cls in (
        InsertObjects,
        InsertDicts,
        Fetch,
        GetDistinct,
        GetRepeated,
        Update,
        OneInsertTransactions,
        Concurrency,
        Delete,
        EagerLoad,
    )
}
