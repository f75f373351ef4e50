"""Result, Row and friends, built from keys and plain tuples (no database needed)."""

from __future__ import annotations

import pickle
from decimal import Decimal
from typing import Any

import pytest

from asyncorm import MappingResult, Result, Row, RowMapping, ScalarResult
from asyncorm.exc import (
    InvalidRequestError,
    MultipleResultsFound,
    NoResultFound,
    ResourceClosedError,
)

ROWS = [(1, "ann", 10), (2, "bob", 20), (3, "cy", 30)]


def result(rows: list[tuple[Any, ...]] | None = None) -> Result[Any]:
    return Result(["id", "name", "score"], ROWS if rows is None else rows)


def test_row_is_a_tuple_with_labels() -> None:
    row = result().first()
    assert isinstance(row, Row)
    assert isinstance(row, tuple)
    assert row == (1, "ann", 10)
    assert row[1] == "ann"
    assert row[-1] == 10
    assert row[:2] == (1, "ann")
    ident, name, score = row
    assert (ident, name, score) == (1, "ann", 10)
    assert row.id == 1
    assert row.name == "ann"
    assert row._fields == ("id", "name", "score")
    assert row._asdict() == {"id": 1, "name": "ann", "score": 10}
    assert row._mapping["score"] == 10
    assert row._t == (1, "ann", 10)
    assert hash(row) == hash((1, "ann", 10))
    assert repr(row) == "(1, 'ann', 10)"


def test_row_unknown_attribute_names_columns() -> None:
    row = result().first()
    with pytest.raises(AttributeError, match="id, name, score"):
        _ = row.nope
    assert getattr(row, "nope", None) is None
    assert not hasattr(row, "nope")


def test_row_ambiguous_and_odd_labels() -> None:
    row = Result(["id", "id", "count(*)", "_private", "count"], [(1, 2, 3, 4, 5)]).one()
    with pytest.raises(AttributeError, match="ambiguous"):
        _ = row.id
    with pytest.raises(InvalidRequestError, match="ambiguous"):
        _ = row._mapping["id"]
    assert row._mapping["count(*)"] == 3
    assert row._mapping["_private"] == 4
    assert row.count == 5  # a label shadows tuple.count on that row


def test_row_pickles() -> None:
    row = result().first()
    again = pickle.loads(pickle.dumps(row))
    assert again == row
    assert again.name == "ann"


def test_row_mapping() -> None:
    mapping = result().mappings().first()
    assert isinstance(mapping, RowMapping)
    assert dict(mapping) == {"id": 1, "name": "ann", "score": 10}
    assert list(mapping) == ["id", "name", "score"]
    assert len(mapping) == 3
    assert "name" in mapping
    assert "nope" not in mapping
    assert mapping == {"id": 1, "name": "ann", "score": 10}
    with pytest.raises(KeyError):
        _ = mapping["nope"]

    class Col:
        key = "name"

    assert mapping[Col()] == "ann"


def test_iteration_and_all() -> None:
    assert list(result()) == ROWS
    res = result()
    assert res.all() == ROWS
    assert res.all() == []  # exhausted, not closed


def test_a_loop_hands_out_each_row_once_whatever_else_reads() -> None:
    """Rows are lent to a loop a chunk at a time; what it has not reached goes back."""
    rows = [(i, f"n{i}", i) for i in range(1, 601)]
    res = Result(["id", "name", "score"], rows)
    for row in res:
        first = row
        break
    assert first == rows[0]
    assert res.all() == rows[1:]  # a break loses nothing

    res = Result(["id", "name", "score"], rows)
    loop = iter(res)
    assert next(loop) == rows[0]
    assert res.fetchone() == rows[1]  # a read inside the loop takes the next row
    assert res.fetchmany(2) == rows[2:4]
    assert next(loop) == rows[4]  # and the loop goes on after it
    other = iter(res.scalars())  # another view of the same rows
    assert next(other) == 6
    assert list(loop) == rows[6:]
    assert list(other) == []

    res = Result(["id", "name", "score"], rows)
    seen = []
    with pytest.raises(ResourceClosedError):
        for row in res:
            seen.append(row)
            if len(seen) == 3:
                res.close()  # the loop stops at its next row
    assert seen == rows[:3]


def test_a_unique_loop_hands_out_each_row_once() -> None:
    res = Result(["id"], [(1,), (1,), (2,), (2,), (3,), (1,)]).unique()
    loop = iter(res)
    assert next(loop) == (1,)
    assert res.fetchone() == (2,)
    assert list(loop) == [(3,)]


def test_fetch_methods() -> None:
    res = result()
    assert res.fetchone() == (1, "ann", 10)
    assert res.fetchmany(1) == [(2, "bob", 20)]
    assert res.fetchall() == [(3, "cy", 30)]
    assert res.fetchone() is None
    assert res.fetchmany(5) == []


def test_partitions() -> None:
    assert [len(p) for p in result().partitions(2)] == [2, 1]
    assert [len(p) for p in result().partitions()] == [3]
    assert list(result([]).partitions(2)) == []


def test_first_closes() -> None:
    res = result()
    assert res.first() == (1, "ann", 10)
    with pytest.raises(ResourceClosedError):
        res.all()
    assert result([]).first() is None


