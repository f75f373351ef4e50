"""URL parsing: no I/O, percent-decoding, password masking, clear errors."""

from __future__ import annotations

import pytest

from asyncorm import URL, create_engine, make_url
from asyncorm.exc import ArgumentError


def test_postgresql_url_parts() -> None:
    url = make_url("postgresql+asyncpg://scott:tiger@db.example:6543/app?sslmode=disable&x=1")
    assert url.drivername == "postgresql+asyncpg"
    assert (url.backend, url.driver) == ("postgresql", "asyncpg")
    assert (url.username, url.password) == ("scott", "tiger")
    assert (url.host, url.port, url.database) == ("db.example", 6543, "app")
    assert dict(url.query) == {"sslmode": "disable", "x": "1"}


def test_default_driver_and_minimal_url() -> None:
    url = make_url("postgresql://localhost/db")
    assert url.driver == "asyncpg"
    assert (url.username, url.password, url.port) == (None, None, None)
    assert make_url("sqlite:///x.db").driver == "aiosqlite"


def test_percent_decoding_and_round_trip() -> None:
    url = make_url("postgresql://us%40er:p%40ss%2Fw%3Ard@h/d%20b")
    assert (url.username, url.password, url.database) == ("us@er", "p@ss/w:rd", "d b")
    again = make_url(url.render_as_string(hide_password=False))
    assert again == url
    assert again.password == "p@ss/w:rd"


def test_ipv6_host() -> None:
    url = make_url("postgresql://u@[::1]:5433/db")
    assert (url.host, url.port) == ("::1", 5433)
    assert "[::1]:5433" in str(url)


def test_repeated_query_option_becomes_tuple() -> None:
    assert make_url("postgresql://h/d?a=1&a=2").query["a"] == ("1", "2")


@pytest.mark.parametrize(
    ("text", "database", "memory"),
    [
        ("sqlite:///relative.db", "relative.db", False),
        ("sqlite+aiosqlite:///sub/dir/file.db", "sub/dir/file.db", False),
        ("sqlite:////abs/path.db", "/abs/path.db", False),
        ("sqlite:///:memory:", ":memory:", True),
        ("sqlite://", None, True),
    ],
)
def test_sqlite_paths(text: str, database: str | None, memory: bool) -> None:
    url = make_url(text)
    assert url.database == database
    assert url.is_sqlite_memory is memory


def test_password_hidden_in_str_and_repr() -> None:
    url = make_url("postgresql://scott:s3cret@h/db")
    assert "s3cret" not in str(url)
    assert "s3cret" not in repr(url)
    assert "***" in str(url)
    assert "s3cret" in url.render_as_string(hide_password=False)
    engine = create_engine(url)
    assert "s3cret" not in repr(engine)


def test_make_url_passes_url_through_and_create() -> None:
    url = URL.create("postgresql", username="u", password="p@ss", host="h", database="d")
    assert make_url(url) is url
    assert make_url(url.render_as_string(hide_password=False)).password == "p@ss"
    assert url.set(database="other").database == "other"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("mysql://u@h/db", "'mysql'"),
        ("postgresql+psycopg://u@h/db", "'postgresql+psycopg'"),
        ("sqlite+pysqlite:///x.db", "'sqlite+pysqlite'"),
        ("oracle+cx://h/db", "'oracle+cx'"),
        ("not a url", "could not parse"),
        ("", "could not parse"),
        ("postgresql://h:port/db", "port"),
        ("postgresql://h:70000/db", "out of range"),
        ("postgresql://[::1/db", "'['"),
        ("sqlite://host/x.db", "SQLite URL names a file"),
    ],
)
def test_invalid_urls(text: str, needle: str) -> None:
    with pytest.raises(ArgumentError, match=None) as info:
        make_url(text)
    assert needle in str(info.value)


def test_invalid_url_message_masks_password() -> None:
    with pytest.raises(ArgumentError) as info:
        make_url("postgresql://u:hunter2@h:notaport/db")
    assert "hunter2" not in str(info.value)


def test_not_a_string() -> None:
    with pytest.raises(ArgumentError):
        make_url(42)  # type: ignore[arg-type]


def test_create_engine_validates_without_io() -> None:
    # Nothing listens on port 1: create_engine must not try to connect.
    engine = create_engine("postgresql://u:p@127.0.0.1:1/db", pool_size=2)
    assert engine.pool.status()["checked_out"] == 0
    assert engine.url.port == 1


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"pool_sise": 3}, "'pool_sise'"),
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": "5"}, "pool_size"),
        ({"max_overflow": -2}, "max_overflow"),
        ({"pool_timeout": -1}, "pool_timeout"),
        ({"pool_recycle": "soon"}, "pool_recycle"),
        ({"connect_args": [1]}, "connect_args"),
    ],
)
def test_bad_engine_options(options: dict[str, object], needle: str) -> None:
    with pytest.raises(ArgumentError) as info:
        create_engine("sqlite://", **options)
    assert needle in str(info.value)


def test_unknown_sqlite_url_option() -> None:
    with pytest.raises(ArgumentError, match="'journal'"):
        create_engine("sqlite:///x.db?journal=off")


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", ""])
def test_sqlite_url_timeout_must_be_a_number_of_seconds(value: str) -> None:
    with pytest.raises(ArgumentError, match=f"timeout='{value}'.*number of seconds"):
        create_engine(f"sqlite:///x.db?timeout={value}")
