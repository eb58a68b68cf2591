"""The recognition engine's facts as sighting events: the one place that reads ``FaceResult`` and
``TrackRecord`` fields for events (so an engine change to them is one edit here).

Per analysed frame (``RecognitionService.add_listener``) each face's track is looked up in a bounded
dict: its first frame is :attr:`~EventKind.SIGHTING_STARTED`; a first decision or a change of person is
:attr:`~EventKind.SIGHTING_UPDATED`; a track named as someone on the watchlist gives one
:attr:`~EventKind.WATCHLIST_HIT`, and a track decided as no one (for ``UNKNOWN_AFTER_FRAMES`` frames)
one :attr:`~EventKind.UNKNOWN_FACE`. An ended track (``Recogniser.add_sighting_listener``) and the
gallery's report of the row it committed (``Gallery.commits.on_recorded``) arrive in either order on
different threads; whichever comes second publishes :attr:`~EventKind.SIGHTING_ENDED`, with the
sighting's id.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from station.events import Decision, Event, EventKind, SightingEvent
from storage.records import RecordedSighting
from vision.matcher import NO_SCORE
from vision.results import FaceResult, FrameResult
from vision.tracker import TrackRecord

log = logging.getLogger(__name__)

MAX_TRACKS = 10_000  # live tracks remembered (a track whose end never came is forgotten, oldest first)
UNKNOWN_AFTER_FRAMES = 3  # an unknown face must be seen this often before it is announced (as the console did)

Key = tuple[str, str]  # (camera, track id)
V = TypeVar("V")


def score_of(score: float | None) -> float | None:
    """The engine's score, or None where the face was compared with no one (``NO_SCORE``, an empty gallery)."""
    if score is None or score <= NO_SCORE:
        return None
    return float(score)


def decision_of(face: FaceResult) -> Decision:
    """Where the face's track stands (the engine rewrite gives this as a field of its own)."""
    if not face.decided:
        return Decision.UNDECIDED
    return Decision.UNKNOWN if face.person is None else Decision.NAMED


@dataclass
class _Live:
    """What is known of one live track (owned by the adapter, under its lock)."""

    start: float
    person: str | None
    person_id: int | None
    decision: Decision
    watchlist: bool = False
    unknown_frames: int = 0
    announced: bool = False  # its watchlist hit or unknown face has been published


class SightingEvents:
    """Turns frame results, ended tracks and recorded rows into sighting events; thread-safe, never blocks."""

    def __init__(self, publish: Callable[[Event], None], *, max_tracks: int = MAX_TRACKS) -> None:
        self._publish = publish
        self._max = max_tracks
        self._lock = threading.Lock()
        self._live: OrderedDict[Key, _Live] = OrderedDict()
        self._ended: OrderedDict[Key, SightingEvent] = OrderedDict()  # awaiting the row's id
        self._recorded: OrderedDict[Key, RecordedSighting] = OrderedDict()  # the id came first

    # ------------------------------------------------------------ per frame

    def on_result(self, result: FrameResult) -> None:
        """A recognised frame (on a recognition thread)."""
        out: list[Event] = []
        with self._lock:
            for face in result.faces:
                out.extend(self._face(result, face))
        for event in out:
            self._publish(event)

    def _face(self, result: FrameResult, face: FaceResult) -> list[Event]:
        key = (result.camera, face.track_id)
        decision = decision_of(face)
        live = self._live.get(key)
        out: list[Event] = []
        if live is None:
            live = _Live(result.captured_at, face.person, face.person_id, decision, face.watchlist)
            self._remember(self._live, key, live, self._max)
            out.append(self._event(EventKind.SIGHTING_STARTED, result, face, live))
        elif decision is not live.decision or face.person_id != live.person_id:
            previous = live.person
            live.person, live.person_id, live.decision = face.person, face.person_id, decision
            live.watchlist = face.watchlist
            out.append(self._event(EventKind.SIGHTING_UPDATED, result, face, live, previous=previous))
        live.unknown_frames = live.unknown_frames + 1 if decision is Decision.UNKNOWN else 0
        if not live.announced:
            kind = self._announcement(live)
            if kind is not None:
                live.announced = True
                out.append(self._event(kind, result, face, live))
        return out

    @staticmethod
    def _announcement(live: _Live) -> EventKind | None:
        if live.decision is Decision.NAMED and live.watchlist:
            return EventKind.WATCHLIST_HIT
        if live.decision is Decision.UNKNOWN and live.unknown_frames >= UNKNOWN_AFTER_FRAMES:
            return EventKind.UNKNOWN_FACE
        return None

    @staticmethod
    def _event(
        kind: EventKind, result: FrameResult, face: FaceResult, live: _Live, *, previous: str | None = None
    ) -> SightingEvent:
        return SightingEvent(
            kind=kind,
            at=result.captured_at,
            camera=result.camera,
            track=face.track_id,
            person=live.person,
            person_id=live.person_id,
            score=score_of(face.score),
            decision=live.decision,
            watchlist=live.watchlist,
            start=live.start,
            frame_id=result.frame_id,
            box=tuple(float(v) for v in face.box),  # type: ignore[arg-type]
            previous=previous,
        )

    # ------------------------------------------------------------ track end

    def on_ended(self, record: TrackRecord) -> None:
        """An ended track, handed to the gallery's writer (on a recognition thread)."""
        key = (record.camera, record.track_id)
        with self._lock:
            live = self._live.pop(key, None)
            event = SightingEvent(
                kind=EventKind.SIGHTING_ENDED,
                at=float(record.end),
                camera=record.camera,
                track=record.track_id,
                person=record.person,
                person_id=record.person_id,
                score=score_of(record.score),
                decision=_ended_decision(record),
                watchlist=bool(live is not None and live.watchlist and record.person_id == live.person_id),
                start=float(record.start),
                end=float(record.end),
                box=tuple(float(v) for v in record.box),  # type: ignore[arg-type]
                frames=int(record.frames),
            )
            row = self._recorded.pop(key, None)
            if row is None:
                self._remember(self._ended, key, event, self._max)
                return
        self._publish(_with_row(event, row))

    def on_recorded(self, rows: Sequence[RecordedSighting]) -> None:
        """The sightings the gallery's writer committed (or failed to), on the writer thread."""
        out: list[Event] = []
        with self._lock:
            for row in rows:
                key = (row.camera, row.track)
                ended = self._ended.pop(key, None)
                if ended is None:
                    self._remember(self._recorded, key, row, self._max)
                else:
                    out.append(_with_row(ended, row))
        for event in out:
            self._publish(event)

    def live_tracks(self) -> int:
        with self._lock:
            return len(self._live)

    @staticmethod
    def _remember(table: OrderedDict[Key, V], key: Key, value: V, limit: int = MAX_TRACKS) -> None:
        table[key] = value
        if len(table) > limit:
            table.popitem(last=False)


def _ended_decision(record: TrackRecord) -> Decision:
    if record.embeddings == 0 and record.person is None:
        return Decision.UNDECIDED
    return Decision.UNKNOWN if record.person is None else Decision.NAMED


def _with_row(event: SightingEvent, row: RecordedSighting) -> SightingEvent:
    if row.id is None:
        log.warning("sighting of %s track %s not recorded: its end goes out without an id", row.camera, row.track)
    return replace(event, sighting=row.id, has_crop=row.has_crop, has_snapshot=row.has_snapshot)
