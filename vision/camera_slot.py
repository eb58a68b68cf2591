"""One camera's state inside the recognition service: its scheduling slot, its counters and its tracker.

Kept apart from the service so the scheduling code reads as threads and turns, and the bookkeeping
(what ``RecognitionService.stats`` reports) lives in one place.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from network.frames import Frame
from vision.results import FrameResult
from vision.tracker import Tracker


class CameraSlot:
    """One camera's scheduling state (guarded by the service's condition) and its tracker (by ``lock``)."""

    def __init__(self, name: str, tracker: Tracker, min_interval: float) -> None:
        self.name = name
        self.pending: Frame | None = None
        self.busy = False
        self.last_started = -np.inf
        self.min_interval = min_interval
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
        self.embeds = 0
        self.detect = "station"  # where the faces of the last analysed frame were found
        self.edge_frames = 0
        self.edge_fallbacks = 0
        self.full_detections = 0  # frames the station searched whole (the rest: near the live tracks only)
        self.since_full: int | None = None  # frames refined since the last full detection (None: none yet)
        self.latest: FrameResult | None = None
        self.tracker = tracker
        self.lock = threading.Lock()


def percentile(values: deque[float], q: float) -> float | None:
    """The ``q``-th percentile of ``values`` rounded to 0.01, None when there are none."""
    if not values:
        return None
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q)), 2)
