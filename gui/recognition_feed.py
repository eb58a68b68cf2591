"""Turns the recogniser's results into what the console shows: face boxes per tile (alarms are the station's:
station/alarm_rules.py raises them, the Alerts dock's queue shows them).

The GUI thread reads the recogniser's latest results on its timer; no Qt object is touched off the GUI thread.
"""

from __future__ import annotations

import time

from gui.overlay import FaceOverlay, FaceState
from station.runtime import Recogniser
from vision.faces import DecisionState, Face

STALE_AFTER_S = 2.0  # boxes older than this are not drawn (the camera or the recogniser stalled)


def overlay_for(face: Face) -> FaceOverlay:
    decision = face.decision
    if decision.state is DecisionState.UNDECIDED:
        return FaceOverlay(face.box, "…", None, FaceState.UNDECIDED)
    if decision.person is None:  # score None against an empty gallery: "unknown", not "unknown -1.00"
        return FaceOverlay(face.box, "unknown", decision.score, FaceState.UNKNOWN)
    state = FaceState.WATCHLIST if decision.watchlist else FaceState.KNOWN
    return FaceOverlay(face.box, decision.person, decision.score, state)


class RecognitionFeed:
    """Polled by the GUI: the boxes to draw now, and each camera's recognition rate."""

    def __init__(self, recogniser: Recogniser) -> None:
        self.recogniser = recogniser

    def overlays(self) -> dict[str, tuple[FaceOverlay, ...]]:
        now = time.time()
        return {
            camera: tuple(overlay_for(f) for f in result.faces)
            for camera, result in self.recogniser.latest_results().items()
            if now - result.recognised_at < STALE_AFTER_S
        }

    def rates(self) -> dict[str, float]:
        return {s.camera: s.fps for s in self.recogniser.stats()}
