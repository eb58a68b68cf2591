"""CPU time per recognition stage (decode, detect, align, embed, match, confirm, track), for the per-stage budget.

Each frame's work is timed on the thread that does it (``time.thread_time``, so time spent waiting for a
lock or for the other core is not counted) into a :class:`StageClock` that belongs to that one frame; the
engine returns the clock's :class:`StageTimes` with the frame's outcome, and whoever runs the engine adds
them up (:class:`StageTotals`). Nothing travels through globals or thread-locals.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum


class Stage(StrEnum):
    DECODE = "decode"
    DETECT = "detect"
    ALIGN = "align"
    EMBED = "embed"
    MATCH = "match"
    CONFIRM = "confirm"  # the photo model's look at a proposed name (vision/decision.py)
    TRACK = "track"


STAGES = tuple(s.value for s in Stage)


@dataclass(frozen=True, slots=True)
class StageTimes:
    """CPU seconds and calls per stage: one frame's, or totals."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def minus(self, earlier: StageTimes) -> StageTimes:
        return StageTimes(
            {k: v - earlier.seconds.get(k, 0.0) for k, v in self.seconds.items()},
            {k: v - earlier.calls.get(k, 0) for k, v in self.calls.items()},
        )

    def plus(self, other: StageTimes) -> StageTimes:
        keys = self.seconds.keys() | other.seconds.keys()
        return StageTimes(
            {k: self.seconds.get(k, 0.0) + other.seconds.get(k, 0.0) for k in keys},
            {k: self.calls.get(k, 0) + other.calls.get(k, 0) for k in keys},
        )

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


StageSnapshot = StageTimes  # the name the benchmarks know


class StageClock:
    """One frame's stage times, filled in by the thread that works on it (not thread-safe: one frame, one thread)."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._calls: dict[str, int] = {}

    def add(self, stage: str, seconds: float, calls: int = 1) -> None:
        self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds
        self._calls[stage] = self._calls.get(stage, 0) + calls

    @contextmanager
    def timing(self, stage: str, calls: int = 1) -> Iterator[None]:
        began = time.thread_time()
        try:
            yield
        finally:
            self.add(stage, time.thread_time() - began, calls)

    def add_times(self, times: StageTimes) -> None:
        """Add stage times measured elsewhere (work done for this frame on another thread)."""
        for stage, seconds in times.seconds.items():
            self.add(stage, seconds, times.calls.get(stage, 0))

    def seconds(self, stage: str) -> float:
        return self._seconds.get(stage, 0.0)

    def times(self) -> StageTimes:
        return StageTimes(dict(self._seconds), dict(self._calls))


class StageTotals:
    """Thread-safe running totals of the stage times of every frame since the start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = StageTimes(dict.fromkeys(STAGES, 0.0), dict.fromkeys(STAGES, 0))

    def add(self, times: StageTimes) -> None:
        with self._lock:
            self._total = self._total.plus(times)

    def snapshot(self) -> StageTimes:
        with self._lock:
            return self._total
