"""Smoke test of the benchmark suite (issue 7): every workload runs on SQLite at 1/10 size
for every implementation, verifies its own result, and no cell reports FAILED; a peer that
cannot run a workload reads n/a, its W2 memory included."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sqlalchemy") is None,
    reason="the benchmark peers are not installed: pip install -e '.[bench]'",
)


def test_benchmark_suite_runs_clean_in_quick_mode(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--db", "sqlite"]
    command += ["--repetitions", "1", "--output-dir", str(tmp_path)]
    if importlib.util.find_spec("matplotlib") is None:
        command.append("--no-chart")
    with_tortoise = importlib.util.find_spec("tortoise") is not None  # the optional peer
    if with_tortoise:
        command.append("--with-tortoise")
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert (tmp_path / "latest.json").exists(), finished.stdout + finished.stderr

    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["failures"] == [], report["failures"]
    assert finished.returncode == 0, finished.stdout + finished.stderr

    workloads = report["databases"]["sqlite"]["workloads"]
    assert list(workloads) == ["W1", "W1b", "W2", "W3", "W3b", "W4", "W5", "W6", "W7", "W8"]
    for key, workload in workloads.items():
        for name, cell in workload["implementations"].items():
            assert cell["status"] in ("ok", "n/a"), (key, name, cell)
            if cell["status"] == "ok":
                assert len(cell["times_s"]) == 1 and cell["times_s"][0] > 0, (key, name)
        assert workload["ratios"]["asyncorm/raw"] is not None, key
        assert len(workload["asyncorm/raw per repetition"]) == 1, key
        assert workload["ratios"]["asyncorm/sqlalchemy"] is not None, key
        if with_tortoise:
            tortoise = workload["implementations"]["tortoise"]["status"]
            assert tortoise == ("n/a" if key == "W1b" else "ok"), (key, tortoise)
    memory = report["databases"]["sqlite"]["memory"]
    assert all(memory[name]["status"] == "ok" for name in ("asyncorm", "sqlalchemy", "raw"))
    micro = report["micro"]["compile_cache"].values()
    assert all(entry["status"] == "ok" for section in micro for entry in section.values())
    assert "FAILED" not in (tmp_path / "latest.md").read_text()


def test_readme_shows_the_committed_results(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.report import README_END, README_START, render_summary

    report = json.loads((ROOT / "benchmarks" / "results" / "latest.json").read_text())
    readme = (ROOT / "README.md").read_text()
    shown = readme[readme.index(README_START) + len(README_START) : readme.index(README_END)]
    assert report["config"]["quick"] is False
    assert shown.strip() == render_summary(report), (
        "README.md's benchmark summary is not that of benchmarks/results/latest.json: "
        "a full `python -m benchmarks.run` rewrites both"
    )


@pytest.mark.anyio
async def test_memory_of_an_implementation_that_cannot_fetch_reads_n_a(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import harness
    from benchmarks.config import Sizes
    from benchmarks.impls import NotApplicable, create
    from benchmarks.progress import Progress
    from benchmarks.report import _database_markdown, build_report

    def without_fetch(name: str) -> Any:
        impl = create(name)
        if name == "raw_objects":

            async def fetch_all() -> list[Any]:
                raise NotApplicable("this peer has no fetch")

            impl.fetch_all = fetch_all  # type: ignore[method-assign]
        return impl

    monkeypatch.setattr(harness, "create", without_fetch)
    implementations = ["raw", "raw_objects"]
    progress = Progress(harness.steps_for(["W2"], implementations, 1, True), io.StringIO())
    run = await harness.run_database(
        "sqlite", Sizes().scaled(0.01), ["W2"], implementations, 1, progress
    )

    assert run.memory["raw"]["status"] == "ok"
    assert run.memory["raw_objects"] == {"status": "n/a", "reason": "this peer has no fetch"}
    assert run.cells["W2"]["raw_objects"].status == "n/a"
    report = build_report([run], {}, {}, Sizes().scaled(0.01), 1, True, implementations)
    assert report["failures"] == []
    section = _database_markdown("sqlite", report["databases"]["sqlite"], implementations)
    assert "| raw_objects | n/a | | |" in section, section
