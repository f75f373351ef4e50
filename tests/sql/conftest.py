"""A small users/addresses schema with known rows, created on the test's database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from asyncorm import (
    AsyncConnection,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    insert,
)


@dataclass
class Schema:
    metadata: MetaData
    users: Table
    addresses: Table


USERS = [
    {"id": 1, "name": "Alice", "age": 30},
    {"id": 2, "name": "bob", "age": 25},
    {"id": 3, "name": "Carol", "age": 35},
    {"id": 4, "name": "dave", "age": None},
]
ADDRESSES = [
    {"id": 1, "user_id": 1, "email": "alice@x.org"},
    {"id": 2, "user_id": 1, "email": "alice@y.com"},
    {"id": 3, "user_id": 2, "email": "bob@x.org"},
    {"id": 4, "user_id": 3, "email": "carol_100%@x.org"},
]


@pytest.fixture
def schema() -> Schema:
    metadata = MetaData()
    users = Table(
        "users",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(50), nullable=False),
        Column("age", Integer),
    )
    addresses = Table(
        "addresses",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        Column("email", String(100), nullable=False),
    )
    return Schema(metadata, users, addresses)


@pytest.fixture
async def conn(db: Any, schema: Schema) -> AsyncIterator[AsyncConnection]:
    """A connection (in a transaction) to a database holding USERS and ADDRESSES."""
    engine = db.make_engine()
    await schema.metadata.create_all(engine)
    async with engine.begin() as setup:
        await setup.execute(insert(schema.users), USERS)
        await setup.execute(insert(schema.addresses), ADDRESSES)
    async with engine.connect() as connection:
        yield connection
