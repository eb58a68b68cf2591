"""Watchlist hits become alarms: each list's own strictness and cameras decide whether a sighting raises that
list's alarm. Fed by the station's event bus (station/events.py) on a listener thread of its own.

A :attr:`~EventKind.WATCHLIST_HIT` (a track's first naming of someone on any list) is checked against each
of the person's lists: the list must raise alarms (its ``queue`` action), apply to the camera, and the score
must reach the list's strictness (never under the station's threshold: the engine names nobody below it). A
track whose live score did not reach a stricter list is checked again when it ends, with its template's
score. The ended track's recorded sighting is linked to its alarms (their crop and evidence snapshot), and an
unknown face's is handed to the stranger rules (station/stranger_rules.py).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from station.events import Decision, Event, EventKind, SightingEvent
from station.stranger_rules import StrangerRules
from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.watchlist_records import ListAction, Watchlist

log = logging.getLogger(__name__)

KINDS = (EventKind.WATCHLIST_HIT, EventKind.SIGHTING_ENDED)  # what the rules listen to
MAX_TRACKS = 10_000  # (camera, track) pairs remembered as alarmed, oldest forgotten first


class AlarmRules:
    """Decides which watchlist hits raise which list's alarm; see the module docstring."""

    def __init__(
        self, gallery: Gallery, threshold: Callable[[], float], *, strangers: StrangerRules | None = None
    ) -> None:
        self.gallery = gallery
        self._threshold = threshold
        self._strangers = strangers
        self._lock = threading.Lock()
        self._revision = -1
        self._lists: dict[int, Watchlist] = {}
        self._members: dict[int, tuple[int, ...]] = {}
        self._alarmed: OrderedDict[tuple[str, str], set[int]] = OrderedDict()  # track -> list ids alarmed
        self.raised = 0  # new alarms (for stats and tests)

    def on_event(self, event: Event) -> None:
        """A bus listener: one event at a time, on the rules' own thread."""
        if not isinstance(event, SightingEvent):
            return
        try:
            if event.kind is EventKind.WATCHLIST_HIT:
                self._check(event)
            elif event.kind is EventKind.SIGHTING_ENDED:
                self._ended(event)
        except GalleryError as exc:  # a full or closing gallery: said once per event, the station goes on
            log.warning("alarm rules: %s track %s: %s", event.camera, event.track, exc)

    # ----------------------------------------------------------------- lists

    def lists_for(self, person_id: int) -> list[Watchlist]:
        """The lists a person is on, from a copy reloaded when the gallery's revision changes."""
        revision = self.gallery.revision()
        with self._lock:
            if revision != self._revision:
                self._lists = {w.id: w for w in self.gallery.watchlists.all()}
                self._members = self.gallery.watchlists.memberships()
                self._revision = revision
            return [self._lists[i] for i in self._members.get(person_id, ()) if i in self._lists]

    def due(self, event: SightingEvent) -> list[Watchlist]:
        """The lists whose alarm this sighting raises: they alarm, apply to its camera, its score reaches them."""
        if event.person_id is None or event.score is None:
            return []
        station = self._threshold()
        return [
            w
            for w in self.lists_for(event.person_id)
            if w.does(ListAction.QUEUE) and w.applies_to(event.camera) and event.score >= w.strictness(station)
        ]

    # ---------------------------------------------------------------- events

    def _check(self, event: SightingEvent) -> None:
        key = (event.camera, event.track)
        for w in self.due(event):
            with self._lock:
                done = self._alarmed.setdefault(key, set())
                if w.id in done:
                    continue
                done.add(w.id)
                while len(self._alarmed) > MAX_TRACKS:
                    self._alarmed.popitem(last=False)
            assert event.person_id is not None
            result = self.gallery.alarms.raise_watchlist(
                w,
                person_id=event.person_id,
                camera=event.camera,
                track=event.track,
                score=event.score,
                at=event.at,
                frame_id=event.frame_id,
                box=event.box,
                sighting_id=event.sighting,
            )
            self.raised += int(result.new)

    def _ended(self, event: SightingEvent) -> None:
        if event.decision is Decision.NAMED:
            self._check(event)  # its template's score may reach a stricter list the live one did not
        key = (event.camera, event.track)
        with self._lock:
            alarmed = key in self._alarmed
        if alarmed and event.sighting is not None:
            self.gallery.alarms.link_sighting(event.camera, event.track, event.sighting)
        if event.decision is Decision.UNKNOWN and self._strangers is not None and event.sighting is not None:
            self._strangers.consider(event.camera, event.track, event.sighting, event.at)
