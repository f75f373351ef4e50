"""Schema objects, DDL round trips and identifier quoting."""

from __future__ import annotations

from typing import Any

import pytest

from asyncorm import (
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from asyncorm.exc import ArgumentError, IntegrityError

pytestmark = pytest.mark.anyio


def shop(metadata: MetaData) -> tuple[Table, Table, Table]:
    customers = Table(
        "customers",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("email", String(100), nullable=False, unique=True),
        Column("name", String(50), index=True),
    )
    orders = Table(
        "orders",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
        Column("total", Integer, nullable=False, server_default="0"),
        CheckConstraint("total >= 0", name="total_not_negative"),
    )
    lines = Table(
        "order_lines",
        metadata,
        Column("order_id", Integer, nullable=False),
        Column("line", Integer, nullable=False),
        Column("sku", String(20)),
        PrimaryKeyConstraint("order_id", "line"),
        ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        Index("ix_lines_sku", "sku", unique=True),
    )
    return customers, orders, lines


def test_table_collections() -> None:
    metadata = MetaData()
    customers, orders, lines = shop(metadata)
    assert customers.c.email is customers.c["email"] is customers.c[1]
    assert "email" in customers.c and "nope" not in customers.c
    assert [c.name for c in customers.c] == ["id", "email", "name"]
    assert list(customers.primary_key) == [customers.c.id]
    assert [c.name for c in lines.primary_key] == ["order_id", "line"]
    assert [fk.column for fk in orders.foreign_keys] == [customers.c.id]
    assert orders.c.customer_id.type == Integer()
    assert [index.name for index in customers.indexes] == [None]
    assert {type(c).__name__ for c in customers.constraints} == {
        "PrimaryKeyConstraint",
        "UniqueConstraint",
    }
    assert metadata.sorted_tables == [customers, orders, lines]
    with pytest.raises(AttributeError, match="no column 'nope'"):
        customers.c.nope  # noqa: B018
    with pytest.raises(ArgumentError, match="already defined"):
        Table("customers", metadata, Column("id", Integer))


def test_table_and_column_errors() -> None:
    metadata = MetaData()
    with pytest.raises(ArgumentError, match="needs a name"):
        Table("t", metadata, Column(Integer))
    with pytest.raises(ArgumentError, match="unknown options"):
        Column("x", Integer, nullabel=True)
    a = Table("a", metadata, Column("id", Integer, primary_key=True))
    b = Table("b", metadata, Column("id", Integer), Column("x", ForeignKey("c.id")))
    with pytest.raises(ArgumentError, match="not in the same MetaData"):
        b.c.x.foreign_keys[0].column  # noqa: B018
    column = Column("y", Integer)
    Table("d", metadata, column)
    with pytest.raises(ArgumentError, match="already belongs"):
        Table("e", metadata, column)
    assert a.c.id.table is a


async def test_create_all_twice_and_drop_all(db: Any) -> None:
    metadata = MetaData()
    customers, orders, lines = shop(metadata)
    engine = db.make_engine()
    await metadata.create_all(engine)
    await metadata.create_all(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(customers).values(id=1, email="a@x", name="A"))
        await conn.execute(insert(orders).values(id=1, customer_id=1))
        await conn.execute(insert(lines).values(order_id=1, line=1, sku="S1"))
        total = (await conn.execute(select(orders.c.total))).scalar()
        assert total == 0
    assert set(await table_names(engine, db)) == {"customers", "orders", "order_lines"}
    assert {"ix_customers_name", "ix_lines_sku"} <= set(await index_names(engine, db))
    await metadata.drop_all(engine)
    assert await table_names(engine, db) == []
    await metadata.drop_all(engine)


async def test_constraints_are_enforced(db: Any) -> None:
    metadata = MetaData()
    customers, orders, lines = shop(metadata)
    engine = db.make_engine()
    await metadata.create_all(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(customers).values(id=1, email="a@x"))
        await conn.execute(insert(orders).values(id=1, customer_id=1, total=5))
        await conn.execute(insert(lines).values(order_id=1, line=1, sku="S"))
    for statement in [
        insert(customers).values(id=2, email="a@x"),  # unique
        insert(orders).values(id=2, customer_id=1, total=-1),  # check
        insert(lines).values(order_id=1, line=1, sku="T"),  # composite primary key
        insert(lines).values(order_id=1, line=2, sku="S"),  # unique index
        insert(orders).values(id=3, customer_id=99),  # foreign key
    ]:
        async with engine.connect() as conn:
            with pytest.raises(IntegrityError):
                await conn.execute(statement)
    async with engine.begin() as conn:
        await conn.execute(delete(customers).where(customers.c.id == 1))
        assert (await conn.execute(select(func.count()).select_from(lines))).scalar() == 0


async def test_reserved_and_odd_identifiers(db: Any) -> None:
    metadata = MetaData()
    user = Table(
        "user",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("order", Integer),
        Column("group", String(10), index=True),
        Column("MixedCase", String(10)),
        Column("with space", String(10)),
        Column('quote"d', String(10)),
    )
    select_ = Table(
        "select",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("user", ForeignKey("user.id")),
    )
    engine = db.make_engine()
    await metadata.create_all(engine)
    values = {"order": 1, "group": "g", "MixedCase": "M", "with space": "s", 'quote"d': "q"}
    async with engine.begin() as conn:
        await conn.execute(insert(user).values(id=1, **values))
        await conn.execute(insert(select_).values(id=5, user=1))
        await conn.execute(update(user).values(order=user.c.order + 1))
        row = (
            await conn.execute(
                select(user, select_.c.id.label("select"))
                .join(select_)
                .where(user.c.group == "g")
                .order_by(user.c.order)
            )
        ).one()
    assert row == (1, 2, "g", "M", "s", "q", 5)
    assert row._mapping["with space"] == "s"
    await metadata.drop_all(engine)
    assert await table_names(engine, db) == []


def test_naming_convention() -> None:
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
        }
    )
    customers, orders, _ = shop(metadata)
    from asyncorm._dialects import get_dialect
    from asyncorm._sql.ddl import CreateIndex, CreateTable

    sql = get_dialect("postgresql").compile(CreateTable(orders)).sql
    assert "CONSTRAINT pk_orders PRIMARY KEY (id)" in sql
    assert "CONSTRAINT fk_orders_customer_id_customers FOREIGN KEY (customer_id)" in sql
    assert "CONSTRAINT ck_orders_total_not_negative CHECK (total >= 0)" in sql
    sql = get_dialect("sqlite").compile(CreateTable(customers)).sql
    assert "CONSTRAINT uq_customers_email UNIQUE (email)" in sql
    index_sql = get_dialect("sqlite").compile(CreateIndex(customers.indexes[0])).sql
    assert index_sql == "CREATE INDEX IF NOT EXISTS ix_customers_name ON customers (name)"


