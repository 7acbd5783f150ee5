"""A live progress bar for long waits: redrawn in place on a terminal, a line per change elsewhere."""

from __future__ import annotations

import time
from typing import TextIO

from producer.core.models.job_record import JobRecord

WIDTH = 30


class ProgressDisplay:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.last: tuple[str, int] | None = None

    def update(self, record: JobRecord) -> None:
        self.show(record.state.value, record.progress)

    def show(self, label: str, progress: int) -> None:
        """Draw `progress` (0..100) with `label` (a state, or a batch's "3/5 done")."""
        current = (label, progress)
        if not self.tty and current == self.last:
            return
        self.last = current
        filled = WIDTH * progress // 100
        bar = "#" * filled + "." * (WIDTH - filled)
        line = f"[{bar}] {progress:3d}% {label:<11} {time.monotonic() - self.started:6.0f}s"
        if self.tty:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, line: str) -> None:
        """A line of its own above the bar (a job of a batch that ended), the bar redrawn below it."""
        if self.tty:
            self.stream.write("\r\x1b[K" + line + "\n")
            if self.last is not None:
                label, progress = self.last
                self.last = None
                self.show(label, progress)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.last is not None:
            self.stream.write("\n")
            self.stream.flush()
