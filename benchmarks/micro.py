"""Microbenchmarks: asyncorm's compiled-statement cache (hit vs miss) and row hydration.

Compile cache: each call builds a new statement, as a request handler does, and compiles
it with ``get_dialect(name).compile(statement)``. A hit finds the statement's shape in the
dialect's cache (the cost is the cache-key walk); a miss clears the cache first, so the
statement is rendered from scratch. The time to build the statement alone is subtracted.

Row hydration: W2 (fetch every row into objects) against an in-memory SQLite database, so
there is no I/O to hide the Python cost. Each implementation's time per row minus the raw
driver's is what making one object from one fetched row costs it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .config import Sizes
from .harness import run_database
from .progress import Progress
from .stats import ratio

__all__ = ["COMPILE_STATEMENTS", "compile_cache", "compile_steps", "hydration", "hydration_steps"]


def _statements() -> dict[str, Callable[[int], Any]]:
    from asyncorm import select, update

    from .impls.asyncorm_impl import User

    return {
        "get by primary key": lambda n: select(User).where(User.id == n),
        "filtered select": lambda n: (
            select(User)
            .where(User.age > n, User.name.startswith("user"))
            .order_by(User.id.desc())
            .limit(10)
        ),
        "update": lambda n: update(User).where(User.id == n).values(age=n),
    }


COMPILE_STATEMENTS = ("get by primary key", "filtered select", "update")
DIALECTS = ("postgresql", "sqlite")


def compile_steps(repetitions: int) -> int:
    return len(DIALECTS) * len(COMPILE_STATEMENTS) * repetitions


def _per_call(step: Callable[[int], object], iterations: int) -> float:
    started = time.perf_counter()
    for n in range(iterations):
        step(n)
    return (time.perf_counter() - started) / iterations


def compile_cache(iterations: int, repetitions: int, progress: Progress) -> dict[str, Any]:
    """Microseconds per compile, hit and miss, per dialect and statement (medians)."""
    from asyncorm._dialects import get_dialect

    results: dict[str, Any] = {}
    builders = _statements()
    for dialect_name in DIALECTS:
        dialect = get_dialect(dialect_name)
        results[dialect_name] = {}
        for label in COMPILE_STATEMENTS:
            build = builders[label]

            def hit(n: int, build: Callable[[int], Any] = build, dialect: Any = dialect) -> object:
                return dialect.compile(build(n))

            def miss(n: int, build: Callable[[int], Any] = build, dialect: Any = dialect) -> object:
                dialect.clear_cache()
                return dialect.compile(build(n))

            try:
                hit(0)  # warm: the mappers are configured, the shape is cached
                build_times, hit_times, miss_times = [], [], []
                for _ in range(repetitions):
                    build_times.append(_per_call(build, iterations))
                    hit_times.append(_per_call(hit, iterations))
                    miss_times.append(_per_call(miss, max(1, iterations // 5)))
                    progress.advance(f"compile cache {dialect_name} {label}")
                base = statistics.median(build_times)
                hit_us = (statistics.median(hit_times) - base) * 1e6
                miss_us = (statistics.median(miss_times) - base) * 1e6
                results[dialect_name][label] = {
                    "status": "ok",
                    "build_us": base * 1e6,
                    "hit_us": hit_us,
                    "miss_us": miss_us,
                    "speedup": miss_us / hit_us if hit_us > 0 else None,
                }
            except Exception as error:
                results[dialect_name][label] = {
                    "status": "FAILED",
                    "reason": f"{type(error).__name__}: {error}",
                }
                progress.advance(f"compile cache {dialect_name} {label}", repetitions)
        dialect.clear_cache()
    return results


def hydration_steps(implementations: list[str], repetitions: int) -> int:
    return (repetitions + 1) * len(implementations)


async def hydration(
    sizes: Sizes,
    implementations: list[str],
    repetitions: int,
    progress: Progress,
    time_limit: float,
) -> dict[str, Any]:
    rows = sizes.hydration
    run = await run_database(
        "sqlite-memory",
        replace(sizes, fetch=rows),
        ["W2"],
        implementations,
        repetitions,
        progress,
        measure_memory=False,
        time_limit=time_limit,
    )
    cells = run.cells["W2"]
    raw = cells.get("raw")
    result: dict[str, Any] = {"rows": rows, "implementations": {}}
    for name, cell in cells.items():
        entry = cell.as_json()
        if cell.ok and cell.median is not None:
            entry["us_per_row"] = cell.median / rows * 1e6
            if raw is not None and raw.ok and raw.median is not None:
                entry["hydration_us_per_row"] = (cell.median - raw.median) / rows * 1e6
                entry["ratio_to_raw"] = ratio(cell, raw)
        result["implementations"][name] = entry
    return result
