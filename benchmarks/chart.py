"""``ratios.png``: asyncorm/raw, sqlalchemy/raw and tortoise/raw per workload, one panel per
database, on a log scale, with issue 7's target for asyncorm marked on each workload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_chart"]

SERIES = (
    ("asyncorm/raw", "asyncorm", "#2a7ab9"),
    ("sqlalchemy/raw", "SQLAlchemy", "#d98b2b"),
    ("tortoise/raw", "Tortoise ORM", "#7d9c4a"),
)


def _label(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def write_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    databases = [name for name, data in report["databases"].items() if data["workloads"]]
    if not databases:
        return
    figure, axes = plt.subplots(
        len(databases), 1, figsize=(11, 4.2 * len(databases)), squeeze=False
    )
    for axis, database in zip(axes[:, 0], databases, strict=True):
        workloads = report["databases"][database]["workloads"]
        keys = list(workloads)
        positions = range(len(keys))
        series = [
            entry for entry in SERIES if any(workloads[key]["ratios"].get(entry[0]) for key in keys)
        ]
        width = 0.8 / max(len(series), 1)
        offsets = [(i - (len(series) - 1) / 2) * width for i in range(len(series))]
        for offset, (ratio_key, label, color) in zip(offsets, series, strict=True):
            values = [workloads[key]["ratios"].get(ratio_key) for key in keys]
            heights = [v if v is not None else 0 for v in values]
            bars = axis.bar(
                [p + offset for p in positions], heights, width, label=label, color=color
            )
            for bar, value in zip(bars, values, strict=True):
                text = "-" if value is None else _label(value)  # n/a or FAILED
                y = value if value is not None else 1
                axis.annotate(
                    text,
                    (bar.get_x() + bar.get_width() / 2, y),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    xytext=(0, 1),
                    textcoords="offset points",
                )
        targets = [workloads[key]["target_vs_raw"] for key in keys]
        axis.scatter(
            [p + (offsets[0] if offsets else 0) for p in positions],
            targets,
            marker="_",
            s=500,
            linewidths=2.5,
            color="#c0392b",
            zorder=3,
            label="target (asyncorm/raw)",
        )
        axis.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        axis.set_yscale("log")
        measured = [v for k in keys for v in workloads[k]["ratios"].values() if v]
        axis.set_ylim(top=max([*measured, *targets, 1.0]) * 3)
        axis.set_xticks(
            list(positions), [f"{k}\n{workloads[k]['title']}" for k in keys], fontsize=8
        )
        axis.set_ylabel("time / raw driver (log)")
        version = report["databases"][database]["version"]
        axis.set_title(f"{database} {version}".strip(), fontsize=10)
        axis.grid(axis="y", which="both", alpha=0.25)
    machine = report["machine"]
    figure.suptitle(
        f"asyncorm and its peers, relative to the raw driver — {machine['date']}, "
        f"Python {machine['python']}",
        fontsize=10,
    )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
