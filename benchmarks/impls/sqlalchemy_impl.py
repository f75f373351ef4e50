"""SQLAlchemy 2.x's async ORM, used idiomatically, with the same session settings as
asyncorm (``expire_on_commit=True``, pool of the same size) and relationships that never
load implicitly (``lazy="raise"``, ``passive_deletes=True``), as asyncorm's do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy
from sqlalchemy import ForeignKey, String, event, insert, inspect, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload
from sqlalchemy.pool import StaticPool

from ..databases import Database
from ..schema import ChildRow, UserRow, UserValues
from .base import Implementation

__all__ = ["SQLAlchemyImplementation"]


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
        back_populates="user", order_by="Child.id", lazy="raise", passive_deletes=True
    )


class Child(Base):
    __tablename__ = "children"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(100))
    user: Mapped[User] = relationship(back_populates="children", lazy="raise")


def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    # asyncorm turns foreign keys on for every SQLite connection; do the same here.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


class SQLAlchemyImplementation(Implementation):
    name = "sqlalchemy"
    is_orm = True

    async def open(self, database: Database, pool_size: int) -> None:
        # An in-memory SQLite database needs one connection for everything: StaticPool.
        pool: dict[str, Any] = (
            {"poolclass": StaticPool}
            if database.raw_uri
            else {"pool_size": pool_size, "max_overflow": 0}
        )
        self.engine = create_async_engine(database.sqlalchemy_url, **pool)
        if database.backend == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_foreign_keys)
        self.Session = async_sessionmaker(self.engine, expire_on_commit=True)

    async def close(self) -> None:
        await self.engine.dispose()

    def version(self) -> str:
        return sqlalchemy.__version__

    def values(self, item: Any) -> UserRow:
        return (item.id, item.name, item.email, item.age, item.counter)

    def children(self, item: Any) -> list[ChildRow]:
        return [(c.id, c.user_id, c.label) for c in item.children]

    def primary_key(self, item: Any) -> Any:
        # After commit the object is expired and reading .id would be implicit I/O (an
        # error in async code); the identity key holds it without loading anything.
        identity = inspect(item).identity
        return identity[0] if identity else None

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
