"""Turns the recogniser's results into what the console shows: face boxes per tile and alerts.

Results arrive on recognition threads; the listener only appends to a bounded deque. The GUI
thread drains it on its timer, so no Qt object is touched off the GUI thread.
"""

from __future__ import annotations

import time
from collections import deque

from gui.overlay import FaceOverlay, FaceState
from gui.scores import score_text
from gui.widgets.alerts_panel import Alert
from station.runtime import Recogniser
from vision.faces import DecisionState, Face
from vision.results import FrameResult

STALE_AFTER_S = 2.0  # boxes older than this are not drawn (the camera or the recogniser stalled)
UNKNOWN_AFTER_FRAMES = 3  # an unknown face must be seen this often before it raises an alert


def overlay_for(face: Face) -> FaceOverlay:
    decision = face.decision
    if decision.state is DecisionState.UNDECIDED:
        return FaceOverlay(face.box, "…", None, FaceState.UNDECIDED)
    if decision.person is None:  # score None against an empty gallery: "unknown", not "unknown -1.00"
        return FaceOverlay(face.box, "unknown", decision.score, FaceState.UNKNOWN)
    state = FaceState.WATCHLIST if decision.watchlist else FaceState.KNOWN
    return FaceOverlay(face.box, decision.person, decision.score, state)


class RecognitionFeed:
    """Polled by the GUI: the boxes to draw now, and the alerts raised since the last poll."""

    def __init__(self, recogniser: Recogniser, *, max_pending: int = 1000) -> None:
        self.recogniser = recogniser
        self._pending: deque[FrameResult] = deque(maxlen=max_pending)
        self._alerted: dict[str, None] = {}  # insertion-ordered, so the oldest can be forgotten
        self._unknown_seen: dict[str, int] = {}
        recogniser.service.add_listener(self._pending.append)  # deque.append is atomic

    def overlays(self) -> dict[str, tuple[FaceOverlay, ...]]:
        now = time.time()
        return {
            camera: tuple(overlay_for(f) for f in result.faces)
            for camera, result in self.recogniser.latest_results().items()
            if now - result.recognised_at < STALE_AFTER_S
        }

    def rates(self) -> dict[str, float]:
        return {s.camera: s.fps for s in self.recogniser.stats()}

    def alerts(self, unknown_alerts: bool) -> list[Alert]:
        """Watchlist hits (once per track) and, if asked, new unknown faces (once per track)."""
        out: list[Alert] = []
        while self._pending:
            result = self._pending.popleft()
            for face in result.faces:
                if face.track_id in self._alerted:
                    continue
                if face.person is not None and face.decision.watchlist:
                    self._alerted[face.track_id] = None
                    score = score_text(face.score, 2, none="")
                    out.append(
                        Alert(
                            "watchlist",
                            result.camera,
                            f"watchlist: {face.person}" + (f" ({score})" if score else ""),
                            result.captured_at,
                            track_id=face.track_id,
                            frame_id=result.frame_id,
                            box=face.box,
                        )
                    )
                elif face.decision.state is DecisionState.UNKNOWN and unknown_alerts:
                    seen = self._unknown_seen.get(face.track_id, 0) + 1
                    self._unknown_seen[face.track_id] = seen
                    if seen >= UNKNOWN_AFTER_FRAMES:
                        self._alerted[face.track_id] = None
                        out.append(
                            Alert(
                                "unknown",
                                result.camera,
                                "new unknown face",
                                result.captured_at,
                                track_id=face.track_id,
                                frame_id=result.frame_id,
                                box=face.box,
                            )
                        )
        if len(self._alerted) > 10_000:  # track ids are never reused; forget the oldest half
            self._alerted = dict.fromkeys(list(self._alerted)[5_000:])
        if len(self._unknown_seen) > 10_000:
            self._unknown_seen.clear()
        return out