async def test_naming_convention_on_the_database(db: Any) -> None:
    metadata = MetaData(naming_convention={"uq": "uq_%(table_name)s_%(column_0_N_name)s"})
    table = Table(
        "pairs",
        metadata,
        Column("a", Integer),
        Column("b", Integer),
        UniqueConstraint("a", "b"),
    )
    engine = db.make_engine()
    await metadata.create_all(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(table).values(a=1, b=2))
    async with engine.connect() as conn:
        with pytest.raises(IntegrityError, match=r"uq_pairs_a_b|pairs\.a, pairs\.b"):
            await conn.execute(insert(table).values(a=1, b=2))


async def table_names(engine: Any, db: Any) -> list[str]:
    if db.is_sqlite:
        query = text(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite%' ORDER BY name"
        )
    else:
        query = text(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name"
        )
    async with engine.connect() as conn:
        return list((await conn.execute(query)).scalars().all())


async def index_names(engine: Any, db: Any) -> list[str]:
    if db.is_sqlite:
        query = text("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        query = text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
    async with engine.connect() as conn:
        return list((await conn.execute(query)).scalars().all())


def test_foreign_key_names_the_database_column_or_its_key() -> None:
    metadata = MetaData()
    users = Table("users", metadata, Column("user_id", Integer, key="id", primary_key=True))
    by_name = Table("a", metadata, Column("owner", ForeignKey("users.user_id")))
    by_key = Table("b", metadata, Column("owner", ForeignKey("users.id")))
    assert list(users.c.keys()) == ["id"]
    assert by_name.c.owner.foreign_keys[0].column is users.c.id
    assert by_key.c.owner.foreign_keys[0].column is users.c.id
    missing = Table("c", metadata, Column("owner", ForeignKey("users.nothing")))
    with pytest.raises(ArgumentError, match="has no such column"):
        _ = missing.c.owner.foreign_keys[0].column
