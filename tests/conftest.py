"""Fixtures shared by every test: each database test runs once on SQLite, once on PostgreSQL.

PostgreSQL comes from ``ASYNCORM_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Each test gets its own schema there, so tests
never see each other's tables. When the server is unreachable the PostgreSQL half is skipped,
unless ``ASYNCORM_REQUIRE_POSTGRES=1`` (as in CI), which turns that into a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from asyncorm import AsyncEngine, create_engine

POSTGRES_URL = os.environ.get(
    "ASYNCORM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("ASYNCORM_REQUIRE_POSTGRES") == "1"

_postgres_error: str | None = None
_postgres_checked = False


@pytest.fixture
def anyio_backend() -> str:
    # asyncpg and aiosqlite are asyncio libraries.
    return "asyncio"


@dataclass
class Database:
    """One database for one test: its URL, and a factory for engines bound to it."""

    name: str
    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    schema: str | None = None
    engines: list[AsyncEngine] = field(default_factory=list)

    def make_engine(self, **options: Any) -> AsyncEngine:
        connect_args = {**self.connect_args, **options.pop("connect_args", {})}
        if self.schema is not None:
            settings = dict(connect_args.get("server_settings", {}))
            settings.setdefault("search_path", self.schema)
            connect_args["server_settings"] = settings
        engine = create_engine(self.url, connect_args=connect_args, **options)
        self.engines.append(engine)
        return engine

    @property
    def is_postgresql(self) -> bool:
        return self.name == "postgresql"

    @property
    def is_sqlite(self) -> bool:
        return self.name == "sqlite"


async def _check_postgres() -> str | None:
    global _postgres_checked, _postgres_error
    if not _postgres_checked:
        _postgres_checked = True
        try:
            conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        except (OSError, asyncpg.PostgresError) as error:
            _postgres_error = f"PostgreSQL at {POSTGRES_URL} is unreachable: {error!r}"
        else:
            await conn.close()
    return _postgres_error


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, empty database: a temp SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        try:
            yield database
        finally:
            for engine in database.engines:
                await engine.dispose()
        return

    error = await _check_postgres()
    if error is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(error + " (ASYNCORM_REQUIRE_POSTGRES=1)")
        pytest.skip(error)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        database = Database("postgresql", POSTGRES_URL, schema=schema)
        try:
            yield database
        finally:
            for engine in database.engines:
                await engine.dispose()
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await admin.close()


@pytest.fixture
async def engine(db: Database) -> AsyncEngine:
    """An engine with default options on the test's database."""
    return db.make_engine()


EngineFactory = Callable[..., AsyncEngine]


async def cancel_repeatedly(task: asyncio.Task[Any], times: int) -> None:
    """Cancel ``task`` ``times`` times, one event-loop iteration apart, as nested timeouts or
    a task group's teardown do (the later cancellations land in the task's cleanup), and
    wait until it is done."""
    for _ in range(times):
        if task.done():
            break
        task.cancel()
        await asyncio.sleep(0)
    await asyncio.wait([task])


async def idle_in_transaction(pid: int) -> bool:
    """Whether PostgreSQL backend ``pid`` still sits in an open transaction; waits up to a
    second for a backend whose client has gone to notice."""
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        for _ in range(100):
            state = await admin.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
            if state is None or not state.startswith("idle in transaction"):
                return False
            await asyncio.sleep(0.01)
        return True
    finally:
        await admin.close()
