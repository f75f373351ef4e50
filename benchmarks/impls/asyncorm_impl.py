"""asyncorm, used the way its README shows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncorm
from asyncorm import (
    DeclarativeBase,
    ForeignKey,
    Mapped,
    String,
    async_sessionmaker,
    create_engine,
    insert,
    mapped_column,
    relationship,
    select,
    selectinload,
)

from ..databases import Database
from ..schema import ChildRow, UserRow, UserValues
from .base import Implementation

__all__ = ["AsyncormImplementation"]


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200))
    age: Mapped[int]
    counter: Mapped[int] = mapped_column(default=0)
    children: Mapped[list[Child]] = relationship(
        back_populates="user", order_by="Child.id", passive_deletes=True
    )


class Child(Base):
    __tablename__ = "children"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(100))
    user: Mapped[User] = relationship(back_populates="children")


class AsyncormImplementation(Implementation):
    name = "asyncorm"
    is_orm = True

    async def open(self, database: Database, pool_size: int) -> None:
        self.engine = create_engine(database.asyncorm_url, pool_size=pool_size, max_overflow=0)
        self.Session = async_sessionmaker(self.engine)  # expire_on_commit=True, the default

    async def close(self) -> None:
        await self.engine.dispose()

    def version(self) -> str:
        return getattr(asyncorm, "__version__", "") or _distribution_version("asyncorm")

    def values(self, item: Any) -> UserRow:
        return (item.id, item.name, item.email, item.age, item.counter)

    def children(self, item: Any) -> list[ChildRow]:
        return [(c.id, c.user_id, c.label) for c in item.children]

    def primary_key(self, item: Any) -> Any:
        return item.id  # primary keys stay readable after commit expires the object

    async def insert_objects(self, rows: Sequence[UserValues]) -> list[Any]:
        users = [User(name=n, email=e, age=a, counter=c) for n, e, a, c in rows]
        async with self.Session() as session:
            session.add_all(users)
            await session.commit()
        return users

    async def insert_dicts(self, rows: Sequence[dict[str, Any]]) -> None:
        async with self.Session() as session:
            await session.execute(insert(User), rows)
            await session.commit()

    async def fetch_all(self) -> list[Any]:
        async with self.Session() as session:
            return list((await session.scalars(select(User))).all())

    async def get_distinct(self, keys: Sequence[int], per_session: int) -> list[Any]:
        found = []
        for start in range(0, len(keys), per_session):
            async with self.Session() as session:
                for key in keys[start : start + per_session]:
                    found.append(await session.get(User, key))
        return found

    @asynccontextmanager
    async def repeated_session(self, keys: Sequence[int]) -> AsyncIterator[Any]:
        async with self.Session() as session:
            # Held for the session's life: the identity map keeps objects weakly.
            loaded = [await session.get(User, key) for key in keys]
            yield session
            del loaded

    async def get_repeated(self, session: Any, keys: Sequence[int]) -> list[Any]:
        return [await session.get(User, key) for key in keys]

    async def update_loaded(self, limit: int) -> None:
        async with self.Session() as session:
            for user in await session.scalars(select(User).where(User.id <= limit)):
                user.age += 1
            await session.commit()

    async def insert_per_transaction(self, rows: Sequence[UserValues]) -> None:
        for n, e, a, c in rows:
            async with self.Session.begin() as session:
                session.add(User(name=n, email=e, age=a, counter=c))

    async def concurrent_increment(self, keys: Sequence[int], iterations: int) -> None:
        async def task(key: int) -> None:
            for _ in range(iterations):
                async with self.Session() as session:
                    user = await session.get(User, key)
                    assert user is not None
                    user.counter += 1
                    await session.commit()

        await asyncio.gather(*(task(key) for key in keys))

    async def delete_loaded(self, limit: int) -> None:
        async with self.Session() as session:
            for user in await session.scalars(select(User).where(User.id <= limit)):
                await session.delete(user)
            await session.commit()

    async def eager_load(self) -> list[Any]:
        async with self.Session() as session:
            statement = select(User).options(selectinload(User.children))
            return list((await session.scalars(statement)).all())


def _distribution_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
