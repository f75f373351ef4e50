"""SQL operators as singletons: what they render, how tightly they bind, what negates them."""

from __future__ import annotations

__all__ = ["Operator"]


class Operator:
    """One SQL operator. Compared by identity; part of cache keys as itself."""

    __slots__ = ("associative", "comparison", "name", "negate", "precedence", "sql")

    def __init__(
        self,
        name: str,
        sql: str,
        precedence: int,
        *,
        comparison: bool = False,
        associative: bool = False,
    ) -> None:
        self.name = name
        self.sql = sql
        self.precedence = precedence
        self.comparison = comparison
        self.associative = associative
        self.negate: Operator | None = None

    def __repr__(self) -> str:
        return f"<operator {self.sql}>"


# Precedence: larger binds tighter. Comparisons share one level and are never chained
# without parentheses, since the two databases disagree on some of their relative orders.
OR = Operator("or", "OR", 2, associative=True)
AND = Operator("and", "AND", 3, associative=True)
NOT_PRECEDENCE = 4
COMPARISON_PRECEDENCE = 5

EQ = Operator("eq", "=", 5, comparison=True)
NE = Operator("ne", "!=", 5, comparison=True)
LT = Operator("lt", "<", 5, comparison=True)
LE = Operator("le", "<=", 5, comparison=True)
GT = Operator("gt", ">", 5, comparison=True)
GE = Operator("ge", ">=", 5, comparison=True)
IS = Operator("is", "IS", 5, comparison=True)
IS_NOT = Operator("is_not", "IS NOT", 5, comparison=True)
LIKE = Operator("like", "LIKE", 5, comparison=True)
NOT_LIKE = Operator("not_like", "NOT LIKE", 5, comparison=True)
ILIKE = Operator("ilike", "ILIKE", 5, comparison=True)
NOT_ILIKE = Operator("not_ilike", "NOT ILIKE", 5, comparison=True)
IN = Operator("in", "IN", 5, comparison=True)
NOT_IN = Operator("not_in", "NOT IN", 5, comparison=True)

CONCAT = Operator("concat", "||", 6, associative=True)
ADD = Operator("add", "+", 7, associative=True)
SUB = Operator("sub", "-", 7)
MUL = Operator("mul", "*", 8, associative=True)
DIV = Operator("div", "/", 8)
TRUEDIV = Operator("truediv", "/", 8)
"""``/`` of two integers: the division Python's ``/`` does (``7 / 2`` is 3.5), where SQL's
``/`` of integers would truncate."""
FLOORDIV = Operator("floordiv", "/", 8)
"""``//``: SQL's ``/`` of two integers (which truncates), ``FLOOR(a / b)`` otherwise."""
MOD = Operator("mod", "%", 8)

for _a, _b in [
    (EQ, NE),
    (LT, GE),
    (GT, LE),
    (IS, IS_NOT),
    (LIKE, NOT_LIKE),
    (ILIKE, NOT_ILIKE),
    (IN, NOT_IN),
]:
    _a.negate = _b
    _b.negate = _a
