"""Medians, spreads and per-repetition ratios of the measured times."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Cell", "ratio"]


@dataclass
class Cell:
    """One implementation on one workload and database: a time per repetition, or why not."""

    times: list[float] = field(default_factory=list)
    status: str = "ok"
    """``"ok"``, ``"FAILED"`` or ``"n/a"``."""
    reason: str = ""

    def fail(self, reason: str) -> None:
        if self.status == "ok":
            self.status, self.reason = "FAILED", reason

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.times)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.ok else None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status}
        if self.reason:
            data["reason"] = self.reason
        if self.ok:
            data |= {
                "median_s": self.median,
                "min_s": min(self.times),
                "max_s": max(self.times),
                "times_s": self.times,
            }
        return data


def per_repetition(numerator: Cell | None, denominator: Cell | None) -> list[float]:
    """Repetition i's time over repetition i's: neighbours in time, so the machine's drift
    between repetitions cancels out."""
    if numerator is None or denominator is None or not (numerator.ok and denominator.ok):
        return []
    pairs = zip(numerator.times, denominator.times, strict=False)
    return [a / b for a, b in pairs if b > 0]


def ratio(numerator: Cell | None, denominator: Cell | None) -> float | None:
    """The median of the per-repetition ratios."""
    ratios = per_repetition(numerator, denominator)
    return statistics.median(ratios) if ratios else None
