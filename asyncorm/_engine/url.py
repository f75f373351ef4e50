"""Database URLs: parsing, validation and a password-safe string form.

Parsing is pure string work, so ``create_engine`` can validate a URL without any I/O. The
grammar is SQLAlchemy's::

    postgresql[+asyncpg]://user:password@host:port/database?option=value
    sqlite[+aiosqlite]:///relative/path.db      (three slashes: a relative path)
    sqlite[+aiosqlite]:////absolute/path.db     (four: an absolute one)
    sqlite:///:memory:   or   sqlite://          (a private in-memory database)

User name, password and database are percent-decoded, so a password containing ``@`` or
``/`` is written ``%40`` / ``%2F``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from ..exc import ArgumentError

__all__ = ["URL", "make_url"]

QueryValue = str | tuple[str, ...]

# backend -> (default driver, the drivers asyncorm ships an adapter for)
_BACKENDS: dict[str, tuple[str, frozenset[str]]] = {
    "postgresql": ("asyncpg", frozenset({"asyncpg"})),
    "sqlite": ("aiosqlite", frozenset({"aiosqlite"})),
}


def _supported() -> str:
    return ", ".join(f"{name}+{default}://" for name, (default, _) in _BACKENDS.items())


@dataclass(frozen=True, repr=False)
class URL:
    """A parsed database URL. Immutable; :meth:`set` returns a modified copy.

    ``str(url)`` and ``repr(url)`` hide the password, so a URL can be logged safely;
    :meth:`render_as_string` with ``hide_password=False`` gives the full form.
    """

    drivername: str
    username: str | None = None
    password: str | None = field(default=None)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    query: Mapping[str, QueryValue] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        # Freeze the query so a URL can be shared between engines without surprises.
        if not isinstance(self.query, MappingProxyType):
            object.__setattr__(self, "query", MappingProxyType(dict(self.query)))

    @classmethod
    def create(
        cls,
        drivername: str,
        username: str | None = None,
        password: str | None = None,
        host: str | None = None,
        port: int | None = None,
        database: str | None = None,
        query: Mapping[str, QueryValue] | None = None,
    ) -> URL:
        """Build a URL from its parts (no percent-encoding needed) and validate it."""
        url = cls(drivername, username, password, host, port, database, dict(query or {}))
        url._validate()
        return url

    @property
    def backend(self) -> str:
        """The database kind: ``"postgresql"`` or ``"sqlite"`` (the dialect's name)."""
        return self.drivername.partition("+")[0]

    @property
    def driver(self) -> str:
        """The driver, explicit or the backend's default: ``"asyncpg"`` or ``"aiosqlite"``."""
        explicit = self.drivername.partition("+")[2]
        if explicit:
            return explicit
        return _BACKENDS[self.backend][0] if self.backend in _BACKENDS else ""

    @property
    def is_sqlite_memory(self) -> bool:
        """True for ``sqlite://`` and ``sqlite:///:memory:``: one private database per engine."""
        if self.backend != "sqlite":
            return False
        if self.database in (None, "", ":memory:"):
            return True
        return self.query.get("mode") == "memory"

    def set(self, **changes: Any) -> URL:
        """A copy with the given parts replaced (``username=``, ``database=``, ...)."""
        url = replace(self, **changes)
        url._validate()
        return url

    def render_as_string(self, hide_password: bool = True) -> str:
        """The URL as text, percent-encoded so it parses back to an equal URL."""
        text = f"{self.drivername}://"
        if self.username is not None:
            text += quote(self.username, safe="")
            if self.password is not None:
                text += ":" + ("***" if hide_password else quote(self.password, safe=""))
            text += "@"
        if self.host is not None:
            text += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            text += f":{self.port}"
        if self.database is not None:
            text += "/" + quote(self.database, safe="/:")
        if self.query:
            pairs = []
            for key, value in self.query.items():
                for item in (value,) if isinstance(value, str) else value:
                    pairs.append(f"{quote(key, safe='')}={quote(item, safe='')}")
            text += "?" + "&".join(pairs)
        return text

    def __str__(self) -> str:
        return self.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"URL({self.render_as_string(hide_password=True)!r})"

    def __hash__(self) -> int:
        return hash(self.render_as_string(hide_password=False))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, URL):
            return NotImplemented
        return self.render_as_string(hide_password=False) == other.render_as_string(
            hide_password=False
        )

    def _validate(self) -> None:
        backend, _, driver = self.drivername.partition("+")
        if backend not in _BACKENDS:
            raise ArgumentError(
                f"unknown database scheme {self.drivername!r} in URL {self}; "
                f"asyncorm supports {_supported()}"
            )
        default, drivers = _BACKENDS[backend]
        if driver and driver not in drivers:
            raise ArgumentError(
                f"unknown driver {driver!r} in scheme {self.drivername!r}; "
                f"asyncorm talks to {backend} through {backend}+{default}://"
            )
        if self.port is not None and not 0 < self.port < 65536:
            raise ArgumentError(f"port {self.port} out of range in URL {self}")
        if backend == "sqlite" and (self.host or self.username or self.port is not None):
            raise ArgumentError(
                f"a SQLite URL names a file, not a server: {self} "
                "(use sqlite:///relative.db, sqlite:////absolute.db or sqlite:///:memory:)"
            )


def make_url(url: str | URL) -> URL:
    """Parse ``url`` (or return it unchanged if it already is a :class:`URL`).

    Raises :class:`~asyncorm.exc.ArgumentError` for text that is not a URL, an unknown scheme
    or driver, or a bad port.
    """
    if isinstance(url, URL):
        return url
    if not isinstance(url, str):
        raise ArgumentError(f"a database URL must be a string or a URL, not {url!r}")
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ArgumentError(
            f"could not parse a database URL from {_mask(url)!r}; expected "
            "scheme://[user[:password]@]host[:port]/database, e.g. "
            "postgresql://user:pw@localhost/db or sqlite:///file.db"
        )
    rest, _, query_text = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    database = unquote(path) if slash else None

    username: str | None = None
    password: str | None = None
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user_text, colon, password_text = userinfo.partition(":")
        username = unquote(user_text)
        password = unquote(password_text) if colon else None

    host: str | None
    port: int | None = None
    port_text = ""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ArgumentError(f"unclosed '[' in the host of {_mask(url)!r}")
        host = hostport[1:end]
        after = hostport[end + 1 :]
        if after:
            if not after.startswith(":"):
                raise ArgumentError(f"could not parse the host of {_mask(url)!r}")
            port_text = after[1:]
    else:
        host_text, colon, port_text = hostport.partition(":")
        host = host_text
    if port_text:
        if not port_text.isdigit():
            raise ArgumentError(f"port {port_text!r} is not a number in {_mask(url)!r}")
        port = int(port_text)
    host = unquote(host) if host else None

    query: dict[str, QueryValue] = {}
    for key, value in parse_qsl(query_text, keep_blank_values=True):
        previous = query.get(key)
        if previous is None:
            query[key] = value
        elif isinstance(previous, str):
            query[key] = (previous, value)
        else:
            query[key] = (*previous, value)

    parsed = URL(scheme, username, password, host, port, database, query)
    parsed._validate()
    return parsed


def _mask(text: str) -> str:
    """The raw URL text with any password replaced, for error messages."""
    scheme, sep, rest = text.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return text
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{hostpart}"
