"""Turns the recogniser's results into what the console shows: face boxes per tile, and the alerts the
station's events raise (a watchlist hit, a new unknown face: station/events.py).

Boxes are read from the recogniser's newest results at display rate. Alerts come from a subscription to
the station's event bus (its own bounded queue); the GUI thread drains it on its timer, so no Qt object
is touched off the GUI thread. A console handed a recogniser without the station's bus (tests) feeds a
bus of its own from the same results, through the same adapter.
"""

from __future__ import annotations

import time

from gui.overlay import FaceOverlay, FaceState
from gui.scores import score_text
from gui.widgets.alerts_panel import Alert
from station.event_bus import EventBus
from station.event_feed import EventFeed
from station.events import EventKind, SightingEvent
from station.runtime import Recogniser
from vision.faces import DecisionState, Face

STALE_AFTER_S = 2.0  # boxes older than this are not drawn (the camera or the recogniser stalled)
ALERT_KINDS = (EventKind.WATCHLIST_HIT, EventKind.UNKNOWN_FACE)


def overlay_for(face: Face) -> FaceOverlay:
    decision = face.decision
    if decision.state is DecisionState.UNDECIDED:
        return FaceOverlay(face.box, "…", None, FaceState.UNDECIDED)
    if decision.person is None:  # score None against an empty gallery: "unknown", not "unknown -1.00"
        return FaceOverlay(face.box, "unknown", decision.score, FaceState.UNKNOWN)
    state = FaceState.WATCHLIST if decision.watchlist else FaceState.KNOWN
    return FaceOverlay(face.box, decision.person, decision.score, state)


def alert_for(event: SightingEvent) -> Alert:
    """The Alerts dock's entry for a watchlist hit or an unknown face."""
    if event.kind is EventKind.WATCHLIST_HIT:
        score = score_text(event.score, 2, none="")
        text = f"watchlist: {event.person}" + (f" ({score})" if score else "")
        kind = "watchlist"
    else:
        text, kind = "new unknown face", "unknown"
    return Alert(kind, event.camera, text, event.at, track_id=event.track, frame_id=event.frame_id, box=event.box)


class RecognitionFeed:
    """Polled by the GUI: the boxes to draw now, and the alerts raised since the last poll."""

    def __init__(self, recogniser: Recogniser, *, events: EventBus | None = None, max_pending: int = 1000) -> None:
        self.recogniser = recogniser
        if events is None:
            events = EventBus()
            EventFeed(events).attach_results(recogniser.service.add_listener)
        self._alerts = events.subscribe("console-alerts", capacity=max_pending, kinds=ALERT_KINDS)

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
        """Watchlist hits and, if asked, new unknown faces (each once per track) since the last call."""
        return [
            alert_for(event)
            for event in self._alerts.drain()
            if isinstance(event, SightingEvent) and (unknown_alerts or event.kind is EventKind.WATCHLIST_HIT)
        ]
