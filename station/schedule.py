"""Periodic station jobs (retention, ...) on one background thread, whichever face the station has.

A job that fails is logged and runs again at its next time; a slow job delays only the jobs after
it. Nothing here knows about Qt: the console and the headless station share it through
``station.station.Station``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class _Job:
    name: str
    interval_s: float
    fn: Callable[[], object]
    due: float
    runs: int = 0
    failures: int = 0


class Schedule:
    """Runs each job every ``interval_s`` seconds (the first time at once, or after one interval)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._jobs: list[_Job] = []
        self._wake = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    def every(self, interval_s: float, fn: Callable[[], object], *, name: str, now: bool = True) -> None:
        if interval_s <= 0:
            raise ValueError(f"a job's interval must be positive, got {interval_s}")
        with self._wake:
            self._jobs.append(_Job(name, interval_s, fn, self._clock() + (0.0 if now else interval_s)))
            self._wake.notify()

    def start(self) -> None:
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self._loop, name="station-schedule", daemon=True)
            self._thread.start()

    def runs(self, name: str) -> int:
        """How many times the job ran (successfully or not): for tests and status."""
        with self._wake:
            return sum(j.runs for j in self._jobs if j.name == name)

    def stop(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("a scheduled job is still running after %.0f s; leaving it", timeout)
            self._thread = None

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stop:
                    now = self._clock()
                    due = [j for j in self._jobs if j.due <= now]
                    if due:
                        break
                    wait = min((j.due for j in self._jobs), default=now + 60.0) - now
                    self._wake.wait(max(0.01, min(wait, 60.0)))
                if self._stop:
                    return
            for job in due:
                started = self._clock()
                try:
                    job.fn()
                except Exception:
                    job.failures += 1
                    log.exception("scheduled job %s failed; it runs again in %.0f s", job.name, job.interval_s)
                finally:
                    with self._wake:
                        job.runs += 1
                        job.due = started + job.interval_s
