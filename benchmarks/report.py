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
from .stats import Cell, per_repetition, ratio

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
        "tortoise/raw": ("tortoise", "raw"),
        "asyncorm/tortoise": ("asyncorm", "tortoise"),
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
            "asyncorm/raw per repetition": per_repetition(cells.get("asyncorm"), cells.get("raw")),
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
    implementations: list[str],
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "machine": machine,
        "config": {
            "quick": quick,
            "repetitions": repetitions,
            "sizes": asdict(sizes),
            "implementations": implementations,
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
    shown, digits = _ratio(value), 3
    while value > target and float(shown) <= target and digits < 10:
        shown, digits = f"{value:.{digits}f}", digits + 1  # not "2.00 ✗" for 2.003
    return f"{shown} {mark} (≤ {target:g})"


def _range(values: list[float] | None) -> str:
    return f" [{_ratio(min(values))}-{_ratio(max(values))}]" if values else ""


def _faster(value: float | None) -> str:
    """asyncorm's time over a peer's, marked ✓ where asyncorm is the faster."""
    return _ratio(value) + ("" if value is None else " ✓" if value < 1 else " ✗")


def _mb(value: int) -> str:
    return f"{value / 1e6:.2f}"


def _database_markdown(database: str, data: dict[str, Any], ran: list[str]) -> list[str]:
    title = DATABASE_TITLES.get(database, database)
    peers = [("sqlalchemy", "sqlalchemy/raw")] + (
        [("tortoise", "tortoise/raw")] if "tortoise" in ran else []
    )
    lines = [f"## {title} {data['version']}".rstrip(), ""]
    if data.get("error"):
        lines += [f"Not run: {data['error']}", ""]
    lines += [
        "Median ms over the repetitions (min-max). Ratios are medians of per-repetition "
        "ratios; the target is issue 7's ceiling for asyncorm/raw, followed by the range of "
        "asyncorm/raw over the repetitions.",
        "",
        "| workload | "
        + " | ".join(name.replace("_", " ") for name in ran)
        + " | asyncorm/raw (target) | "
        + " | ".join(label for _, label in peers)
        + " | "
        + " | ".join(f"asyncorm/{peer}" for peer, _ in peers)
        + " |",
        "|---|" + "--:|" * (len(ran) + 1 + 2 * len(peers)),
    ]
    for key, workload in data["workloads"].items():
        cells = workload["implementations"]
        ratios = workload["ratios"]
        times = " | ".join(_time_cell(cells[name]) if name in cells else "-" for name in ran)
        versus_raw = " | ".join(_ratio(ratios.get(label)) for _, label in peers)
        versus_peers = " | ".join(_faster(ratios.get(f"asyncorm/{peer}")) for peer, _ in peers)
        lines.append(
            f"| {key} {workload['title']} | {times} "
            f"| {_verdict(ratios['asyncorm/raw'], workload['target_vs_raw'])}"
            f"{_range(workload.get('asyncorm/raw per repetition'))} "
            f"| {versus_raw} | {versus_peers} |"
        )
    memory = data["memory"]
    entries = [(name, memory[name]) for name in ran if name in memory]
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
                shown = "n/a" if entry.get("status") == "n/a" else "**FAILED**"
                lines.append(f"| {name} | {shown} | | |")
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
    ran = config.get("implementations", list(IMPLEMENTATIONS))
    peers = "sqlalchemy/raw and tortoise/raw" if "tortoise" in ran else "sqlalchemy/raw"
    lines = [
        "# asyncorm benchmarks",
        "",
        f"{machine['date']} · {machine['cpu']}, {machine['cores']} cores · {machine['os']} · "
        f"Python {machine['python']} · process {machine.get('placement', 'not pinned')}",
        "",
        f"asyncorm {machine['asyncorm']} · SQLAlchemy {machine['sqlalchemy']} · "
        + (f"Tortoise ORM {machine.get('tortoise')} · " if "tortoise" in ran else "")
        + f"asyncpg {machine['asyncpg']} · aiosqlite {machine['aiosqlite']} · "
        f"PostgreSQL {machine['postgresql']} · SQLite {machine['sqlite']}",
        "",
        f"{config['repetitions']} repetition(s) after a warm-up"
        + (", quick mode (1/10 sizes)" if config["quick"] else "")
        + ". Produced by `python -m benchmarks.run`.",
        "",
    ]
    if chart:
        lines += [f"![asyncorm/raw, {peers} per workload]({chart})", ""]
    for database, data in report["databases"].items():
        lines += _database_markdown(database, data, ran)
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
    faster, faster_than_tortoise = [], []
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
            faster_than_tortoise.append(workload["ratios"].get("asyncorm/tortoise"))
        lines.append(f"| {info.key} {info.title} | " + " | ".join(cells) + " |")
    memory = [report["databases"][d].get("memory") or {} for d in databases]
    lines.append(
        "| W2 peak memory / raw objects' | "
        + " | ".join(_verdict(m.get("asyncorm/raw_objects"), MEMORY_TARGET) for m in memory)
        + " |"
    )
    peers = (("SQLAlchemy's async ORM", faster), ("Tortoise ORM", faster_than_tortoise))
    for peer, ratios in peers:
        known = [value for value in ratios if value is not None]
        if known:
            lines += [
                "",
                f"Against {peer} in the same run asyncorm takes {min(known):.2f}x to "
                f"{max(known):.2f}x its time (faster on every workload it runs: "
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
