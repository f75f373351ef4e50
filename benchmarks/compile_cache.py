"""Compile-cache microbenchmark: a representative SELECT compiled with and without the cache.

    python benchmarks/compile_cache.py

Each iteration builds a new statement (as a request handler would), then compiles and binds
it. "hit" finds the shape in the dialect's cache; "miss" clears the cache first, so the
statement tree is walked and rendered every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from asyncorm import Column, ForeignKey, Integer, MetaData, String, Table, func, select
from asyncorm._dialects import get_dialect

metadata = MetaData()
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50)),
    Column("age", Integer),
)
addresses = Table(
    "addresses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id")),
    Column("email", String(100)),
)


def build(n: int) -> object:
    return (
        select(users.c.id, users.c.name, func.count(addresses.c.id).label("n"))
        .join(addresses)
        .where(users.c.age > n, users.c.name.startswith("a"), users.c.id.in_([n, n + 1, n + 2]))
        .group_by(users.c.id, users.c.name)
        .order_by(users.c.name.desc())
        .limit(10)
    )


def timed(label: str, step: Callable[[int], object], iterations: int) -> float:
    step(0)
    started = time.perf_counter()
    for n in range(iterations):
        step(n)
    per_call = (time.perf_counter() - started) / iterations * 1e6
    print(f"  {label:<28} {per_call:8.2f} µs")
    return per_call


def main(iterations: int = 20_000) -> None:
    for name in ("postgresql", "sqlite"):
        dialect = get_dialect(name)

        def hit(n: int, dialect: object = dialect) -> object:
            statement = build(n)
            return dialect.compile(statement).bind(statement, None)  # type: ignore[attr-defined]

        def miss(n: int, dialect: object = dialect) -> object:
            statement = build(n)
            dialect.clear_cache()  # type: ignore[attr-defined]
            return dialect.compile(statement).bind(statement, None)  # type: ignore[attr-defined]

        def construct_only(n: int) -> object:
            return build(n)

        print(f"{name}:")
        base = timed("build statement only", construct_only, iterations)
        cached = timed("build + compile (hit) + bind", hit, iterations)
        uncached = timed("build + compile (miss) + bind", miss, iterations // 4)
        print(
            f"  compile+bind: hit {cached - base:.2f} µs vs miss {uncached - base:.2f} µs "
            f"-> {(uncached - base) / (cached - base):.1f}x faster with the cache"
        )


if __name__ == "__main__":
    main()
