"""Helpers shared by the engine tests."""

from __future__ import annotations

import pytest

from asyncorm import AsyncEngine, text

# Run a test on one database only, instead of skipping it on the other.
only_postgresql = pytest.mark.parametrize("db", ["postgresql"], indirect=True)
only_sqlite = pytest.mark.parametrize("db", ["sqlite"], indirect=True)

ITEMS_DDL = (
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(5) NOT NULL UNIQUE, "
    "qty INTEGER CHECK (qty >= 0), parent INTEGER REFERENCES items (id))"
)


async def create_items(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(ITEMS_DDL))


async def count_items(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        value = await conn.scalar(text("SELECT count(*) FROM items"))
    return int(value)
