"""Run the benchmark suite of issue 7: ``python -m benchmarks.run [--quick] [--db sqlite]``.

Runs every workload on SQLite (a temporary file) and PostgreSQL (a database it creates on
the server of ``ASYNCORM_BENCH_POSTGRES_URL`` and drops afterwards) for asyncorm,
SQLAlchemy's async ORM, the raw driver and the raw driver with plain objects (and, with
``--with-tortoise``, Tortoise ORM); then the compile-cache and row-hydration
microbenchmarks. Writes ``latest.json``, ``latest.md`` and ``ratios.png`` to
``benchmarks/results/`` (``benchmarks/results/with-tortoise/`` with Tortoise, or
``--output-dir``) and prints the table. Exits with status 1 if any cell FAILED.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    # Import the package from the repository root, not this directory (whose module names
    # must not shadow others').
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
    __package__ = "benchmarks"

from benchmarks.config import DEFAULT_IMPLEMENTATIONS, IMPLEMENTATIONS, WORKLOADS, Sizes
from benchmarks.harness import DatabaseRun, run_database, steps_for
from benchmarks.machine import machine_info, pin_to_one_cpu, update_database_versions
from benchmarks.micro import compile_cache, compile_steps, hydration, hydration_steps
from benchmarks.progress import Progress
from benchmarks.report import build_report, render_markdown, update_readme

__all__ = ["main", "run_suite"]

DATABASES = ("postgresql", "sqlite")
RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent.parent / "README.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="smoke mode: 1/10 sizes, 1 repetition")
    parser.add_argument(
        "--repetitions", "-r", type=int, help="timed repetitions (default 7; 1 with --quick)"
    )
    parser.add_argument(
        "--db", action="append", choices=DATABASES, help="only this database (repeatable)"
    )
    parser.add_argument(
        "--workload",
        "-w",
        action="append",
        choices=[w.key for w in WORKLOADS],
        help="only this workload (repeatable)",
    )
    parser.add_argument(
        "--implementation",
        "-i",
        action="append",
        choices=IMPLEMENTATIONS,
        help="only this implementation (repeatable)",
    )
    parser.add_argument(
        "--with-tortoise",
        action="store_true",
        help="interleave Tortoise ORM too (results go to benchmarks/results/with-tortoise/)",
    )
    parser.add_argument("--no-micro", action="store_true", help="skip the microbenchmarks")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the process to one CPU (SQLite hop costs then vary by thread placement)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw ratios.png")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per timed call before it FAILS"
    )
    parser.add_argument("--output-dir", type=Path, help="where latest.* go")
    options = parser.parse_args(argv)
    if options.output_dir is None:
        options.output_dir = RESULTS / "with-tortoise" if options.with_tortoise else RESULTS
    return options


def implementations_of(options: argparse.Namespace) -> list[str]:
    """``-i`` as given, else the default set (plus Tortoise with ``--with-tortoise``), in
    the interleaving order."""
    chosen = set(options.implementation or DEFAULT_IMPLEMENTATIONS)
    if options.with_tortoise:
        chosen.add("tortoise")
    return [name for name in IMPLEMENTATIONS if name in chosen]


async def run_suite(options: argparse.Namespace) -> dict[str, Any]:
    sizes = Sizes().scaled(0.1) if options.quick else Sizes()
    repetitions = options.repetitions or (1 if options.quick else 7)
    databases = options.db or list(DATABASES)
    workloads = options.workload or [w.key for w in WORKLOADS]
    implementations = implementations_of(options)
    micro_repetitions = max(repetitions, 3)
    total = len(databases) * steps_for(
        workloads, implementations, repetitions, memory="W2" in workloads
    )
    if not options.no_micro:
        total += compile_steps(micro_repetitions) + hydration_steps(implementations, repetitions)
    progress = Progress(total)
    placement = "not pinned (--no-pin)" if options.no_pin else pin_to_one_cpu()
    machine = machine_info(placement=placement)

    runs: list[DatabaseRun] = []
    for database in databases:
        runs.append(
            await run_database(
                database,
                sizes,
                workloads,
                implementations,
                repetitions,
                progress,
                time_limit=options.timeout,
            )
        )
    micro: dict[str, Any] = {}
    if not options.no_micro:
        micro["compile_cache"] = compile_cache(
            sizes.compile_iterations, micro_repetitions, progress
        )
        micro["hydration"] = await hydration(
            sizes, implementations, repetitions, progress, options.timeout
        )
    progress.finish()

    update_database_versions(machine, {run.database: run.version for run in runs if run.version})
    return build_report(runs, micro, machine, sizes, repetitions, options.quick, implementations)


def write_outputs(report: dict[str, Any], directory: Path, chart: bool) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    chart_name: str | None = None
    if chart:
        from benchmarks.chart import write_chart

        write_chart(report, directory / "ratios.png")
        chart_name = "ratios.png"
    markdown = render_markdown(report, chart_name)
    (directory / "latest.md").write_text(markdown)
    return markdown


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    report = asyncio.run(run_suite(options))
    markdown = write_outputs(report, options.output_dir, chart=not options.no_chart)
    complete = not (
        options.quick
        or options.db
        or options.workload
        or options.implementation
        or options.with_tortoise
    )
    if complete and options.output_dir.resolve() == RESULTS and update_readme(README, report):
        print("updated the summary in README.md")  # the README shows the committed results
    print()
    print(markdown)
    print(
        f"wrote {options.output_dir}/latest.json, latest.md"
        + ("" if options.no_chart else ", ratios.png")
    )
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
