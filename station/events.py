"""The station's events, defined once: what every consumer (the console's Alerts dock, headless's JSON
lines, MQTT, webhooks, the API's event stream) is fed, in one JSON shape (:meth:`to_json`).

Four frozen records cross threads: a :class:`SightingEvent` (a face's track started, was named or
renamed, ended and was recorded; a watchlist hit; an unknown face), a :class:`CameraEvent` (online,
offline), a :class:`GalleryEvent` (enrol, rename, merge, delete, watchlist) and an :class:`AlarmEvent`
(an alarm raised, acknowledged, escalated, closed: storage/alarms.py). The kinds are a
StrEnum, so the JSON carries the same strings. Nothing here imports the engine or the gallery: the
adapters (station/event_feed.py) turn their facts into these records.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from vision.faces import DecisionState

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
Json = dict[str, JsonValue]
Box = tuple[float, float, float, float]

_seq = itertools.count(1)  # next() on a count is atomic under the GIL: one order for every event of a process


def _next_seq() -> int:
    return next(_seq)


class EventKind(StrEnum):
    SIGHTING_STARTED = "sighting_started"  # a new face track (named, unknown or not yet decided)
    SIGHTING_UPDATED = "sighting_updated"  # the track's first decision, or its person changed
    SIGHTING_ENDED = "sighting_ended"  # the track ended and its sighting was recorded (``sighting`` is its id)
    WATCHLIST_HIT = "watchlist_hit"  # a track was named as a person on the watchlist (once per track)
    UNKNOWN_FACE = "unknown_face"  # a track was decided as no one enrolled (once per track)
    CAMERA_ONLINE = "camera_online"
    CAMERA_OFFLINE = "camera_offline"
    PERSON_ENROLLED = "person_enrolled"  # a sample stored (``new`` says whether the person is new)
    PERSON_RENAMED = "person_renamed"
    PERSON_MERGED = "person_merged"  # ``previous`` merged into ``person``
    PERSON_DELETED = "person_deleted"
    WATCHLIST_CHANGED = "watchlist_changed"  # a person put on or taken off the watchlist
    ALARM_RAISED = "alarm_raised"  # a watchlist hit, a stranger or the station's trouble became an alarm
    ALARM_ACKNOWLEDGED = "alarm_acknowledged"  # by someone, with a note
    ALARM_ESCALATED = "alarm_escalated"  # left unacknowledged past its list's time
    ALARM_CLOSED = "alarm_closed"


SIGHTING_KINDS = frozenset(
    {
        EventKind.SIGHTING_STARTED,
        EventKind.SIGHTING_UPDATED,
        EventKind.SIGHTING_ENDED,
        EventKind.WATCHLIST_HIT,
        EventKind.UNKNOWN_FACE,
    }
)
CAMERA_KINDS = frozenset({EventKind.CAMERA_ONLINE, EventKind.CAMERA_OFFLINE})
GALLERY_KINDS = frozenset(
    {
        EventKind.PERSON_ENROLLED,
        EventKind.PERSON_RENAMED,
        EventKind.PERSON_MERGED,
        EventKind.PERSON_DELETED,
        EventKind.WATCHLIST_CHANGED,
    }
)

ALARM_KINDS = frozenset(
    {EventKind.ALARM_RAISED, EventKind.ALARM_ACKNOWLEDGED, EventKind.ALARM_ESCALATED, EventKind.ALARM_CLOSED}
)


# Where a track's identity stands: named (a person), unknown (compared, no one), undecided (no good look yet):
# the engine's own states (vision/faces.py), under the name the events' consumers know.
Decision = DecisionState


def iso(epoch: float) -> str:
    """ISO 8601 UTC to the millisecond with a Z, as every JSON line of the station writes times."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def crop_path(sighting_id: int) -> str:
    """The local API's path of a recorded sighting's face crop (JPEG)."""
    return f"/api/sightings/{int(sighting_id)}/crop"


def snapshot_path(sighting_id: int) -> str:
    """The local API's path of a recorded sighting's evidence snapshot (JPEG)."""
    return f"/api/sightings/{int(sighting_id)}/snapshot"


