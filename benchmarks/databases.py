"""The databases the suite runs on, and the admin connection that sets them up.

Each target is created fresh and removed afterwards: SQLite as a temporary file (WAL, as
asyncorm opens it), PostgreSQL as a new database on the server named by
``ASYNCORM_BENCH_POSTGRES_URL``, dropped at the end. The admin connection resets and seeds
the tables between timed runs and reads them back to verify the work; it is never timed.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .schema import CHILD_COLUMNS, USER_COLUMNS, ChildRow, UserRow, ddl

__all__ = ["DEFAULT_POSTGRES_URL", "Admin", "Database", "open_database"]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Database:
    """Where one benchmark target lives, as each implementation spells it."""

    name: str
    """``"postgresql"``, ``"sqlite"`` or ``"sqlite-memory"`` (the hydration benchmark)."""
    backend: str
    """``"postgresql"`` or ``"sqlite"``."""
    asyncorm_url: str
    sqlalchemy_url: str
    raw_target: str
    """asyncpg's DSN, or the ``database`` argument of ``sqlite3.connect``."""
    raw_uri: bool = False
    """SQLite: ``raw_target`` is a ``file:`` URI."""


class Admin:
    """Schema, reset, seed and read-back; every method commits what it does."""

    async def create_schema(self) -> None:
        raise NotImplementedError

    async def reset(self) -> None:
        """Empty both tables and restart their ids at 1."""
        raise NotImplementedError

    async def insert_users(self, rows: Sequence[UserRow]) -> None:
        raise NotImplementedError

    async def insert_children(self, rows: Sequence[ChildRow]) -> None:
        raise NotImplementedError

    async def users(self) -> list[UserRow]:
        """Every user, ordered by id."""
        raise NotImplementedError

    async def children(self) -> list[ChildRow]:
        raise NotImplementedError

    async def version(self) -> str:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class PostgresAdmin(Admin):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def create_schema(self) -> None:
        for statement in ddl("postgresql"):
            await self.conn.execute(statement)

    async def reset(self) -> None:
        await self.conn.execute("TRUNCATE children, users RESTART IDENTITY")

    async def insert_users(self, rows: Sequence[UserRow]) -> None:
        await self.conn.copy_records_to_table("users", records=rows, columns=USER_COLUMNS)
        await self.conn.execute("SELECT setval('users_id_seq', (SELECT max(id) FROM users))")
        await self.conn.execute("ANALYZE users")

    async def insert_children(self, rows: Sequence[ChildRow]) -> None:
        await self.conn.copy_records_to_table("children", records=rows, columns=CHILD_COLUMNS)
        await self.conn.execute("SELECT setval('children_id_seq', (SELECT max(id) FROM children))")
        await self.conn.execute("ANALYZE children")

    async def users(self) -> list[UserRow]:
        records = await self.conn.fetch(
            "SELECT id, name, email, age, counter FROM users ORDER BY id"
        )
        return [tuple(r) for r in records]

    async def children(self) -> list[ChildRow]:
        records = await self.conn.fetch("SELECT id, user_id, label FROM children ORDER BY id")
        return [tuple(r) for r in records]

    async def version(self) -> str:
        return str(await self.conn.fetchval("SHOW server_version"))

    async def close(self) -> None:
        await self.conn.close()


