"""The progress of a split's evaluation on stderr or in the log."""

from __future__ import annotations

import logging
import sys
import time

# The evaluate stage's logger: its progress lines keep the name they were logged under before the
# engine left the stage module, so filters and captured logs that select it still see them.
log = logging.getLogger("aimed.stages.evaluate")

PROGRESS_EVERY_SECONDS = 10.0


class Progress:
    """A progress bar with samples/s on a TTY, a line every few seconds otherwise."""

    def __init__(self, split: str, n: int) -> None:
        self.split, self.n = split, n
        self.tty = sys.stderr.isatty()
        self.start = self.last = time.monotonic()

    def update(self, done: int) -> None:
        """Show that ``done`` of the ``n`` samples are evaluated."""
        now = time.monotonic()
        rate = done / max(now - self.start, 1e-9)
        if self.tty:
            filled = int(30 * done / self.n)
            sys.stderr.write(f"\r{self.split}: [{'=' * filled}{' ' * (30 - filled)}] {done}/{self.n} {rate:,.0f} samples/s")
            if done >= self.n:
                sys.stderr.write("\n")
        elif now - self.last >= PROGRESS_EVERY_SECONDS or done >= self.n:
            log.info("%s: %d/%d samples, %.0f samples/s", self.split, done, self.n, rate)
            self.last = now
