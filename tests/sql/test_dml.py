"""INSERT, UPDATE and DELETE on both databases."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from asyncorm import (
    AsyncConnection,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from asyncorm.exc import ArgumentError, IntegrityError

from .conftest import Schema

pytestmark = pytest.mark.anyio


async def names(conn: AsyncConnection, schema: Schema) -> list[str]:
    result = await conn.execute(select(schema.users.c.name).order_by(schema.users.c.id))
    return list(result.scalars().all())


async def test_insert_values_returning(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    result = await conn.execute(
        insert(users).values(id=10, name="Eve", age=41).returning(users.c.id, users.c.name)
    )
    assert result.all() == [(10, "Eve")]
    row = (await conn.execute(select(users).where(users.c.id == 10))).one()
    assert row == (10, "Eve", 41)


async def test_insert_values_dict_with_column_keys(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    await conn.execute(insert(users).values({users.c.id: 11, users.c.name: "Fay"}))
    assert (await conn.execute(select(users.c.name).where(users.c.id == 11))).scalar() == "Fay"


async def test_insert_values_with_parameters_naming_columns(
    conn: AsyncConnection, schema: Schema
) -> None:
    # As in SQLAlchemy: a parameter naming a column sets it, over values() too.
    users = schema.users
    statement = insert(users).values(name="from values", age=1)
    await conn.execute(statement, {"id": 12, "name": "from execute"})
    await conn.execute(statement, [{"id": 13, "age": 1}, {"id": 14, "age": 7}])
    found = await conn.execute(
        select(users.c.id, users.c.name, users.c.age).where(users.c.id >= 12).order_by(users.c.id)
    )
    assert found.all() == [(12, "from execute", 1), (13, "from values", 1), (14, "from values", 7)]


async def test_multi_row_insert_returning(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    result = await conn.execute(
        insert(users)
        .values([{"id": 20, "name": "a", "age": 1}, {"id": 21, "name": "b", "age": 2}])
        .returning(users.c.id)
    )
    assert sorted(result.scalars().all()) == [20, 21]
    found = await conn.execute(select(users.c.age).where(users.c.id >= 20).order_by(users.c.id))
    assert found.scalars().all() == [1, 2]


async def test_executemany_insert(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    await conn.execute(insert(users), [{"id": 30, "name": "x"}, {"id": 31, "name": "y"}])
    assert (await names(conn, schema))[-2:] == ["x", "y"]


async def test_insert_unknown_parameter_is_refused(conn: AsyncConnection, schema: Schema) -> None:
    with pytest.raises(ArgumentError, match="nmae"):
        await conn.execute(insert(schema.users), {"id": 40, "nmae": "x"})


async def test_autoincrement_primary_key(db: Any) -> None:
    metadata = MetaData()
    things = Table(
        "things",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("label", String(20)),
    )
    engine = db.make_engine()
    await metadata.create_all(engine)
    async with engine.begin() as conn:
        first = (
            await conn.execute(insert(things).values(label="a").returning(things.c.id))
        ).scalar()
        await conn.execute(insert(things), [{"label": "b"}, {"label": "c"}])
        ids = (await conn.execute(select(things.c.id).order_by(things.c.id))).scalars().all()
    assert first == 1
    assert ids == [1, 2, 3]


async def test_python_defaults_and_onupdate(db: Any) -> None:
    counter = itertools.count(1)
    metadata = MetaData()
    items = Table(
        "items",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(20), default="unnamed"),
        Column("serial", Integer, default=lambda: next(counter)),
        Column("twice", Integer, default=lambda ctx: ctx.current_parameters.get("id", 0) * 2),
        Column("version", Integer, default=1, onupdate=lambda: 99),
        Column("created", DateTime(timezone=True), server_default=func.now()),
    )
    engine = db.make_engine()
    await metadata.create_all(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(items).values(id=1))
        await conn.execute(insert(items), [{"id": 2, "name": "x"}, {"id": 3}])
        await conn.execute(insert(items), {"id": 4})
        rows = (
            await conn.execute(
                select(
                    items.c.id, items.c.name, items.c.serial, items.c.twice, items.c.version
                ).order_by(items.c.id)
            )
        ).all()
        assert rows == [
            (1, "unnamed", 1, 2, 1),
            (2, "x", 2, 4, 1),
            (3, "unnamed", 3, 6, 1),
            (4, "unnamed", 4, 8, 1),
        ]
        await conn.execute(update(items).where(items.c.id == 1).values(name="renamed"))
        row = (
            await conn.execute(select(items.c.name, items.c.version).where(items.c.id == 1))
        ).one()
        assert row == ("renamed", 99)
        created = (await conn.execute(select(items.c.created).where(items.c.id == 1))).scalar()
        assert created is not None and created.tzinfo is not None


async def test_sql_expression_default_given_or_rendered(db: Any) -> None:
    metadata = MetaData()
    items = Table(
        "items",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("code", String(20), default=func.upper("new")),
    )
    engine = db.make_engine()
    await metadata.create_all(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(items), [{"id": 1}, {"id": 2}])  # rendered: upper('new')
        await conn.execute(insert(items), {"id": 3, "code": "given"})  # a value wins
        await conn.execute(insert(items), [{"id": 4, "code": "a"}, {"id": 5, "code": "b"}])
        with pytest.raises(ArgumentError, match="'code'"):
            # The first row's columns shape the statement: the expression cannot stand in
            # for a later row's missing value.
            await conn.execute(insert(items), [{"id": 6, "code": "c"}, {"id": 7}])
    async with engine.connect() as conn:
        rows = (await conn.execute(select(items.c.id, items.c.code).order_by(items.c.id))).all()
        assert rows == [(1, "NEW"), (2, "NEW"), (3, "given"), (4, "a"), (5, "b")]


async def test_update_values_and_arithmetic(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    result = await conn.execute(
        update(users).where(users.c.age != None).values(age=users.c.age + 1)  # noqa: E711
    )
    assert result.rowcount == 3
    await conn.execute(update(users).where(users.c.id == 2).values(name=users.c.name + "by"))
    rows = (await conn.execute(select(users.c.name, users.c.age).order_by(users.c.id))).all()
    assert rows == [("Alice", 31), ("bobby", 26), ("Carol", 36), ("dave", None)]


async def test_update_returning(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    result = await conn.execute(
        update(users).where(users.c.id.in_([1, 3])).values(age=0).returning(users.c.id)
    )
    assert sorted(result.scalars().all()) == [1, 3]


async def test_update_from_parameters_executemany(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    statement = update(users).where(users.c.id == bindparam("user_id"))
    await conn.execute(statement, [{"user_id": 1, "name": "A1"}, {"user_id": 2, "name": "B2"}])
    assert await names(conn, schema) == ["A1", "B2", "Carol", "dave"]


async def test_delete(conn: AsyncConnection, schema: Schema) -> None:
    users, addresses = schema.users, schema.addresses
    result = await conn.execute(delete(addresses).where(addresses.c.email.endswith("x.org")))
    assert result.rowcount == 3
    deleted = await conn.execute(delete(users).where(users.c.id == 4).returning(users.c.name))
    assert deleted.scalars().all() == ["dave"]
    assert await names(conn, schema) == ["Alice", "bob", "Carol"]


async def test_on_conflict_do_nothing(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    statement = insert(users).values(id=1, name="dup").on_conflict_do_nothing(index_elements=["id"])
    result = await conn.execute(statement)
    assert result.rowcount == 0
    await conn.execute(insert(users).values(id=50, name="new").on_conflict_do_nothing())
    assert (await names(conn, schema))[0] == "Alice"
    assert (await names(conn, schema))[-1] == "new"


async def test_on_conflict_do_update_with_excluded(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    statement = insert(users).values(id=2, name="robert", age=1)
    statement = statement.on_conflict_do_update(
        index_elements=[users.c.id],
        set_={"name": statement.excluded.name, "age": users.c.age + statement.excluded.age},
    )
    await conn.execute(statement)
    row = (await conn.execute(select(users.c.name, users.c.age).where(users.c.id == 2))).one()
    assert row == ("robert", 26)


async def test_on_conflict_do_update_where(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    statement = insert(users).values(id=3, name="ignored")
    statement = statement.on_conflict_do_update(
        index_elements=["id"], set_={"name": statement.excluded.name}, where=users.c.age > 100
    )
    await conn.execute(statement)
    assert (await names(conn, schema))[2] == "Carol"


async def test_foreign_key_is_enforced(conn: AsyncConnection, schema: Schema) -> None:
    with pytest.raises(IntegrityError):
        await conn.execute(
            insert(schema.addresses).values(id=99, user_id=12345, email="nobody@x.org")
        )


async def test_insert_from_select(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    source = select(users.c.id + 100, users.c.name + "2").where(users.c.id < 3)
    await conn.execute(insert(users).from_select(["id", "name"], source))
    assert (await names(conn, schema))[-2:] == ["Alice2", "bob2"]


async def test_update_and_delete_naming_other_tables(conn: AsyncConnection, schema: Schema) -> None:
    # As in SQLAlchemy: UPDATE … FROM the other tables; DELETE … USING them (PostgreSQL)
    # or, on SQLite, which has no USING, WHERE EXISTS over them: the same rows either way.
    users, addresses = schema.users, schema.addresses
    statement = (
        update(users)
        .where(users.c.id == addresses.c.user_id, addresses.c.email.endswith("@x.org"))
        .values(age=users.c.age + 1)
    )
    assert "FROM addresses WHERE" in str(statement)
    result = await conn.execute(statement)
    assert result.rowcount == 3
    ages = await conn.execute(select(users.c.age).order_by(users.c.id))
    assert ages.scalars().all() == [31, 26, 36, None]
    copied = await conn.execute(
        update(users)
        .where(users.c.id == addresses.c.user_id, addresses.c.id == 3)
        .values(name=addresses.c.email)
        .returning(users.c.id, users.c.name)
    )
    assert copied.all() == [(2, "bob@x.org")]
    gone = await conn.execute(
        delete(addresses)
        .where(addresses.c.user_id == users.c.id, users.c.name == "Alice")
        .returning(addresses.c.id)
    )
    assert sorted(gone.scalars().all()) == [1, 2]
    left = await conn.execute(select(addresses.c.id).order_by(addresses.c.id))
    assert left.scalars().all() == [3, 4]
