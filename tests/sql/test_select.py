"""Every operator and SELECT clause, executed on both databases against known rows."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from asyncorm import (
    AsyncConnection,
    Column,
    ForeignKey,
    Integer,
    Table,
    and_,
    asc,
    desc,
    exists,
    func,
    insert,
    literal,
    literal_column,
    not_,
    or_,
    select,
    text,
    union,
    union_all,
)
from asyncorm._sql.selectable import Select
from asyncorm.exc import ArgumentError

from .conftest import Schema

pytestmark = pytest.mark.anyio

Build = Callable[[Any, Any], Select[Any]]

# (statement built from users u and addresses a, expected scalars of the first column)
ID_CASES: dict[str, tuple[Build, list[Any]]] = {
    "eq": (lambda u, a: select(u.c.id).where(u.c.name == "bob"), [2]),
    "ne": (lambda u, a: select(u.c.id).where(u.c.name != "bob").order_by(u.c.id), [1, 3, 4]),
    "lt": (lambda u, a: select(u.c.id).where(u.c.age < 30), [2]),
    "le": (lambda u, a: select(u.c.id).where(u.c.age <= 30).order_by(u.c.id), [1, 2]),
    "gt": (lambda u, a: select(u.c.id).where(u.c.age > 30), [3]),
    "ge": (lambda u, a: select(u.c.id).where(u.c.age >= 30).order_by(u.c.id), [1, 3]),
    "eq_none": (lambda u, a: select(u.c.id).where(u.c.age == None), [4]),  # noqa: E711
    "ne_none": (
        lambda u, a: select(u.c.id).where(u.c.age != None).order_by(u.c.id),  # noqa: E711
        [1, 2, 3],
    ),
    "is_": (lambda u, a: select(u.c.id).where(u.c.age.is_(None)), [4]),
    "is_not": (lambda u, a: select(u.c.id).where(u.c.age.is_not(None)).order_by(u.c.id), [1, 2, 3]),
    "in": (lambda u, a: select(u.c.id).where(u.c.id.in_([1, 3, 99])).order_by(u.c.id), [1, 3]),
    "in_empty": (lambda u, a: select(u.c.id).where(u.c.id.in_([])), []),
    "not_in": (lambda u, a: select(u.c.id).where(u.c.id.not_in([1, 3])).order_by(u.c.id), [2, 4]),
    "not_in_empty": (
        lambda u, a: select(u.c.id).where(u.c.id.not_in([])).order_by(u.c.id),
        [1, 2, 3, 4],
    ),
    "in_strings": (
        lambda u, a: select(u.c.id).where(u.c.name.in_(("bob", "dave"))).order_by(u.c.id),
        [2, 4],
    ),
    "in_subquery": (
        lambda u, a: (
            select(u.c.id)
            .where(u.c.id.in_(select(a.c.user_id).where(a.c.email.like("%x.org"))))
            .order_by(u.c.id)
        ),
        [1, 2, 3],
    ),
    "not_in_subquery": (
        lambda u, a: select(u.c.id).where(u.c.id.not_in(select(a.c.user_id))),
        [4],
    ),
    "ilike": (lambda u, a: select(u.c.id).where(u.c.name.ilike("B%")), [2]),
    "not_ilike": (
        lambda u, a: select(u.c.id).where(u.c.name.not_ilike("%a%")).order_by(u.c.id),
        [2],
    ),
    "like_exact_case": (lambda u, a: select(u.c.id).where(u.c.name.like("Car%")), [3]),
    "not_like": (
        lambda u, a: select(u.c.id).where(u.c.name.not_like("%o%")).order_by(u.c.id),
        [1, 4],
    ),
    "startswith": (lambda u, a: select(u.c.id).where(u.c.name.startswith("Al")), [1]),
    "endswith": (
        lambda u, a: select(a.c.id).where(a.c.email.endswith("@x.org")).order_by(a.c.id),
        [1, 3, 4],
    ),
    "contains": (lambda u, a: select(a.c.id).where(a.c.email.contains("_100%")), [4]),
    "contains_escapes_percent": (lambda u, a: select(a.c.id).where(a.c.email.contains("%")), [4]),
    "contains_escapes_underscore": (
        lambda u, a: select(a.c.id).where(a.c.email.contains("l_1")),
        [4],
    ),
    "contains_backslash": (lambda u, a: select(a.c.id).where(a.c.email.contains("\\")), []),
    "startswith_underscore_literal": (
        lambda u, a: select(a.c.id).where(a.c.email.startswith("_")),
        [],
    ),
    "between": (
        lambda u, a: select(u.c.id).where(u.c.age.between(25, 30)).order_by(u.c.id),
        [1, 2],
    ),
    "and_": (lambda u, a: select(u.c.id).where(and_(u.c.age > 20, u.c.name == "Carol")), [3]),
    "or_": (
        lambda u, a: select(u.c.id).where(or_(u.c.id == 1, u.c.name == "dave")).order_by(u.c.id),
        [1, 4],
    ),
    "not_": (lambda u, a: select(u.c.id).where(not_(u.c.age > 26)).order_by(u.c.id), [2]),
    "ampersand": (lambda u, a: select(u.c.id).where((u.c.age > 20) & (u.c.age < 30)), [2]),
    "pipe": (
        lambda u, a: select(u.c.id).where((u.c.id == 2) | (u.c.id == 3)).order_by(u.c.id),
        [2, 3],
    ),
    "invert": (lambda u, a: select(u.c.id).where(~u.c.id.in_([1, 2, 3])), [4]),
    "and_inside_or": (
        lambda u, a: (
            select(u.c.id)
            .where(or_(and_(u.c.id == 1, u.c.age == 30), and_(u.c.id == 2, u.c.age == 99)))
            .order_by(u.c.id)
        ),
        [1],
    ),
    "several_where_anded": (
        lambda u, a: select(u.c.id).where(u.c.age > 20).where(u.c.age < 34, u.c.id > 1),
        [2],
    ),
    "filter_alias": (lambda u, a: select(u.c.id).filter(u.c.name == "Carol"), [3]),
    "filter_by": (lambda u, a: select(u).filter_by(name="dave"), [4]),
    "order_desc": (lambda u, a: select(u.c.id).order_by(u.c.id.desc()), [4, 3, 2, 1]),
    "order_asc_function": (lambda u, a: select(u.c.id).order_by(asc(u.c.name)), [1, 3, 2, 4]),
    "order_desc_function": (lambda u, a: select(u.c.id).order_by(desc(u.c.id)), [4, 3, 2, 1]),
    "order_by_label_name": (
        lambda u, a: select(u.c.id, (u.c.id * -1).label("neg")).order_by("neg"),
        [4, 3, 2, 1],
    ),
    "order_by_label_object": (
        lambda u, a: (
            select(u.c.id, (u.c.age + 0).label("years"))
            .where(u.c.age != None)  # noqa: E711
            .order_by(literal_column("years").desc())
        ),
        [3, 1, 2],
    ),
    "limit": (lambda u, a: select(u.c.id).order_by(u.c.id).limit(2), [1, 2]),
    "offset": (lambda u, a: select(u.c.id).order_by(u.c.id).offset(2), [3, 4]),
    "limit_offset": (lambda u, a: select(u.c.id).order_by(u.c.id).limit(1).offset(1), [2]),
    "distinct": (lambda u, a: select(a.c.user_id).distinct().order_by(a.c.user_id), [1, 2, 3]),
    "join_inferred": (
        lambda u, a: select(u.c.id).join(a).where(a.c.email.endswith("@y.com")),
        [1],
    ),
    "join_explicit": (
        lambda u, a: select(u.c.name).join(a, u.c.id == a.c.user_id).where(a.c.id == 3),
        ["bob"],
    ),
    "outerjoin": (
        lambda u, a: select(u.c.id).outerjoin(a).where(a.c.id == None),  # noqa: E711
        [4],
    ),
    "join_isouter": (
        lambda u, a: (
            select(u.c.id, a.c.id)
            .join(a, u.c.id == a.c.user_id, isouter=True)
            .order_by(u.c.id, a.c.id)
        ),
        [1, 1, 2, 3, 4],
    ),
    "join_from_address_side": (
        lambda u, a: select(a.c.email).join(u).where(u.c.name == "Carol"),
        ["carol_100%@x.org"],
    ),
    "select_from_join": (
        lambda u, a: select(a.c.id).select_from(u.join(a)).where(u.c.id == 2),
        [3],
    ),
    "count_select_from": (lambda u, a: select(func.count()).select_from(u), [4]),
    "count_column": (lambda u, a: select(func.count(u.c.age)), [3]),
    "count_distinct": (lambda u, a: select(func.count(a.c.user_id.distinct())), [3]),
    "group_by_having": (
        lambda u, a: (
            select(u.c.name, func.count(a.c.id).label("n"))
            .join(a)
            .group_by(u.c.name)
            .having(func.count(a.c.id) > 1)
        ),
        ["Alice"],
    ),
    "group_by_label_name": (
        lambda u, a: (
            select(a.c.user_id.label("uid"), func.count().label("n"))
            .group_by("uid")
            .order_by(desc("n"), "uid")
        ),
        [1, 2, 3],
    ),
    "lower": (lambda u, a: select(func.lower(u.c.name)).where(u.c.id == 1), ["alice"]),
    "upper_compared": (lambda u, a: select(u.c.id).where(func.upper(u.c.name) == "BOB"), [2]),
    "max": (lambda u, a: select(func.max(u.c.age)), [35]),
    "coalesce": (
        lambda u, a: select(func.coalesce(u.c.age, -1)).order_by(u.c.id),
        [30, 25, 35, -1],
    ),
    "arithmetic": (
        lambda u, a: select(u.c.age + 1, u.c.age * 2).where(u.c.id == 1),
        [31],
    ),
    "reverse_arithmetic": (lambda u, a: select(100 - u.c.age).where(u.c.id == 1), [70]),
    # `/` divides as Python does (SQLAlchemy 2 too); `//` is SQL's division of integers.
    "true_division": (lambda u, a: select(u.c.age / 4).where(u.c.id == 1), [Decimal("7.5")]),
    "true_division_of_columns": (
        lambda u, a: select(u.c.age / u.c.id).where(u.c.id == 2),
        [Decimal("12.5")],
    ),
    "reverse_true_division": (lambda u, a: select(45 / u.c.age).where(u.c.id == 1), [1.5]),
    "floor_division": (lambda u, a: select(u.c.age // 4).where(u.c.id == 1), [7]),
    "floor_division_of_a_fraction": (
        lambda u, a: select(u.c.age // 4.0).where(u.c.id == 1),
        [7],
    ),
    "fraction_times_integer": (lambda u, a: select(u.c.age * 1.5).where(u.c.id == 1), [45.0]),
    "decimal_plus_integer": (
        lambda u, a: select(u.c.age + Decimal("0.25")).where(u.c.id == 1),
        [Decimal("30.25")],
    ),
    "modulo": (lambda u, a: select(u.c.age % 7).where(u.c.id == 1), [2]),
    "negation": (lambda u, a: select(-u.c.age).where(u.c.id == 1), [-30]),
    "string_concat": (lambda u, a: select(u.c.name + "!").where(u.c.id == 2), ["bob!"]),
    "literal": (lambda u, a: select(literal(5)), [5]),
    "literal_string": (lambda u, a: select(literal("x'y")), ["x'y"]),
    "literal_column": (lambda u, a: select(literal_column("1")), [1]),
    "coalesce_none_literal": (lambda u, a: select(func.coalesce(None, 3)), [3]),
    "label": (lambda u, a: select(u.c.name.label("who")).where(u.c.id == 3), ["Carol"]),
    "scalar_subquery": (
        lambda u, a: select(
            u.c.id,
            select(func.count(a.c.id)).where(a.c.user_id == u.c.id).scalar_subquery().label("n"),
        ).order_by(u.c.id),
        [1, 2, 3, 4],
    ),
    "scalar_subquery_in_where": (
        lambda u, a: select(u.c.id).where(u.c.age == select(func.max(u.c.age)).scalar_subquery()),
        [3],
    ),
    "exists_method": (
        lambda u, a: (
            select(u.c.id)
            .where(select(a.c.id).where(a.c.user_id == u.c.id).exists())
            .order_by(u.c.id)
        ),
        [1, 2, 3],
    ),
    "exists_function": (
        lambda u, a: select(u.c.id).where(~exists().where(a.c.user_id == u.c.id)),
        [4],
    ),
    "exists_of_select": (
        lambda u, a: select(u.c.id).where(
            exists(select(a.c.id).where(a.c.user_id == u.c.id, a.c.email.like("%y.com")))
        ),
        [1],
    ),
    "subquery": (
        lambda u, a: (lambda sq: select(sq.c.user_id, sq.c.n).where(sq.c.n > 1))(
            select(a.c.user_id, func.count().label("n")).group_by(a.c.user_id).subquery()
        ),
        [1],
    ),
    "subquery_join": (
        lambda u, a: (
            lambda sq: (
                select(u.c.name)
                .join(sq, sq.c.user_id == u.c.id)
                .where(sq.c.n == 1)
                .order_by(u.c.name)
            )
        )(select(a.c.user_id, func.count().label("n")).group_by(a.c.user_id).subquery("counts")),
        ["Carol", "bob"],
    ),
    "alias_self_join": (
        lambda u, a: (
            lambda older: (
                select(u.c.id)
                .join(older, older.c.age > u.c.age)
                .where(older.c.name == "Carol")
                .order_by(u.c.id)
            )
        )(u.alias("older")),
        [1, 2],
    ),
    "anonymous_aliases": (
        lambda u, a: (
            lambda a1, a2: (
                select(a1.c.id)
                .join(a2, and_(a1.c.user_id == a2.c.user_id, a1.c.id < a2.c.id))
                .order_by(a1.c.id)
            )
        )(a.alias(), a.alias()),
        [1],
    ),
    "add_columns": (
        lambda u, a: select(u.c.id).add_columns(u.c.name).where(u.c.id == 2),
        [2],
    ),
    "with_only_columns": (
        lambda u, a: select(u).where(u.c.id == 2).with_only_columns(u.c.name),
        ["bob"],
    ),
    "union": (
        lambda u, a: union(
            select(u.c.id).where(u.c.id == 1), select(u.c.id).where(u.c.id < 3)
        ).order_by("id"),
        [1, 2],
    ),
    "union_all": (
        lambda u, a: union_all(
            select(u.c.id).where(u.c.id == 1), select(u.c.id).where(u.c.id < 3)
        ).order_by("id"),
        [1, 1, 2],
    ),
    "text_in_where": (
        lambda u, a: select(u.c.id).where(text("users.age > :a").bindparams(a=30)),
        [3],
    ),
    "with_for_update": (lambda u, a: select(u.c.id).where(u.c.id == 1).with_for_update(), [1]),
}


@pytest.mark.parametrize("case", list(ID_CASES))
async def test_select_case(conn: AsyncConnection, schema: Schema, case: str) -> None:
    build, expected = ID_CASES[case]
    statement = build(schema.users, schema.addresses)
    result = await conn.execute(statement)
    assert result.scalars().all() == expected


async def test_like_follows_the_database(db: Any, conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    found = (await conn.execute(select(users.c.id).where(users.c.name.like("b%")))).scalars()
    # LIKE is case-sensitive on PostgreSQL and ASCII case-insensitive on SQLite.
    assert found.all() == [2]
    upper = await conn.execute(select(users.c.id).where(users.c.name.like("B%")))
    assert upper.scalars().all() == ([] if db.is_postgresql else [2])


async def test_ilike_folds_every_letter_on_both(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    await conn.execute(insert(users), [{"id": 10, "name": "Évora"}, {"id": 11, "name": "ZÜRICH"}])
    for pattern, expected in [("évora", [10]), ("%ürich", [11]), ("ÉVO%", [10]), ("b%", [2])]:
        found = await conn.execute(select(users.c.id).where(users.c.name.ilike(pattern)))
        assert found.scalars().all() == expected, pattern
    others = await conn.execute(
        select(users.c.id).where(users.c.name.not_ilike("%ÜRI%"), users.c.id >= 10)
    )
    assert others.scalars().all() == [10]


async def test_result_keys_and_rows(conn: AsyncConnection, schema: Schema) -> None:
    users, addresses = schema.users, schema.addresses
    result = await conn.execute(
        select(
            users.c.id, users.c.name, addresses.c.id, func.count().label("n"), func.max(users.c.age)
        )
        .join(addresses)
        .group_by(users.c.id, users.c.name, addresses.c.id)
        .order_by(addresses.c.id)
        .limit(1)
    )
    assert tuple(result.keys()) == ("id", "name", "id", "n", "max")
    row = result.one()
    assert row == (1, "Alice", 1, 1, 30)
    assert row.name == "Alice"
    assert row.n == 1


async def test_select_table_returns_every_column(conn: AsyncConnection, schema: Schema) -> None:
    row = (await conn.execute(select(schema.users).where(schema.users.c.id == 2))).one()
    assert row == (2, "bob", 25)
    assert row._mapping["age"] == 25


async def test_same_shape_other_values_reuses_compiled(
    db: Any, conn: AsyncConnection, schema: Schema
) -> None:
    users = schema.users
    dialect = conn._engine.dialect  # type: ignore[attr-defined]
    before = dialect.cache_misses
    names = []
    for user_id in (1, 2, 3):
        result = await conn.execute(select(users.c.name).where(users.c.id == user_id))
        names.append(result.scalar_one())
    assert names == ["Alice", "bob", "Carol"]
    assert dialect.cache_misses - before <= 1


async def test_in_lists_of_several_lengths(conn: AsyncConnection, schema: Schema) -> None:
    users = schema.users
    for ids, expected in [([1], [1]), ([1, 2], [1, 2]), ([4, 3, 2], [2, 3, 4]), ([], [])]:
        result = await conn.execute(
            select(users.c.id).where(users.c.id.in_(ids)).order_by(users.c.id)
        )
        assert result.scalars().all() == expected


async def test_join_without_foreign_key_needs_on_clause(schema: Schema) -> None:
    users = schema.users
    with pytest.raises(ArgumentError, match="pass an ON clause"):
        select(users.c.id).join(select(literal(1).label("x")).subquery())
    messages = Table(
        "messages",
        schema.metadata,
        Column("id", Integer, primary_key=True),
        Column("sender_id", ForeignKey("users.id")),
        Column("recipient_id", ForeignKey("users.id")),
    )
    with pytest.raises(ArgumentError, match=r"2 foreign key paths.*ON clause"):
        select(users.c.id).join(messages)
    joined = select(users.c.name).join(messages, messages.c.sender_id == users.c.id)
    assert "ON messages.sender_id = users.id" in str(joined)


async def test_text_binds_are_typed_from_their_values(conn: AsyncConnection) -> None:
    result = await conn.execute(
        text("SELECT :i AS i, :s AS s, :f AS f, :n AS n"), {"i": 1, "s": "x", "f": 1.5, "n": None}
    )
    assert result.one() == (1, "x", 1.5, None)
    rows = await conn.execute(text("SELECT :i AS i"), {"i": 2**40})
    assert rows.scalar() == 2**40


async def test_text_with_typed_columns(conn: AsyncConnection, schema: Schema) -> None:
    result = await conn.execute(
        text("SELECT id, name FROM users WHERE age > :age ORDER BY id").columns(
            id=schema.users.c.id.type, name=schema.users.c.name.type
        ),
        {"age": 26},
    )
    assert result.all() == [(1, "Alice"), (3, "Carol")]


async def test_missing_named_parameter_is_named(conn: AsyncConnection) -> None:
    with pytest.raises(ArgumentError, match="'x'"):
        await conn.execute(text("SELECT :x AS x"))


async def test_plain_string_is_refused(conn: AsyncConnection) -> None:
    with pytest.raises(ArgumentError, match="text"):
        await conn.execute("SELECT 1")  # type: ignore[arg-type]
