"""Expressions and statements without a database: immutability, cache keys, coercion."""

from __future__ import annotations

from typing import Any

import pytest

from asyncorm import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from asyncorm._sql.base import coerce_statement
from asyncorm._sql.elements import ColumnElement, ColumnOperators
from asyncorm.exc import ArgumentError

metadata = MetaData()
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20)),
)
addresses = Table(
    "addresses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id")),
)


class Attribute(ColumnOperators):
    """What an ORM attribute looks like to the SQL layer."""

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column

    def __clause_element__(self) -> ColumnElement[Any]:
        return self.column


class Mapped:
    """What a mapped class looks like to the SQL layer (a class with __clause_element__)."""

    __table__ = users
    id = Attribute(users.c.id)
    name = Attribute(users.c.name)

    @classmethod
    def __clause_element__(cls) -> Table:
        return cls.__table__


def key(statement: Any) -> Any:
    return statement._generate_cache_key()[0]


def test_statements_are_immutable() -> None:
    base = select(users.c.id)
    filtered = base.where(users.c.id == 1)
    assert base is not filtered
    assert base._where_criteria == ()
    assert str(base) == "SELECT users.id FROM users"
    ordered = filtered.order_by(users.c.id)
    assert filtered._order_by == ()
    assert len(ordered._order_by) == 1
    values = insert(users).values(name="a")
    more = values.values(id=1)
    assert [c.key for c, _ in values._values or ()] == ["name"]
    assert [c.key for c, _ in more._values or ()] == ["id", "name"]


def test_cache_key_ignores_values_but_not_structure() -> None:
    assert key(select(users).where(users.c.id == 1)) == key(select(users).where(users.c.id == 2))
    assert key(select(users).where(users.c.id == 1)) != key(select(users).where(users.c.id > 1))
    assert key(select(users).limit(1)) == key(select(users).limit(50))
    assert key(select(users.c.id.in_([1]))) == key(select(users.c.id.in_([1, 2])))
    assert key(text("SELECT :x")) == key(text("SELECT :x"))
    assert key(text("SELECT :x")) != key(text("SELECT :y"))
    assert key(select(literal(1))) != key(select(literal("1")))
    anonymous = users.alias()
    assert key(select(anonymous.c.id)) == key(select(users.alias().c.id))
    assert key(select(users.alias("a").c.id)) != key(select(users.alias("b").c.id))
    first, second = users.alias(), users.alias()
    assert key(select(first.c.id, second.c.id)) != key(select(first.c.id, first.c.id))


def test_cache_key_binds_in_traversal_order() -> None:
    statement = select(users.c.id).where(users.c.name == "x", users.c.id.in_([1, 2])).limit(5)
    key_, binds = statement._generate_cache_key()
    assert [bind.value for bind in binds] == ["x", [1, 2], 5]
    assert statement._generate_cache_key()[0] is key_  # memoised


def test_clause_element_protocol() -> None:
    statement = select(Mapped).where(Mapped.id == 5, Mapped.name.in_(["a"]))
    assert statement._raw_columns == (Mapped,)
    assert str(statement) == (
        "SELECT users.id, users.name FROM users WHERE users.id = :id_1 AND users.name IN (:name_1)"
    )
    assert key(statement) == key(select(users).where(users.c.id == 5, users.c.name.in_(["b"])))
    assert str(select(func.count()).select_from(Mapped)) == "SELECT count(*) AS count FROM users"
    assert "users.name DESC" in str(select(Mapped.id).order_by(Mapped.name.desc()))
    assert str(insert(Mapped).values({Mapped.name: "x"})) == (
        "INSERT INTO users (name) VALUES (:name_1)"
    )
    assert str(select(Mapped).filter_by(name="x")).endswith("WHERE users.name = :name_1")


def test_truth_value_of_expressions() -> None:
    with pytest.raises(TypeError, match="and_"):
        bool(users.c.id > 1)
    assert users.c.id == users.c.id
    assert users.c.id != users.c.name
    assert users.c.id in [users.c.name, users.c.id]
    assert {users.c.id: 1}[users.c.id] == 1


def test_operators_render() -> None:
    cases = {
        users.c.id == None: "users.id IS NULL",  # noqa: E711
        users.c.id != None: "users.id IS NOT NULL",  # noqa: E711
        ~(users.c.id == 1): "users.id != :id_1",
        ~users.c.id.in_([1]): "users.id NOT IN (:id_1)",
        users.c.id.in_([1, 2, 3]): "users.id IN (:id_1)",  # plain values: one expanding bind
        users.c.id.in_([1, users.c.id + 1]): "users.id IN (:id_1, users.id + :id_2)",
        ~users.c.name.like("x"): "users.name NOT LIKE :name_1",
        ~and_(users.c.id > 1, users.c.id < 5): "NOT (users.id > :id_1 AND users.id < :id_2)",
        or_(users.c.id == 1, and_(users.c.id == 2, users.c.name == "x")): (
            "users.id = :id_1 OR users.id = :id_2 AND users.name = :name_1"
        ),
        and_(or_(users.c.id == 1, users.c.id == 2), users.c.name == "x"): (
            "(users.id = :id_1 OR users.id = :id_2) AND users.name = :name_1"
        ),
        users.c.name + "x": "users.name || :name_1",
        users.c.id - (users.c.id - 1): "users.id - (users.id - :id_1)",
        users.c.id.is_(True): "users.id IS true",
        users.c.id.label("x"): "users.id",
        users.c.name.startswith(users.c.name): "users.name LIKE users.name || :param_1",
        func.lower(users.c.name).ilike("%a%"): "lower(users.name) ILIKE :param_1",
        users.c.id.op("&")(4): "users.id & :id_1",
    }
    for expression, sql in cases.items():
        assert str(expression) == sql


def test_bad_arguments_say_what_to_do() -> None:
    with pytest.raises(ArgumentError, match="text"):
        select(users).where("id = 1")
    with pytest.raises(ArgumentError, match=r"select\(a, b\)"):
        select([users.c.id])  # type: ignore[list-item]
    with pytest.raises(ArgumentError, match="text"):
        coerce_statement("SELECT 1")
    with pytest.raises(ArgumentError, match="no column"):
        insert(users).values(nope=1)
    with pytest.raises(ArgumentError, match="no parameter"):
        text("SELECT :x").bindparams(y=1)
    with pytest.raises(ArgumentError, match="no column named 'nope'"):
        str(select(users.c.id).order_by("nope"))
    with pytest.raises(ArgumentError, match="nothing to set"):
        str(update(users))


def test_bindparam_takes_the_column_type() -> None:
    expression = users.c.id == bindparam("x")
    assert expression.right.type == Integer()


def test_subquery_columns_are_deduplicated() -> None:
    subquery = select(users.c.id, addresses.c.id).join_from(users, addresses).subquery()
    assert subquery.c.keys() == ["id", "id_1"]
    assert str(select(subquery.c.id_1)) == (
        "SELECT anon_1.id_1 FROM (SELECT users.id, addresses.id AS id_1 FROM users "
        "JOIN addresses ON users.id = addresses.user_id) AS anon_1"
    )
