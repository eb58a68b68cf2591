"""One camera's place in the recognition service: its newest waiting frame, its turn, and its figures.

Kept apart from the service so the scheduling reads as threads and turns, and the bookkeeping (what
``RecognitionService.stats`` reports) lives in one place. Every method is called with the service's
condition held.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from vision.engine import FrameOutcome
from vision.face_sources import FoundBy
from vision.frames import CameraFrame
from vision.results import FrameResult, RecognitionStats


class CameraSlot:
    """One camera's scheduling state and counters (guarded by the service's condition)."""

    def __init__(self, name: str, rate_hz: float | None, home: int | None) -> None:
        self.name = name
        self.home = home  # the worker that runs this camera (None: any)
        self.pending: CameraFrame | None = None
        self.busy = False
        self.last_started = -np.inf
        self.min_interval = 0.0
        self.set_rate(rate_hz)
        # The rate cap as a virtual schedule (GCRA): a frame may start once ``rate_due - min_interval`` has
        # passed. On average at most one frame per interval, yet a frame that arrives a little early
        # (camera jitter) is not held back until a newer one replaces it.
        self.rate_due = -np.inf
        self.delivered = 0
        self.taken = 0
        self.recognised = 0
        self.errors = 0
        self.last_error = ""
        self.done_at: deque[float] = deque(maxlen=512)
        self.latencies: deque[float] = deque(maxlen=512)
        self.first_decisions: deque[float] = deque(maxlen=512)  # ms from a new track's first frame arriving
        self.looks = 0
        self.confirmed = 0
        self.refused = 0
        self.found_by = FoundBy.STATION  # who found the faces of the last analysed frame
        self.edge_frames = 0
        self.edge_fallbacks = 0
        self.full_detections = 0  # frames the station searched whole (the rest: near the live tracks only)
        self.latest: FrameResult | None = None

    def set_rate(self, rate_hz: float | None) -> None:
        self.min_interval = 0.0 if rate_hz is None else 1.0 / rate_hz

    def ready(self, worker: int) -> bool:
        """A frame is waiting, none is in flight, and ``worker`` may run this camera."""
        return self.pending is not None and not self.busy and (self.home is None or self.home == worker)

    def due(self) -> float:
        """When the next frame may start (one interval of slack: a frame a little early still goes)."""
        return float(self.rate_due - self.min_interval)

    def take(self, now: float) -> CameraFrame:
        frame, self.pending = self.pending, None
        assert frame is not None
        self.busy = True
        self.last_started = now
        self.rate_due = max(self.rate_due, now) + self.min_interval
        self.taken += 1
        return frame

    def finish(self, outcome: FrameOutcome | None) -> None:
        self.busy = False
        if outcome is None:
            return
        self.latest = outcome.result
        self.recognised += 1
        self.done_at.append(time.monotonic())
        self.latencies.append(outcome.result.latency_ms)
        self.first_decisions.extend(outcome.first_decisions_ms)
        self.looks += outcome.looks
        self.confirmed += outcome.confirmed
        self.refused += outcome.refused
        self.found_by = outcome.by
        self.edge_frames += outcome.by is FoundBy.EDGE
        self.edge_fallbacks += outcome.fell_back
        self.full_detections += outcome.whole and outcome.by is FoundBy.STATION

    def failed(self, message: str) -> None:
        self.errors += 1
        self.last_error = message

    def stats(self, now: float, window: float, live_tracks: int) -> RecognitionStats:
        recent = sum(1 for t in self.done_at if now - t <= window)
        waiting = 1 if self.pending is not None else 0
        return RecognitionStats(
            camera=self.name,
            fps=round(recent / window, 2),
            recognised=self.recognised,
            dropped=max(0, self.delivered - self.taken - waiting),
            errors=self.errors,
            latency_ms_p50=percentile(self.latencies, 50),
            latency_ms_p95=percentile(self.latencies, 95),
            live_tracks=live_tracks,
            last_error=self.last_error,
            first_decision_ms_p50=percentile(self.first_decisions, 50),
            first_decision_ms_p95=percentile(self.first_decisions, 95),
            embedded=self.looks,
            detect=self.found_by.value,
            edge_frames=self.edge_frames,
            edge_fallbacks=self.edge_fallbacks,
            full_detections=self.full_detections,
            confirmed=self.confirmed,
            refused=self.refused,
        )


def percentile(values: deque[float], q: float) -> float | None:
    """The ``q``-th percentile of ``values`` rounded to 0.01, None when there are none."""
    if not values:
        return None
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q)), 2)