def test_one_and_one_or_none() -> None:
    assert result([(1, "a", 2)]).one() == (1, "a", 2)
    with pytest.raises(NoResultFound):
        result([]).one()
    with pytest.raises(MultipleResultsFound):
        result().one()
    assert result([]).one_or_none() is None
    assert result([(1, "a", 2)]).one_or_none() == (1, "a", 2)
    with pytest.raises(MultipleResultsFound):
        result().one_or_none()


def test_scalar_family() -> None:
    assert result().scalar() == 1
    assert result([]).scalar() is None
    assert result([(7, "x", 0)]).scalar_one() == 7
    with pytest.raises(NoResultFound):
        result([]).scalar_one()
    with pytest.raises(MultipleResultsFound):
        result().scalar_one()
    assert result([]).scalar_one_or_none() is None
    with pytest.raises(MultipleResultsFound):
        result().scalar_one_or_none()


def test_scalars_result() -> None:
    scalars = result().scalars()
    assert isinstance(scalars, ScalarResult)
    assert scalars.all() == [1, 2, 3]
    assert result().scalars(1).all() == ["ann", "bob", "cy"]
    assert result().scalars("score").all() == [10, 20, 30]
    assert list(result().scalars()) == [1, 2, 3]
    assert result().scalars().first() == 1
    assert result().scalars().fetchmany(2) == [1, 2]
    assert list(result().scalars().partitions(2)) == [[1, 2], [3]]
    assert result([(5, "x", 1)]).scalars().one() == 5
    assert result([]).scalars().one_or_none() is None
    with pytest.raises(InvalidRequestError, match="nope"):
        result().scalars("nope")


def test_views_share_one_cursor() -> None:
    res = result()
    assert res.fetchone() == (1, "ann", 10)
    assert res.scalars().fetchone() == 2
    assert res.mappings().all() == [{"id": 3, "name": "cy", "score": 30}]


def test_mappings_result() -> None:
    mappings = result().mappings()
    assert isinstance(mappings, MappingResult)
    assert mappings.keys() == ["id", "name", "score"]
    assert [m["name"] for m in mappings] == ["ann", "bob", "cy"]
    assert result([]).mappings().one_or_none() is None


def test_keys_and_rowcount() -> None:
    res = result()
    assert res.keys() == ["id", "name", "score"]
    assert res.keys() == ("id", "name", "score")
    assert "name" in list(res.keys())
    assert res.rowcount == 3
    assert Result(["x"], [], rowcount=7).rowcount == 7


def test_unique() -> None:
    rows = [(1, "a"), (1, "a"), (2, "b"), (1, "a")]
    assert Result(["id", "n"], rows).unique().all() == [(1, "a"), (2, "b")]
    assert Result(["id", "n"], rows).unique().scalars().all() == [1, 2]
    assert Result(["id", "n"], rows).scalars().unique().all() == [1, 2]
    assert Result(["id", "n"], rows).unique().fetchmany(2) == [(1, "a"), (2, "b")]
    by_name = Result(["id", "n"], [(1, "a"), (2, "a")]).unique(lambda row: row.n)
    assert by_name.all() == [(1, "a")]


def test_unique_with_unhashable_values() -> None:
    doc = {"a": 1}
    rows = [(doc,), (doc,), ({"a": 1},)]
    # Unhashable values are told apart by identity.
    assert len(Result(["doc"], rows).unique().all()) == 2


def test_unique_entities_flag() -> None:
    class Entity:
        __hash__ = None  # type: ignore[assignment]

        def __eq__(self, other: object) -> bool:
            return True

    a, b = Entity(), Entity()
    res = Result(["Entity"], [(a,), (a,), (b,)], _unique_entities=True)
    assert [row[0] for row in res.all()] == [a, b]
    res = Result(["Entity"], [(a,), (b,), (a,)], _unique_entities=True)
    assert res.scalars().all() == [a, b]


def test_result_of_objects() -> None:
    objects = [object(), object()]
    res = Result(["Thing"], [(o,) for o in objects])
    assert res.scalars().all() == objects


def test_result_without_rows() -> None:
    res = Result([], None, rowcount=4)
    assert res.rowcount == 4
    assert not res.returns_rows
    with pytest.raises(ResourceClosedError, match="does not return rows"):
        res.all()
    with pytest.raises(ResourceClosedError):
        res.scalars()
    with pytest.raises(ResourceClosedError):
        res.first()


def test_close() -> None:
    res = result()
    res.close()
    with pytest.raises(ResourceClosedError):
        res.fetchone()


def test_processors_applied_on_read() -> None:
    calls: list[Any] = []

    def to_decimal(value: Any) -> Any:
        calls.append(value)
        return None if value is None else Decimal(value)

    res = Result._from_driver(("id", "price"), [(1, "1.50"), (2, None)], (None, to_decimal), 2)
    assert calls == []  # nothing converted until read
    assert res.all() == [(1, Decimal("1.50")), (2, None)]
    res = Result._from_driver(("id", "price"), [(1, "2.5")], (None, to_decimal), 1)
    assert res.scalars(1).all() == [Decimal("2.5")]
    res = Result._from_driver(("id", "price"), [(1, "2.5")], (None, to_decimal), 1)
    assert res.scalars(0).all() == [1]
    res = Result._from_driver(("id", "price"), [(1, "2.5")], (None, to_decimal), 1)
    assert res._plain_rows() == [(1, Decimal("2.5"))]
    assert type(res._plain_rows()) is list


def test_plain_rows_without_processors_are_tuples() -> None:
    res = Result._from_driver(("a",), [[1], [2]], None, 2)
    assert res._plain_rows() == [(1,), (2,)]
