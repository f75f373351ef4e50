"""Profile one workload of one implementation, only its timed part:

    python -m benchmarks.profiling W7 --db postgresql [--implementation asyncorm] [-n 5]
    python -m benchmarks.profiling W2 --db sqlite --tree        # pyinstrument's call tree
    python -m benchmarks.profiling W2 --db sqlite --cprofile    # deterministic, with counts

The tables are prepared (untimed) exactly as in the suite, one warm-up run is made, then
the workload runs ``-n`` times with the profiler on only around the call. The default
profiler is pyinstrument (sampling, so it barely distorts; ``pip install pyinstrument``),
reporting the functions with the most self time as a percentage of the workload's wall
time; time spent waiting for the database shows up as ``[await]``/``poll``. ``--cprofile``
gives call counts, but its per-call overhead inflates small functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import IMPLEMENTATIONS, WORKLOADS, Sizes
from .databases import open_database
from .impls import create
from .machine import pin_to_one_cpu
from .workloads import WORKLOAD_BY_KEY

__all__ = ["main"]


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return Path(filename).name if filename.startswith("/") else filename


def hot_functions(stats: pstats.Stats, total: float, limit: int) -> list[str]:
    """``self% cum% calls file:line(function)`` lines, by self time."""
    entries = stats.stats  # type: ignore[attr-defined]
    rows = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:limit]
    lines = [f"{'self%':>6} {'cum%':>6} {'calls':>9}  function"]
    for (filename, line, function), (_, calls, tottime, cumtime, _) in rows:
        where = f"{_short(filename)}:{line}({function})"
        lines.append(
            f"{100 * tottime / total:6.1f} {100 * cumtime / total:6.1f} {calls:9d}  {where}"
        )
    return lines


AWAIT_FRAME_IDENTIFIER = "[await]"


def flat_profile(root: Any, limit: int) -> list[str]:
    """pyinstrument's tree summed per function: ``self% cum% file:line(function)``, by self
    time (CPU in the function itself), plus the share spent awaiting I/O."""
    self_time: dict[str, float] = defaultdict(float)
    cumulative: dict[str, float] = defaultdict(float)
    awaited = 0.0

    def walk(frame: Any, on_stack: frozenset[str]) -> None:
        nonlocal awaited
        where = f"{_short(frame.file_path or '')}:{frame.line_no}({frame.function})"
        real = [child for child in frame.children if not child.is_synthetic]
        waits = sum(c.time for c in frame.children if c.identifier == AWAIT_FRAME_IDENTIFIER)
        awaited += waits
        self_time[where] += frame.time - sum(c.time for c in real) - waits
        if where not in on_stack:  # recursion: count the outermost call only
            cumulative[where] += frame.time
        for child in real:
            walk(child, on_stack | {where})

    walk(root, frozenset())
    total = max(root.time, 1e-9)
    ranked = sorted(self_time.items(), key=lambda item: item[1], reverse=True)[:limit]
    lines = [
        f"{'self%':>6} {'cum%':>6}  function",
        f"{100 * awaited / total:6.1f} {'':>6}  [await]",
    ]
    for where, seconds in ranked:
        lines.append(
            f"{100 * seconds / total:6.1f} {100 * cumulative[where] / total:6.1f}  {where}"
        )
    return lines


async def profile(options: argparse.Namespace) -> None:
    sizes = Sizes().scaled(0.1) if options.quick else Sizes()
    workload = WORKLOAD_BY_KEY[options.workload](sizes)
    async with open_database(options.db) as (database, admin):
        impl = create(options.implementation)
        await impl.open(database, sizes.pool_size)
        try:
            data = await workload.prepare(admin)
            async with workload.around(impl, data) as run_input:
                result = await workload.run(impl, run_input)  # warm-up
            await workload.verify(admin, impl, data, result)
            profiler: Any
            if options.cprofile:
                profiler = cProfile.Profile()
            else:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0002, async_mode="enabled")
            elapsed = 0.0
            for _ in range(options.runs):
                data = await workload.prepare(admin)
                async with workload.around(impl, data) as run_input:
                    started = time.perf_counter()
                    if options.cprofile:
                        profiler.enable()
                        result = await workload.run(impl, run_input)
                        profiler.disable()
                    else:
                        profiler.start()
                        result = await workload.run(impl, run_input)
                        profiler.stop()
                    elapsed += time.perf_counter() - started
                await workload.verify(admin, impl, data, result)
        finally:
            await impl.close()
    print(
        f"{options.workload} {options.implementation} on {options.db}: {options.runs} runs, "
        f"{elapsed / options.runs * 1000:.1f} ms each under the profiler\n"
    )
    if options.tree:
        print(profiler.output_text(unicode=True, color=False))
    elif not options.cprofile:
        print("\n".join(flat_profile(profiler.last_session.root_frame(), options.top)))
    if not options.cprofile:
        return
    stats = pstats.Stats(profiler)
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    print("\n".join(hot_functions(stats, total, options.top)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling")
    parser.add_argument("workload", choices=[w.key for w in WORKLOADS])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--implementation", "-i", choices=IMPLEMENTATIONS, default="asyncorm")
    parser.add_argument("--runs", "-n", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--quick", action="store_true", help="1/10 sizes")
    parser.add_argument("--cprofile", action="store_true", help="cProfile instead of pyinstrument")
    parser.add_argument("--tree", action="store_true", help="pyinstrument's call tree, not flat")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    options = parser.parse_args(argv)
    if not options.no_pin:
        pin_to_one_cpu()  # as the suite does, so hop costs match its runs
    asyncio.run(profile(options))


if __name__ == "__main__":
    main()
