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

__all__ = ["machine_info"]


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


def machine_info(database_versions: dict[str, str] | None = None) -> dict[str, Any]:
    """Call at the start of a run (the asyncorm revision is the one that was imported), then
    ``update_database_versions`` at the end."""
    database_versions = database_versions or {}
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "asyncorm": f"{_package('asyncorm')} ({_git_revision()})",
        "sqlalchemy": _package("sqlalchemy"),
        "asyncpg": _package("asyncpg"),
        "aiosqlite": _package("aiosqlite"),
        "postgresql": database_versions.get("postgresql", "not run"),
        "sqlite": database_versions.get("sqlite", sqlite3.sqlite_version),
    }


def update_database_versions(info: dict[str, Any], database_versions: dict[str, str]) -> None:
    for name in ("postgresql", "sqlite"):
        if name in database_versions:
            info[name] = database_versions[name]
