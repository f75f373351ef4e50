"""A one-line progress bar on stdout (redrawn in place on a terminal, one line per ~5%
otherwise, so logs of CI runs stay short)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.width = width
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty()
        self.started = time.monotonic()
        self._last_reported = -1
        self._line_open = False

    def advance(self, label: str, steps: int = 1) -> None:
        self.done = min(self.total, self.done + steps)
        self._draw(label)

    def log(self, message: str) -> None:
        """Print a message above the bar."""
        self._clear()
        print(message, file=self.stream, flush=True)

    def finish(self) -> None:
        self._clear()
        elapsed = time.monotonic() - self.started
        print(f"done in {_duration(elapsed)}", file=self.stream, flush=True)

    def _draw(self, label: str) -> None:
        fraction = self.done / self.total
        percent = int(fraction * 100)
        if not self.interactive and percent // 5 == self._last_reported // 5:
            return
        self._last_reported = percent
        filled = int(fraction * self.width)
        elapsed = time.monotonic() - self.started
        eta = elapsed / fraction - elapsed if fraction > 0 else 0.0
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"[{bar}] {percent:3d}% eta {_duration(eta):>6}  {label}"
        if self.interactive:
            self.stream.write("\r\x1b[2K" + line[:120])
            self._line_open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _clear(self) -> None:
        if self._line_open:
            self.stream.write("\r\x1b[2K")
            self._line_open = False


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