class SqliteAdmin(Admin):
    """A synchronous sqlite3 connection in autocommit mode: it is never timed."""

    def __init__(self, target: str, uri: bool) -> None:
        self.conn = sqlite3.connect(target, uri=uri, isolation_level=None, timeout=30)
        self.memory = uri and "mode=memory" in target
        if not self.memory:
            self.conn.execute("PRAGMA journal_mode = WAL")

    async def create_schema(self) -> None:
        for statement in ddl("sqlite"):
            self.conn.execute(statement)

    async def reset(self) -> None:
        self.conn.execute("DELETE FROM children")
        self.conn.execute("DELETE FROM users")
        if not self.memory:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _insert(self, table: str, columns: Iterable[str], rows: Sequence[Any]) -> None:
        names = list(columns)
        marks = ", ".join("?" * len(names))
        self.conn.execute("BEGIN")
        self.conn.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows)
        self.conn.execute("COMMIT")
        self.conn.execute(f"ANALYZE {table}")

    async def insert_users(self, rows: Sequence[UserRow]) -> None:
        self._insert("users", USER_COLUMNS, rows)

    async def insert_children(self, rows: Sequence[ChildRow]) -> None:
        self._insert("children", CHILD_COLUMNS, rows)

    async def users(self) -> list[UserRow]:
        return self.conn.execute(
            "SELECT id, name, email, age, counter FROM users ORDER BY id"
        ).fetchall()

    async def children(self) -> list[ChildRow]:
        return self.conn.execute("SELECT id, user_id, label FROM children ORDER BY id").fetchall()

    async def version(self) -> str:
        return str(self.conn.execute("SELECT sqlite_version()").fetchone()[0])

    async def close(self) -> None:
        self.conn.close()


def postgres_url() -> str:
    return os.environ.get("ASYNCORM_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _with_scheme(url: str, scheme: str) -> str:
    return urlunsplit(urlsplit(url)._replace(scheme=scheme))


@asynccontextmanager
async def _postgresql() -> AsyncIterator[tuple[Database, Admin]]:
    server_url = _with_scheme(postgres_url(), "postgresql")
    name = f"asyncorm_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    maintenance = await asyncpg.connect(server_url)
    try:
        await maintenance.execute(f'CREATE DATABASE "{name}"')
        url = _with_database(server_url, name)
        admin = PostgresAdmin(await asyncpg.connect(url))
        try:
            yield (
                Database(
                    name="postgresql",
                    backend="postgresql",
                    asyncorm_url=url,
                    sqlalchemy_url=_with_scheme(url, "postgresql+asyncpg"),
                    raw_target=url,
                ),
                admin,
            )
        finally:
            await admin.close()
            await maintenance.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await maintenance.close()


@asynccontextmanager
async def _sqlite_file() -> AsyncIterator[tuple[Database, Admin]]:
    with tempfile.TemporaryDirectory(prefix="asyncorm-bench-") as directory:
        path = str(Path(directory) / "bench.db")
        admin = SqliteAdmin(path, uri=False)
        try:
            yield (
                Database(
                    name="sqlite",
                    backend="sqlite",
                    asyncorm_url=f"sqlite:///{path}",
                    sqlalchemy_url=f"sqlite+aiosqlite:///{path}",
                    raw_target=path,
                ),
                admin,
            )
        finally:
            await admin.close()


@asynccontextmanager
async def _sqlite_memory() -> AsyncIterator[tuple[Database, Admin]]:
    # A named shared-cache in-memory database: every connection in this process that opens
    # the same URI sees the same tables, and it lives as long as the admin connection.
    name = f"asyncorm_bench_{uuid.uuid4().hex[:8]}"
    query = "mode=memory&cache=shared"
    admin = SqliteAdmin(f"file:{name}?{query}", uri=True)
    try:
        yield (
            Database(
                name="sqlite-memory",
                backend="sqlite",
                asyncorm_url=f"sqlite:///{name}?{query}",
                sqlalchemy_url=f"sqlite+aiosqlite:///file:{name}?{query}&uri=true",
                raw_target=f"file:{name}?{query}",
                raw_uri=True,
            ),
            admin,
        )
    finally:
        with suppress(sqlite3.Error):
            await admin.close()


@asynccontextmanager
async def open_database(name: str) -> AsyncIterator[tuple[Database, Admin]]:
    """A fresh, empty target with the benchmark schema; removed on exit."""
    factories = {"postgresql": _postgresql, "sqlite": _sqlite_file, "sqlite-memory": _sqlite_memory}
    async with factories[name]() as (database, admin):
        await admin.create_schema()
        yield database, admin
