"""CPU time per recognition stage (decode, detect, align, embed, match, track), for the per-stage budget.

Each worker thread adds the CPU time it spent in a stage (``time.thread_time``, so time spent
waiting for a lock or for the other core is not counted). :meth:`StageTimes.snapshot` gives the
totals; two snapshots a known wall time apart give each stage's share of a core.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

STAGES = ("decode", "detect", "align", "embed", "match", "track")


@dataclass(frozen=True)
class StageSnapshot:
    """CPU seconds and call counts per stage since the service started."""

    seconds: dict[str, float]
    calls: dict[str, int]

    def minus(self, earlier: StageSnapshot) -> StageSnapshot:
        return StageSnapshot(
            {k: v - earlier.seconds.get(k, 0.0) for k, v in self.seconds.items()},
            {k: v - earlier.calls.get(k, 0) for k, v in self.calls.items()},
        )


class StageTimes:
    """Thread-safe accumulator of per-stage CPU seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds = dict.fromkeys(STAGES, 0.0)
        self._calls = dict.fromkeys(STAGES, 0)

    def add(self, stage: str, seconds: float, calls: int = 1) -> None:
        with self._lock:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds
            self._calls[stage] = self._calls.get(stage, 0) + calls

    @contextmanager
    def timing(self, stage: str, calls: int = 1) -> Iterator[None]:
        began = time.thread_time()
        try:
            yield
        finally:
            self.add(stage, time.thread_time() - began, calls)

    def snapshot(self) -> StageSnapshot:
        with self._lock:
            return StageSnapshot(dict(self._seconds), dict(self._calls))


spent_local = threading.local()  # the current frame's list of CPU seconds spent outside the track stage


def spent_now() -> list[float]:
    """This thread's current frame's list of CPU seconds spent outside the track stage ([] when none)."""
    spent: list[float] | None = getattr(spent_local, "spent", None)
    return spent if spent is not None else []
