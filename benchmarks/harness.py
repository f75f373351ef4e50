"""Running the workloads on one database: warm-up, interleaved repetitions, verification,
and W2's peak memory.

Order: for each repetition, for each workload, each implementation in turn (A B C D A B C
D ...), so drift in the machine's speed spreads over all of them. The first round is a
warm-up at full size whose times are thrown away (it fills statement caches, pools and
the mappers' configuration). Before every timed call the tables are reset and seeded (for
read-only workloads once per repetition), the workload's untimed setup is made (``around``)
and the garbage collector is run; after it the result is verified. A call that raises or
whose result is wrong makes its cell FAILED and the cell is not run again; the other cells
go on.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any

from .config import Sizes
from .databases import Admin, open_database
from .impls import Implementation, NotApplicable, create
from .progress import Progress
from .stats import Cell
from .workloads import WORKLOAD_BY_KEY, Workload

__all__ = ["DatabaseRun", "run_database", "steps_for"]


@dataclass
class DatabaseRun:
    database: str
    version: str = ""
    error: str = ""
    """Set when the database itself could not be used; every cell is then FAILED."""
    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)
    """workload key -> implementation name -> cell."""
    memory: dict[str, dict[str, Any]] = field(default_factory=dict)
    """implementation name -> W2's peak and retained bytes (or the failure)."""
    versions: dict[str, str] = field(default_factory=dict)


def steps_for(
    workloads: list[str], implementations: list[str], repetitions: int, memory: bool
) -> int:
    """How many progress steps ``run_database`` takes."""
    steps = (repetitions + 1) * len(workloads) * len(implementations)
    return steps + (len(implementations) if memory else 0)


def _describe(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return "timed out"
    text = f"{type(error).__name__}: {error}".replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


async def _timed(
    workload: Workload, impl: Implementation, data: Any, time_limit: float
) -> tuple[float, Any]:
    async with workload.around(impl, data) as run_input:
        gc.collect()
        started = time.perf_counter()
        result = await asyncio.wait_for(workload.run(impl, run_input), time_limit)
        return time.perf_counter() - started, result


async def run_database(
    name: str,
    sizes: Sizes,
    workload_keys: list[str],
    implementation_names: list[str],
    repetitions: int,
    progress: Progress,
    *,
    measure_memory: bool = True,
    time_limit: float = 300.0,
) -> DatabaseRun:
    run = DatabaseRun(name)
    run.cells = {key: {impl: Cell() for impl in implementation_names} for key in workload_keys}
    try:
        async with open_database(name) as (database, admin):
            run.version = await admin.version()
            impls: dict[str, Implementation] = {}
            for impl_name in implementation_names:
                try:
                    impl = create(impl_name)
                    await impl.open(database, sizes.pool_size)
                    impls[impl_name] = impl
                    run.versions[impl_name] = impl.version()
                except NotApplicable as reason:
                    for cells in run.cells.values():
                        cells[impl_name].status, cells[impl_name].reason = "n/a", str(reason)
                except Exception as error:
                    for cells in run.cells.values():
                        cells[impl_name].fail(f"could not open: {_describe(error)}")
            try:
                await _repetitions(
                    run, admin, impls, sizes, workload_keys, repetitions, progress, time_limit
                )
                if measure_memory and "W2" in workload_keys:
                    await _memory(run, admin, impls, sizes, progress, time_limit)
            finally:
                for impl in impls.values():
                    try:
                        await impl.close()
                    except Exception as error:
                        progress.log(f"{name}: closing {impl.name} failed: {_describe(error)}")
    except Exception as error:
        run.error = _describe(error)
        for cells in run.cells.values():
            for cell in cells.values():
                cell.fail(f"{name} unavailable: {run.error}")
        progress.log(f"{name}: {run.error}")
    return run


async def _repetitions(
    run: DatabaseRun,
    admin: Admin,
    impls: dict[str, Implementation],
    sizes: Sizes,
    workload_keys: list[str],
    repetitions: int,
    progress: Progress,
    time_limit: float,
) -> None:
    workloads = [WORKLOAD_BY_KEY[key](sizes) for key in workload_keys]
    for repetition in range(repetitions + 1):
        warm_up = repetition == 0
        round_label = "warm-up" if warm_up else f"rep {repetition}/{repetitions}"
        for workload in workloads:
            data: Any = None
            prepared = False
            for impl_name, cell in run.cells[workload.key].items():
                label = f"{run.database} {round_label} {workload.key} {impl_name}"
                impl = impls.get(impl_name)
                if impl is None or cell.status != "ok":
                    progress.advance(label)
                    continue
                try:
                    if workload.mutates or not prepared:
                        data = await workload.prepare(admin)
                        prepared = True
                except Exception as error:
                    cell.fail(f"preparing the tables failed: {_describe(error)}")
                    progress.advance(label)
                    continue
                result: Any = None
                try:
                    elapsed, result = await _timed(workload, impl, data, time_limit)
                    await workload.verify(admin, impl, data, result)
                except NotApplicable as reason:
                    cell.status, cell.reason = "n/a", str(reason)
                except Exception as error:
                    cell.fail(_describe(error))
                    progress.log(f"FAILED {label}: {cell.reason}")
                else:
                    if not warm_up:
                        cell.times.append(elapsed)
                result = None  # let the objects go before the next timed call
                progress.advance(label)


async def _memory(
    run: DatabaseRun,
    admin: Admin,
    impls: dict[str, Implementation],
    sizes: Sizes,
    progress: Progress,
    time_limit: float,
) -> None:
    """W2 once more per implementation under tracemalloc: the peak of Python allocations
    during the fetch (results kept alive), and what is still held when it returns."""
    workload = WORKLOAD_BY_KEY["W2"](sizes)
    data = await workload.prepare(admin)
    for impl_name, impl in impls.items():
        label = f"{run.database} memory W2 {impl_name}"
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            result = await asyncio.wait_for(workload.run(impl, data), time_limit)
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            await workload.verify(admin, impl, data, result)
            run.memory[impl_name] = {
                "status": "ok",
                "peak_bytes": peak - before,
                "retained_bytes": current - before,
                "rows": data,
            }
        except NotApplicable as reason:
            run.memory[impl_name] = {"status": "n/a", "reason": str(reason)}
        except Exception as error:
            run.memory[impl_name] = {"status": "FAILED", "reason": _describe(error)}
        finally:
            if tracemalloc.is_tracing():
                tracemalloc.stop()
            result = None
        progress.advance(label)