@dataclass(frozen=True, slots=True, kw_only=True)
class SightingEvent:
    """A face's track on one camera. ``score`` is None where the face was compared with no one.

    While the track is live, ``frame_id`` and ``box`` say where the face was (its crop is in the frame
    kept by the console's recent frames); once recorded (:attr:`EventKind.SIGHTING_ENDED`), ``sighting``
    is the sighting's id (None if the gallery could not record it) and the crop and snapshot are the
    API's paths. ``unknown`` is a stable label for an unknown face (its camera and track): the live
    engine has no cluster ids; the gallery's Unknown faces page groups them later.
    """

    kind: EventKind
    at: float  # epoch seconds the event happened (the frame's capture time, the track's end)
    camera: str
    track: str
    person: str | None
    person_id: int | None
    score: float | None
    decision: Decision
    watchlist: bool = False
    start: float | None = None
    end: float | None = None
    frame_id: int | None = None
    box: Box | None = None
    frames: int | None = None
    sighting: int | None = None
    has_crop: bool = False
    has_snapshot: bool = False
    previous: str | None = None  # the person the track was named before an update (None: none)
    seq: int = field(default_factory=_next_seq)

    @property
    def unknown(self) -> str | None:
        return None if self.decision is Decision.NAMED else f"{self.camera}/{self.track}"

    def to_json(self) -> Json:
        out: Json = {
            "event": str(self.kind),
            "seq": self.seq,
            "time": iso(self.at),
            "camera": self.camera,
            "track": self.track,
            "person": self.person,
            "person_id": self.person_id,
            "unknown": self.unknown,
            "decision": str(self.decision),
            "score": None if self.score is None else round(self.score, 4),
            "watchlist": self.watchlist,
            "start": None if self.start is None else iso(self.start),
            "end": None if self.end is None else iso(self.end),
        }
        if self.previous is not None:
            out["previous"] = self.previous
        if self.frame_id is not None:
            out["frame"] = self.frame_id
        if self.box is not None:
            out["box"] = [round(float(v), 1) for v in self.box]
        if self.frames is not None:
            out["frames"] = self.frames
        if self.kind is EventKind.SIGHTING_ENDED:
            sid = self.sighting
            out["sighting"] = sid
            out["crop"] = crop_path(sid) if sid is not None and self.has_crop else None
            out["snapshot"] = snapshot_path(sid) if sid is not None and self.has_snapshot else None
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraEvent:
    """A camera came online or went offline (``reason``: why, for offline)."""

    kind: EventKind
    at: float
    camera: str
    address: str = ""
    reason: str = ""
    seq: int = field(default_factory=_next_seq)

    @property
    def online(self) -> bool:
        return self.kind is EventKind.CAMERA_ONLINE

    def to_json(self) -> Json:
        out: Json = {
            "event": str(self.kind),
            "seq": self.seq,
            "time": iso(self.at),
            "camera": self.camera,
            "address": self.address,
        }
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class GalleryEvent:
    """The enrolled gallery changed. ``person`` is the person's name after the change (the deleted one's
    for a delete, the survivor's for a merge); ``previous`` the name before (a rename, the merged-away
    person). ``actor`` is who did it, as the audit log names them."""

    kind: EventKind
    at: float
    person: str
    person_id: int | None
    actor: str
    previous: str | None = None
    previous_id: int | None = None
    new: bool = False  # an enrolment that created the person
    watchlist: bool | None = None  # for WATCHLIST_CHANGED: on or off
    details: tuple[tuple[str, JsonValue], ...] = ()  # the audit entry's other facts (counts, model)
    seq: int = field(default_factory=_next_seq)

    def to_json(self) -> Json:
        out: Json = {
            "event": str(self.kind),
            "seq": self.seq,
            "time": iso(self.at),
            "person": self.person,
            "person_id": self.person_id,
            "actor": self.actor,
        }
        if self.previous is not None:
            out["previous"] = self.previous
            out["previous_id"] = self.previous_id
        if self.kind is EventKind.PERSON_ENROLLED:
            out["new"] = self.new
        if self.watchlist is not None:
            out["watchlist"] = self.watchlist
        if self.details:
            out["details"] = dict(self.details)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmEvent:
    """An alarm's state changed (storage/alarms.py; published once the change committed). ``alarm_kind`` is
    watchlist, stranger or system; ``watchlist`` the list's name; ``actor`` who raised, acknowledged or closed
    it, ``note`` what they wrote."""

    kind: EventKind
    at: float
    alarm: int
    alarm_kind: str
    state: str
    priority: int
    camera: str = ""
    track: str = ""
    watchlist: str = ""
    person: str | None = None
    person_id: int | None = None
    subject: str = ""
    actor: str = ""
    note: str = ""
    seq: int = field(default_factory=_next_seq)

    def to_json(self) -> Json:
        out: Json = {
            "event": str(self.kind),
            "seq": self.seq,
            "time": iso(self.at),
            "alarm": self.alarm,
            "kind": self.alarm_kind,
            "state": self.state,
            "priority": self.priority,
            "camera": self.camera,
            "track": self.track,
            "watchlist": self.watchlist,
            "person": self.person,
            "person_id": self.person_id,
            "actor": self.actor,
        }
        if self.subject:
            out["subject"] = self.subject
        if self.note:
            out["note"] = self.note
        return out


Event = SightingEvent | CameraEvent | GalleryEvent | AlarmEvent


def event_camera(event: Event) -> str:
    """The camera an event is about ("" for a gallery change): the outbox keeps each camera's events in order."""
    return "" if isinstance(event, GalleryEvent) else event.camera


def event_person(event: Event) -> str | None:
    """The person an event names, if any (for the webhooks' person filters)."""
    return None if isinstance(event, CameraEvent) else event.person


def is_watchlist(event: Event) -> bool:
    """Whether the event concerns a person on the watchlist (for the webhooks' "watchlist only")."""
    if isinstance(event, SightingEvent):
        return event.watchlist
    if isinstance(event, AlarmEvent):
        return event.alarm_kind == "watchlist"
    return isinstance(event, GalleryEvent) and bool(event.watchlist)


def details_of(values: Mapping[str, object]) -> tuple[tuple[str, JsonValue], ...]:
    """An audit entry's plain values (numbers, text, flags) as a GalleryEvent's ``details``, sorted."""
    keep: list[tuple[str, JsonValue]] = []
    for key, value in sorted(values.items()):
        if isinstance(value, (str, int, float, bool)) or value is None:
            keep.append((str(key), value))
    return tuple(keep)
