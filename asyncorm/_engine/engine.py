"""create_engine() and AsyncEngine.

SQLite: one transaction at a time per engine
-------------------------------------------
API.md promises that writers of one engine never fail with "database is locked" because of
each other. Two mechanisms in SQLite produce that error, and only one of them can be waited
out:

* ``SQLITE_BUSY`` when a second writer starts while the first holds the write lock. The busy
  timeout waits this out.
* ``SQLITE_BUSY_SNAPSHOT`` when a *deferred* transaction that began by reading tries to
  write after another connection committed: its snapshot is stale, and no amount of
  waiting helps; the transaction is dead. "Read, then write" is the most ordinary thing a
  session does (load an object, change it, flush), so this must not happen.

Avoiding the second case needs every transaction that *might* write to hold the write lock
from its first statement, and an engine cannot know at BEGIN whether a transaction will
write. Schemes that start readers without the lock and "upgrade" them later either fail
with BUSY_SNAPSHOT exactly in the read-then-write case, or deadlock (the upgrader waits for
the writer, the writer waits for the stale reader to finish). So a SQLite engine runs its
transactions one at a time:

* the pool of a SQLite engine holds one connection (``pool_size`` / ``max_overflow`` are
  accepted and ignored), so the pool's queue *is* the engine-wide writer lock: FIFO,
  bounded by ``pool_timeout``, raising ``PoolTimeout`` that names the task holding it, and
  cancellation-safe like every checkout. While a transaction runs, no other transaction of
  the engine exists, so neither SQLITE_BUSY nor a stale snapshot can come from within it;
* transactions begin with a plain (deferred) ``BEGIN``. ``BEGIN IMMEDIATE`` would add
  nothing inside the engine, and would make every transaction, read-only ones included,
  take SQLite's write lock, so readers in other processes or engines would queue behind
  each writer instead of reading their WAL snapshot. What IMMEDIATE would buy is protection
  against *other processes'* writers invalidating a read-then-write snapshot; that case is
  outside the engine's promise, and surfaces as an ``OperationalError`` to retry;
* file databases run in WAL mode with a busy timeout (``timeout``, 5 s by default, in
  ``connect_args`` or the URL), so other processes read while this engine writes, and a
  writer in another process is waited for rather than failed.

The cost is that read-only transactions of one engine do not run in parallel. For SQLite
that is small: an in-process read is fast, and readers elsewhere are not blocked. A task
that opens a second transaction on the same SQLite engine while holding one waits for
itself; the ``PoolTimeout`` message says so.

``sqlite:///:memory:`` uses the same single connection (a second connection would be a
second, empty database), so sessions share one database and take turns, and one session's
ROLLBACK never discards another's work.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from types import ModuleType
from typing import Any
from urllib.parse import quote

from .. import exc
from .._drivers import load_driver
from .._drivers.base import DriverConnection
from .._events import Dispatcher
from .._sql.base import coerce_statement
from .connection import AsyncConnection
from .pool import Pool
from .url import URL, make_url

__all__ = ["AsyncEngine", "create_engine"]

logger = logging.getLogger("asyncorm.engine")

_SQLITE_URI_OPTIONS = frozenset({"mode", "cache", "immutable", "vfs", "nolock", "psow", "modeof"})
_default_handler_added = False


def _ensure_echo_output() -> None:
    """``echo=True`` must show something even when the application configured no logging.

    Following SQLAlchemy's lead, but only when no handler anywhere would receive the
    records: if the application (or pytest) configured logging, records propagate there
    and nothing is added, so nothing is printed twice.
    """
    global _default_handler_added
    if _default_handler_added or logger.hasHandlers():
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    logger.addHandler(handler)
    _default_handler_added = True


def _number(name: str, value: Any, *, minimum: float, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise exc.ArgumentError(f"{name} must be a number >= {minimum}, not {value!r}")
    return value


def _url_number(key: str, value: str, url: URL) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not number >= 0 or math.isinf(number):  # NaN and infinity are not timeouts
        raise exc.ArgumentError(
            f"SQLite URL option {key}={value!r} in {url} must be a number of seconds >= 0"
        )
    return number


class AsyncEngine:
    """A database, its connection pool and its dialect. Made by :func:`create_engine`.

    ``async with engine.connect() as conn`` and ``async with engine.begin() as conn`` give
    connections; ``await engine.dispose()`` closes the pooled ones. ``engine.dispatch``
    takes ``before_execute`` listeners (``asyncorm.event.listen(engine, ...)``).
    """

    def __init__(
        self,
        url: URL,
        *,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout: float = 30.0,
        pool_recycle: float | None = None,
        pool_pre_ping: bool = False,
        echo: bool = False,
        connect_args: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise exc.ArgumentError(f"pool_size must be an int >= 1, not {pool_size!r}")
        if (
            isinstance(max_overflow, bool)
            or not isinstance(max_overflow, int)
            or (max_overflow < -1)
        ):
            raise exc.ArgumentError(
                f"max_overflow must be an int >= 0 (or -1 for no limit), not {max_overflow!r}"
            )
        pool_timeout = _number("pool_timeout", pool_timeout, minimum=0)
        pool_recycle = _number("pool_recycle", pool_recycle, minimum=-1, allow_none=True)
        if pool_recycle is not None and pool_recycle < 0:
            pool_recycle = None
        if connect_args is not None and not isinstance(connect_args, Mapping):
            raise exc.ArgumentError(f"connect_args must be a dict, not {connect_args!r}")
        self.url = url
        self._echo = False
        self.echo = echo
        self.dispatch = Dispatcher("AsyncEngine", ["before_execute"])
        self._driver_module: ModuleType = load_driver(url.drivername, url.driver)
        self._dialect: Any = None
        args = dict(connect_args or {})
        if url.backend == "sqlite":
            connect = self._sqlite_connector(url, args)
            # One transaction at a time: see the module docstring.
            pool_size, max_overflow = 1, 0
            if url.is_sqlite_memory:
                pool_recycle = None  # recycling would throw the database away
        else:
            connect = self._postgresql_connector(url, args)
        self.pool = Pool(
            connect,
            pool_size=pool_size,
            max_overflow=max_overflow,
            timeout=pool_timeout,
            recycle=pool_recycle,
            pre_ping=pool_pre_ping,
            description=f" of engine {url}",
        )

    # --- connecting -------------------------------------------------------------------

    def _postgresql_connector(self, url: URL, args: dict[str, Any]) -> Any:
        # asyncpg parses libpq-style DSNs itself, query options (sslmode, ...) included.
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return partial(self._driver_module.connect, dsn, args)

    def _sqlite_connector(self, url: URL, args: dict[str, Any]) -> Any:
        uri_options: dict[str, str] = {}
        for key, value in url.query.items():
            if not isinstance(value, str):
                raise exc.ArgumentError(f"SQLite URL option {key!r} is given more than once")
            if key == "timeout":
                args.setdefault("timeout", _url_number(key, value, url))
            elif key in _SQLITE_URI_OPTIONS:
                uri_options[key] = value
            else:
                raise exc.ArgumentError(
                    f"unknown SQLite URL option {key!r} in {url}; supported: timeout, "
                    + ", ".join(sorted(_SQLITE_URI_OPTIONS))
                )
        memory = url.is_sqlite_memory
        database = url.database or ":memory:"
        uri = bool(uri_options)
        if uri:
            query = "&".join(f"{k}={quote(v, safe='')}" for k, v in uri_options.items())
            database = f"file:{quote(database, safe='/:')}?{query}"
        return partial(
            self._driver_module.connect,
            database,
            args,
            uri=uri,
            wal=not memory,
            functions=self.dialect.sql_functions,
        )

    # --- public API -------------------------------------------------------------------

    @property
    def dialect(self) -> Any:
        """The SQL dialect (``asyncorm._dialects``) for this database."""
        if self._dialect is None:
            from .._dialects import get_dialect

            self._dialect = get_dialect(self.url.backend)
        return self._dialect

    @property
    def echo(self) -> bool:
        """Log every statement, its parameters and its duration to ``asyncorm.engine``."""
        return self._echo

    @echo.setter
    def echo(self, value: bool) -> None:
        self._echo = bool(value)
        if self._echo:
            _ensure_echo_output()

    @property
    def name(self) -> str:
        """``"postgresql"`` or ``"sqlite"``."""
        return self.url.backend

    @property
    def driver(self) -> str:
        return self.url.driver

    def connect(self) -> AsyncConnection:
        """A new :class:`AsyncConnection` (no I/O: a pooled connection is taken on first use).

        ``async with engine.connect() as conn:`` or ``conn = await engine.connect()``.
        """
        return AsyncConnection(self)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """``async with engine.begin() as conn:``: commits on success, rolls back on error."""
        async with self.connect() as conn, conn.begin():
            yield conn

    async def dispose(self) -> None:
        """Close every pooled connection; connections in use are closed when returned.

        The engine stays usable (new connections are opened on demand), also from another
        event loop.
        """
        await self.pool.dispose()

    async def _run_ddl(self, statements: Sequence[Any]) -> None:
        """Run DDL in one transaction (``metadata.create_all(engine)``)."""
        async with self.begin() as conn:
            await conn._run_ddl(statements)

    async def _raw_connection(self) -> DriverConnection:
        """A new driver connection outside the pool (tests, tools). Close it yourself."""
        driver: DriverConnection = await self.pool._connect()
        return driver

    # --- used by AsyncConnection --------------------------------------------------------

    def _compile(self, statement: Any, param_keys: tuple[str, ...] | None) -> Any:
        return self.dialect.compile(coerce_statement(statement), param_keys)

    @property
    def _log_sql(self) -> bool:
        return self._echo or logger.isEnabledFor(logging.INFO)

    def _log(self, sql: str, params: object, elapsed: float) -> None:
        from .connection import _format_params

        shown = "" if params is None else f"\n[parameters: {_format_params(params)}]"
        message = "%s%s\n[%.3f ms]"
        args = (sql, shown, elapsed * 1000)
        extra = {"sql": sql, "parameters": params, "elapsed": elapsed}
        if logger.isEnabledFor(logging.INFO):
            logger.info(message, *args, extra=extra)
        elif self._echo:
            # echo=True logs this engine's SQL even where the logger's level would not.
            logger.handle(
                logger.makeRecord(
                    logger.name, logging.INFO, __file__, 0, message, args, None, extra=extra
                )
            )

    def __repr__(self) -> str:
        return f"AsyncEngine({self.url})"


_OPTIONS = (
    "connect_args",
    "echo",
    "max_overflow",
    "pool_pre_ping",
    "pool_recycle",
    "pool_size",
    "pool_timeout",
)


def create_engine(url: str | URL, **options: Any) -> AsyncEngine:
    """An :class:`AsyncEngine` for ``url``. Does no I/O.

    Options: ``pool_size`` (5), ``max_overflow`` (10), ``pool_timeout`` (30 s),
    ``pool_recycle`` (None), ``pool_pre_ping`` (False), ``echo`` (False),
    ``connect_args`` (passed to ``asyncpg.connect`` / ``sqlite3.connect`` unchanged).
    Unknown options, bad values, unknown schemes and missing drivers raise
    :class:`~asyncorm.exc.ArgumentError`.

    A SQLite engine runs one transaction at a time over a single pooled connection, so
    ``pool_size`` and ``max_overflow`` do not apply to it (the module docstring says why).
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise exc.ArgumentError(
            f"unknown create_engine() option(s) {', '.join(map(repr, unknown))}; "
            f"the options are: {', '.join(_OPTIONS)}"
        )
    return AsyncEngine(make_url(url), **options)
