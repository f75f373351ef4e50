"""The machine and the versions a run came from."""

from __future__ import annotations

import datetime
import os
import platform
import sqlite3
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["machine_info", "pin_to_one_cpu"]


def pin_to_one_cpu() -> str:
    """Keep this process, and the threads it starts later, on the CPU it runs on now.

    A SQLite call is a hop to the driver's worker thread and back. Where the kernel wakes
    that thread decides the hop's cost: about 20 µs on the event loop's own CPU, about
    85 µs on another, idle one (measured on this 2-core VM). The kernel places each
    implementation's worker thread once, by luck, so unpinned SQLite ratios of hop-bound
    workloads (W3, W5, W6) came out 1.1x or 1.45x from run to run. Pinned, every
    implementation's hops cost the same and the ratios measure the libraries.
    Returns how the run was placed, for the report.
    """
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    try:
        cpu = os.sched_getaffinity(0)
        current = _current_cpu()
        chosen = current if current in cpu else min(cpu)
        os.sched_setaffinity(0, {chosen})
    except OSError as error:
        return f"not pinned ({error})"
    return f"pinned to CPU {chosen}"


def _current_cpu() -> int:
    try:
        # Field 39 of /proc/self/stat is the CPU the process last ran on.
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[36])
    except (OSError, IndexError, ValueError):
        return -1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _git_revision() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "asyncorm"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{revision}{' + uncommitted changes in asyncorm/' if dirty else ''}"


def machine_info(
    database_versions: dict[str, str] | None = None, placement: str = "not pinned"
) -> dict[str, Any]:
    """Call at the start of a run (the asyncorm revision is the one that was imported), then
    ``update_database_versions`` at the end."""
    database_versions = database_versions or {}
    return {
        "placement": placement,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "asyncorm": f"{_package('asyncorm')} ({_git_revision()})",
        "sqlalchemy": _package("sqlalchemy"),
        "tortoise": _package("tortoise-orm"),
        "asyncpg": _package("asyncpg"),
        "aiosqlite": _package("aiosqlite"),
        "postgresql": database_versions.get("postgresql", "not run"),
        "sqlite": database_versions.get("sqlite", sqlite3.sqlite_version),
    }


def update_database_versions(info: dict[str, Any], database_versions: dict[str, str]) -> None:
    for name in ("postgresql", "sqlite"):
        if name in database_versions:
            info[name] = database_versions[name]
