"""The SQL each dialect emits for a representative set of statements, kept in
``compiled_sql.txt`` so that any change in emitted SQL shows up as a diff.

Run with ``ASYNCORM_UPDATE_SNAPSHOTS=1`` to rewrite the file after an intended change.
"""

from __future__ import annotations

import datetime
import enum
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from asyncorm import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    not_,
    or_,
    select,
    text,
    union_all,
    update,
)
from asyncorm._dialects import get_dialect
from asyncorm._sql.ddl import CreateIndex, CreateTable, DropTable

SNAPSHOT_FILE = Path(__file__).with_name("compiled_sql.txt")


class Status(enum.Enum):
    active = 1
    banned = 2


metadata = MetaData()
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False, index=True),
    Column("order", Integer, server_default="0"),
    Column("created", DateTime(timezone=True), server_default=func.now()),
    Column("status", Enum(Status), default=Status.active),
)
addresses = Table(
    "addresses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(100), unique=True),
    Column("verified", Boolean, nullable=False, server_default=literal_column("false")),
)
kinds = Table(
    "kinds",
    metadata,
    Column("key", String(10), primary_key=True),
    Column("amount", Numeric(12, 2)),
    Column("ident", Uuid),
    Column("doc", JSON),
    Column("blob", LargeBinary),
    Column("at", DateTime),
)


def _subquery_join() -> Any:
    counts = (
        select(addresses.c.user_id, func.count().label("n"))
        .group_by(addresses.c.user_id)
        .subquery("counts")
    )
    return select(users.c.name, counts.c.n).join(counts, counts.c.user_id == users.c.id)


def _upsert() -> Any:
    statement = insert(users).values(id=1, name="x")
    return statement.on_conflict_do_update(
        index_elements=["id"], set_={"name": statement.excluded.name, "order": users.c.order + 1}
    )


STATEMENTS: dict[str, Callable[[], Any]] = {
    "select_table": lambda: select(users),
    "select_where_operators": lambda: select(users.c.id).where(
        users.c.id == 5,
        users.c.name != "x",
        users.c.order.is_(None),
        or_(users.c.id < 3, users.c.id >= 10),
        not_(users.c.id.between(1, 2)),
    ),
    "in_list": lambda: select(users.c.id).where(users.c.id.in_([1, 2, 3])),
    "not_in_list": lambda: select(users.c.id).where(users.c.id.not_in([1, 2])),
    "in_empty": lambda: select(users.c.id).where(users.c.id.in_([])),
    "in_subquery": lambda: select(users.c.id).where(users.c.id.in_(select(addresses.c.user_id))),
    "like_family": lambda: select(users.c.id).where(
        users.c.name.like("a%"),
        users.c.name.ilike("b%"),
        users.c.name.startswith("50%_off"),
        users.c.name.endswith("x"),
        users.c.name.contains("a\\b"),
    ),
    "join_inferred_order_limit": lambda: (
        select(users.c.name, addresses.c.email)
        .join(addresses)
        .order_by(users.c.id.desc(), "email")
        .limit(10)
        .offset(20)
    ),
    "offset_only": lambda: select(users.c.id).offset(5),
    "outer_join_distinct": lambda: (
        select(users.c.id)
        .outerjoin(addresses)
        .where(addresses.c.id == None)  # noqa: E711
        .distinct()
    ),
    "group_by_having": lambda: (
        select(users.c.name, func.count(addresses.c.id).label("n"))
        .join(addresses)
        .group_by(users.c.name)
        .having(func.count(addresses.c.id) > 1)
    ),
    "count_select_from": lambda: select(func.count()).select_from(users),
    "exists_correlated": lambda: select(users.c.id).where(
        select(addresses.c.id).where(addresses.c.user_id == users.c.id).exists()
    ),
    "not_exists": lambda: select(users.c.id).where(
        ~exists().where(addresses.c.user_id == users.c.id)
    ),
    "scalar_subquery": lambda: select(
        users.c.id,
        select(func.count(addresses.c.id))
        .where(addresses.c.user_id == users.c.id)
        .scalar_subquery()
        .label("address_count"),
    ),
    "subquery_join": _subquery_join,
    "aliases": lambda: (
        lambda u1, a1: select(u1.c.id, a1.c.email).join(a1, a1.c.user_id == u1.c.id)
    )(users.alias("u1"), addresses.alias()),
    "for_update": lambda: select(users.c.id).where(users.c.id == 1).with_for_update(),
    "literals_and_functions": lambda: select(
        literal(5), literal("x"), func.coalesce(users.c.order, 0), func.now(), func.lower("A")
    ),
    "arithmetic": lambda: select((users.c.id + 1) * 2, users.c.id - (users.c.order - 1)),
    "union_all": lambda: union_all(
        select(users.c.id).where(users.c.id == 1), select(addresses.c.user_id)
    ).order_by("id"),
    "text": lambda: text("SELECT :x AS x, :d AS d, :s AS s WHERE 1 = :x"),
    "insert_values_returning": lambda: insert(users).values(name="x").returning(users.c.id),
    "insert_multi_values": lambda: insert(addresses).values(
        [{"user_id": 1, "email": "a"}, {"user_id": 2, "email": "b"}]
    ),
    "insert_from_params": lambda: insert(users),
    "insert_on_conflict_nothing": lambda: (
        insert(addresses)
        .values(user_id=1, email="a")
        .on_conflict_do_nothing(index_elements=["email"])
    ),
    "insert_on_conflict_update": _upsert,
    "update_arithmetic_returning": lambda: (
        update(users)
        .where(users.c.id == 5)
        .values(order=users.c.order + 1)
        .returning(users.c.order)
    ),
    "update_by_bindparam": lambda: (
        update(users).where(users.c.id == bindparam("uid")).values(name=bindparam("new_name"))
    ),
    "delete": lambda: delete(addresses).where(
        and_(addresses.c.user_id == 5, addresses.c.verified == False)  # noqa: E712
    ),
    "create_users": lambda: CreateTable(users),
    "create_addresses": lambda: CreateTable(addresses),
    "create_kinds": lambda: CreateTable(kinds),
    "create_index": lambda: CreateIndex(users.indexes[0]),
    "drop_table": lambda: DropTable(users),
}

PARAMS: dict[str, Any] = {
    "x": 1,
    "d": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    "s": "s",
    "name": "n",
    "uid": 7,
    "new_name": "m",
}


def render_all() -> str:
    chunks = []
    for name, build in STATEMENTS.items():
        statement = build()
        for dialect_name in ("postgresql", "sqlite"):
            dialect = get_dialect(dialect_name)
            compiled = dialect.compile(statement, ("name",))
            sql, _ = compiled.bind(statement, PARAMS)
            chunks.append(f"## {name} [{dialect_name}]\n{sql}\n")
        chunks.append(f"## {name} [str]\n{statement}\n")
    return "\n".join(chunks)


def test_compiled_sql_matches_snapshot() -> None:
    rendered = render_all()
    if os.environ.get("ASYNCORM_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT_FILE.exists():
        SNAPSHOT_FILE.write_text(rendered)
    expected = SNAPSHOT_FILE.read_text()
    if rendered != expected:
        pytest.fail(
            "emitted SQL changed; review the diff and rerun with ASYNCORM_UPDATE_SNAPSHOTS=1 if "
            "it is intended:\n" + _diff(expected, rendered)
        )


def _diff(expected: str, rendered: str) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            rendered.splitlines(keepends=True),
            "compiled_sql.txt",
            "now",
        )
    )
