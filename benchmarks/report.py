"""Turning a run into ``latest.json`` and the Markdown table (also printed on the terminal).

The Markdown is rendered from the JSON alone, so ``python -m benchmarks.report`` re-renders
``latest.md`` from ``latest.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .config import IMPLEMENTATIONS, MEMORY_TARGET, TARGETS, WORKLOADS, Sizes
from .harness import DatabaseRun
from .stats import Cell, ratio

__all__ = [
    "README_END",
    "README_START",
    "build_report",
    "failures",
    "render_markdown",
    "render_summary",
    "update_readme",
]

DATABASE_TITLES = {"postgresql": "PostgreSQL", "sqlite": "SQLite (file, WAL)"}


def _ratios(cells: dict[str, Cell]) -> dict[str, float | None]:
    pairs = {
        "asyncorm/raw": ("asyncorm", "raw"),
        "sqlalchemy/raw": ("sqlalchemy", "raw"),
        "asyncorm/sqlalchemy": ("asyncorm", "sqlalchemy"),
        "raw_objects/raw": ("raw_objects", "raw"),
    }
    return {label: ratio(cells.get(a), cells.get(b)) for label, (a, b) in pairs.items()}


def _database_json(run: DatabaseRun) -> dict[str, Any]:
    info = {w.key: w for w in WORKLOADS}
    workloads: dict[str, Any] = {}
    for key, cells in run.cells.items():
        ratios = _ratios(cells)
        target = TARGETS[key].for_database(run.database)
        measured = ratios["asyncorm/raw"]
        versus_sqlalchemy = ratios["asyncorm/sqlalchemy"]
        workloads[key] = {
            "title": info[key].title,
            "description": info[key].description,
            "implementations": {name: cell.as_json() for name, cell in cells.items()},
            "ratios": ratios,
            "target_vs_raw": target,
            "meets_target": None if measured is None else measured <= target,
            "faster_than_sqlalchemy": None if versus_sqlalchemy is None else versus_sqlalchemy < 1,
        }
    memory: dict[str, Any] = dict(run.memory)
    ours, floor = run.memory.get("asyncorm", {}), run.memory.get("raw_objects", {})
    if ours.get("status") == "ok" and floor.get("status") == "ok" and floor["peak_bytes"] > 0:
        measured = ours["peak_bytes"] / floor["peak_bytes"]
        memory["asyncorm/raw_objects"] = measured
        memory["target"] = MEMORY_TARGET
        memory["meets_target"] = measured <= MEMORY_TARGET
    return {"version": run.version, "error": run.error, "workloads": workloads, "memory": memory}


def build_report(
    runs: list[DatabaseRun],
    micro: dict[str, Any],
    machine: dict[str, Any],
    sizes: Sizes,
    repetitions: int,
    quick: bool,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "machine": machine,
        "config": {
            "quick": quick,
            "repetitions": repetitions,
            "sizes": asdict(sizes),
            "implementations": list(IMPLEMENTATIONS),
        },
        "databases": {run.database: _database_json(run) for run in runs},
        "micro": micro,
    }
    report["failures"] = failures(report)
    return report


def failures(report: dict[str, Any]) -> list[str]:
    """Every FAILED cell in the report, as ``"where: why"``."""
    found = []
    for database, data in report["databases"].items():
        for key, workload in data["workloads"].items():
            for name, cell in workload["implementations"].items():
                if cell["status"] == "FAILED":
                    found.append(f"{database} {key} {name}: {cell.get('reason', '')}")
        for name, entry in data["memory"].items():
            if isinstance(entry, dict) and entry.get("status") == "FAILED":
                found.append(f"{database} W2 memory {name}: {entry.get('reason', '')}")
    micro = report.get("micro", {})
    for dialect, statements in micro.get("compile_cache", {}).items():
        for label, entry in statements.items():
            if entry.get("status") == "FAILED":
                found.append(f"compile cache {dialect} {label}: {entry.get('reason', '')}")
    for name, entry in micro.get("hydration", {}).get("implementations", {}).items():
        if entry.get("status") == "FAILED":
            found.append(f"hydration {name}: {entry.get('reason', '')}")
    return found


# --- Markdown ---------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def _time_cell(cell: dict[str, Any]) -> str:
    if cell["status"] == "FAILED":
        return "**FAILED**"
    if cell["status"] == "n/a":
        return "n/a"
    return f"{_ms(cell['median_s'])} ({_ms(cell['min_s'])}-{_ms(cell['max_s'])})"


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def _verdict(value: float | None, target: float) -> str:
    if value is None:
        return "-"
    mark = "✓" if value <= target else "✗"
    return f"{_ratio(value)} {mark} (≤ {target:g})"


def _mb(value: int) -> str:
    return f"{value / 1e6:.2f}"


def _database_markdown(database: str, data: dict[str, Any]) -> list[str]:
    title = DATABASE_TITLES.get(database, database)
    lines = [f"## {title} {data['version']}".rstrip(), ""]
    if data.get("error"):
        lines += [f"Not run: {data['error']}", ""]
    lines += [
        "Median ms over the repetitions (min-max). Ratios are medians of per-repetition "
        "ratios; the target is issue 7's ceiling for asyncorm/raw.",
        "",
        "| workload | asyncorm | sqlalchemy | raw | raw objects "
        "| asyncorm/raw (target) | sqlalchemy/raw | asyncorm/sqlalchemy |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key, workload in data["workloads"].items():
        cells = workload["implementations"]
        ratios = workload["ratios"]
        times = " | ".join(
            _time_cell(cells[name]) if name in cells else "-" for name in IMPLEMENTATIONS
        )
        versus = ratios["asyncorm/sqlalchemy"]
        versus_text = _ratio(versus) + ("" if versus is None else " ✓" if versus < 1 else " ✗")
        lines.append(
            f"| {key} {workload['title']} | {times} "
            f"| {_verdict(ratios['asyncorm/raw'], workload['target_vs_raw'])} "
            f"| {_ratio(ratios['sqlalchemy/raw'])} | {versus_text} |"
        )
    memory = data["memory"]
    entries = [(name, memory[name]) for name in IMPLEMENTATIONS if name in memory]
    if entries:
        rows = next((e["rows"] for _, e in entries if e.get("status") == "ok"), None)
        lines += [
            "",
            f"W2 memory (tracemalloc, fetching {rows} rows; peak during the fetch, and what "
            "the returned objects still hold):",
            "",
            "| implementation | peak MB | retained MB | peak bytes/row |",
            "|---|--:|--:|--:|",
        ]
        for name, entry in entries:
            if entry.get("status") != "ok":
                lines.append(f"| {name} | **FAILED** | | |")
                continue
            per_row = entry["peak_bytes"] / max(entry["rows"], 1)
            lines.append(
                f"| {name} | {_mb(entry['peak_bytes'])} | {_mb(entry['retained_bytes'])} "
                f"| {per_row:.0f} |"
            )
        if "asyncorm/raw_objects" in memory:
            lines += [
                "",
                "asyncorm peak / raw objects peak: "
                + _verdict(memory["asyncorm/raw_objects"], memory["target"]),
            ]
    return [*lines, ""]


def _micro_markdown(micro: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    compile_cache = micro.get("compile_cache")
    if compile_cache:
        lines += [
            "## Compile cache (asyncorm)",
            "",
            "µs per `dialect.compile(statement)` of a freshly built statement (building it is "
            "not counted); a miss clears the dialect's cache first.",
            "",
            "| dialect | statement | hit µs | miss µs | miss/hit |",
            "|---|---|--:|--:|--:|",
        ]
        for dialect, statements in compile_cache.items():
            for label, entry in statements.items():
                if entry.get("status") != "ok":
                    lines.append(f"| {dialect} | {label} | **FAILED** | | |")
                    continue
                speedup = entry["speedup"]
                lines.append(
                    f"| {dialect} | {label} | {entry['hit_us']:.1f} | {entry['miss_us']:.1f} "
                    f"| {'-' if speedup is None else f'{speedup:.1f}x'} |"
                )
        lines.append("")
    hydration = micro.get("hydration")
    if hydration:
        lines += [
            "## Row hydration",
            "",
            f"W2 on an in-memory SQLite database ({hydration['rows']} rows, no I/O): µs per row, "
            "and the part above the raw driver's (making the object).",
            "",
            "| implementation | median ms | µs/row | hydration µs/row | x raw |",
            "|---|--:|--:|--:|--:|",
        ]
        for name, entry in hydration["implementations"].items():
            if entry["status"] != "ok":
                lines.append(f"| {name} | **{entry['status']}** | | | |")
                continue
            extra = entry.get("hydration_us_per_row")
            lines.append(
                f"| {name} | {_ms(entry['median_s'])} | {entry['us_per_row']:.2f} "
                f"| {'-' if extra is None else f'{extra:.2f}'} "
                f"| {_ratio(entry.get('ratio_to_raw'))} |"
            )
        lines.append("")
    return lines


def render_markdown(report: dict[str, Any], chart: str | None = "ratios.png") -> str:
    machine = report["machine"]
    config = report["config"]
    lines = [
        "# asyncorm benchmarks",
        "",
        f"{machine['date']} · {machine['cpu']}, {machine['cores']} cores · {machine['os']} · "
        f"Python {machine['python']} · process {machine.get('placement', 'not pinned')}",
        "",
        f"asyncorm {machine['asyncorm']} · SQLAlchemy {machine['sqlalchemy']} · "
        f"asyncpg {machine['asyncpg']} · aiosqlite {machine['aiosqlite']} · "
        f"PostgreSQL {machine['postgresql']} · SQLite {machine['sqlite']}",
        "",
        f"{config['repetitions']} repetition(s) after a warm-up"
        + (", quick mode (1/10 sizes)" if config["quick"] else "")
        + ". Produced by `python -m benchmarks.run`.",
        "",
    ]
    if chart:
        lines += [f"![asyncorm/raw and sqlalchemy/raw per workload]({chart})", ""]
    for database, data in report["databases"].items():
        lines += _database_markdown(database, data)
    lines += _micro_markdown(report.get("micro", {}))
    if report["failures"]:
        lines += ["## Failures", ""] + [f"- {failure}" for failure in report["failures"]] + [""]
    return "\n".join(lines)


README_START = "<!-- benchmark summary: written by python -m benchmarks.run -->"
README_END = "<!-- end of benchmark summary -->"


def render_summary(report: dict[str, Any]) -> str:
    """The README's table: asyncorm/raw per workload and database against issue 7's
    targets, the memory ratio, asyncorm/SQLAlchemy, and where the numbers came from."""
    machine = report["machine"]
    databases = [d for d in ("postgresql", "sqlite") if d in report["databases"]]
    titles = [DATABASE_TITLES[d].split(" (")[0] for d in databases]
    lines = [
        f"Measured {machine['date']} on {machine['cpu']} ({machine['cores']} cores, "
        f"{machine['os']}, process {machine.get('placement', 'not pinned')}), Python "
        f"{machine['python']}, asyncorm {machine['asyncorm']}, SQLAlchemy "
        f"{machine['sqlalchemy']}, asyncpg {machine['asyncpg']}, aiosqlite "
        f"{machine['aiosqlite']}, PostgreSQL {machine['postgresql']}, SQLite "
        f"{machine['sqlite']}; medians of {report['config']['repetitions']} repetitions. "
        "asyncorm's time over the raw driver's (target in parentheses; ✓ met, ✗ not):",
        "",
        "| workload | " + " | ".join(f"{t} asyncorm/raw" for t in titles) + " |",
        "|---|" + "--:|" * len(databases),
    ]
    faster = []
    for info in WORKLOADS:
        cells = []
        for database in databases:
            workload = report["databases"][database]["workloads"].get(info.key)
            if workload is None:
                cells.append("-")
                continue
            target = TARGETS[info.key].for_database(database)
            cells.append(_verdict(workload["ratios"]["asyncorm/raw"], target))
            faster.append(workload["ratios"]["asyncorm/sqlalchemy"])
        lines.append(f"| {info.key} {info.title} | " + " | ".join(cells) + " |")
    memory = [report["databases"][d].get("memory") or {} for d in databases]
    lines.append(
        "| W2 peak memory / raw objects' | "
        + " | ".join(_verdict(m.get("asyncorm/raw_objects"), MEMORY_TARGET) for m in memory)
        + " |"
    )
    known = [value for value in faster if value is not None]
    if known:
        lines += [
            "",
            f"Against SQLAlchemy's async ORM in the same run asyncorm takes {min(known):.2f}x "
            f"to {max(known):.2f}x its time (faster on every workload: "
            f"{'yes' if max(known) < 1 else 'no'}).",
        ]
    return "\n".join(lines)


def update_readme(readme: Path, report: dict[str, Any]) -> bool:
    """Replace the summary between the README's markers; False if it has no markers."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    summary = render_summary(report)
    readme.write_text(f"{text[: start + len(README_START)]}\n{summary}\n{text[end:]}")
    return True


def main() -> None:
    """Re-render ``latest.md`` from ``latest.json`` (in the given directory)."""
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results")
    report = json.loads((directory / "latest.json").read_text())
    (directory / "latest.md").write_text(render_markdown(report))


if __name__ == "__main__":
    main()
