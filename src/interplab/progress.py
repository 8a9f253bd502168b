"""Progress lines for long jobs: done/total, rate and ETA, through `logging`, at most every few seconds.

At paper scale a cache or SAE job runs for hours and its log is the only place that says whether it
is moving and when it will end. Every long loop reports through one `Progress`, so every log reads
the same way::

    SAE training (12 SAEs): 1,228,800/4,096,000 tokens (30.0%), 45,312 tokens/s, ETA 1m03s, elapsed 27s

A line is written when the reporter starts, at most every `every` seconds of wall time in between
(10 s, or the value of the environment variable INTERPLAB_PROGRESS_SECONDS: a debugging run may want
more lines, a week-long cluster job fewer), at 25, 50 and 75% of the work (so a short job's log shows
its rate and ETA too), and when it finishes. A call costs one clock read unless
a line is due, so loops may call it per step; the SAE trainer reads the clock only on its logging
steps and moves logged values off the GPU only when a line is due, so progress never adds a device
sync to its hot loop.
The rate counts only units done since the reporter started, so a resumed job's ETA is its own.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
EVERY_SECONDS = 10.0
EVERY_VARIABLE = "INTERPLAB_PROGRESS_SECONDS"


def duration(seconds: float) -> str:
    """4023.2 → '1h07m03s', 63 → '1m03s', 7.4 → '7s': short enough for a log line, exact to the second."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def default_every() -> float:
    """Seconds between progress lines: INTERPLAB_PROGRESS_SECONDS if set, else 10."""
    return float(os.environ.get(EVERY_VARIABLE, EVERY_SECONDS))


def quantity(value: float) -> str:
    """Large counts and rates with thousands separators, small rates (epochs/s) to three digits."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


@dataclass
class Progress:
    """Reports `done` of `total` `unit`s of the work named `what`; see the module docstring."""

    what: str
    total: int
    unit: str
    done: int = 0  # units already done when the reporter starts (a resumed job)
    every: float = field(default_factory=default_every)
    logger: logging.Logger = field(default=log, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        self._started = self._last = self.clock()
        self._start_done = self.done
        self._milestone = self._next_milestone()
        self.logger.info("%s: starting at %s", self.what, self._fraction())

    def due(self, done: int | None = None) -> bool:
        """Whether an `update` to `done` would write a line: callers with work worth doing only for a
        line (flushing device values to the host) ask first."""
        return self.clock() - self._last >= self.every or (done is not None and done >= self._milestone)

    def update(self, done: int, note: str = "", force: bool = False) -> bool:
        """Record `done` units; write a line if one is due (or `force`). Returns whether it wrote."""
        if not force and not self.due(done):
            self.done = done
            return False
        self.done = done
        now = self._last = self.clock()
        self._milestone = self._next_milestone()
        rate = self._rate(now)
        eta = f"ETA {duration((self.total - done) / rate)}" if rate > 0 else "ETA unknown"
        self.logger.info("%s: %s, %s %s/s, %s, elapsed %s%s", self.what, self._fraction(), quantity(rate), self.unit,
                         eta, duration(now - self._started), f"; {note}" if note else "")
        return True

    def track(self, items: Iterable[T], size: Callable[[T], int] = lambda _: 1) -> Iterator[T]:
        """Yield `items`, counting `size(item)` units as each one is handed on."""
        for item in items:
            yield item
            self.update(self.done + size(item))

    def finish(self, note: str = "", done: int | None = None) -> None:
        """The closing line: what was done in how long, at what mean rate. `done`: the final count, for
        loops that update only when a line is due."""
        if done is not None:
            self.done = done
        now = self.clock()
        self.logger.info("%s: finished %s in %s (%s %s/s)%s", self.what, self._fraction(),
                         duration(now - self._started), quantity(self._rate(now)), self.unit,
                         f"; {note}" if note else "")

    def _next_milestone(self) -> float:
        """The next quarter of the work past `done`: a job shorter than `every` still logs its rate and
        ETA at 25, 50 and 75%."""
        quarters = [self.total * k / 4 for k in range(1, 4)]
        return next((q for q in quarters if q > self.done), float("inf"))

    def _rate(self, now: float) -> float:
        elapsed = now - self._started
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    def _fraction(self) -> str:
        percent = f" ({100 * self.done / self.total:.1f}%)" if self.total else ""
        return f"{self.done:,}/{self.total:,} {self.unit}{percent}"
