"""Where the station's events come from: the receiver (cameras online and offline), the recogniser
(sightings, through station/sighting_events.py) and the gallery's committed audit entries (enrol,
rename, merge, delete, watchlist). :class:`EventFeed` connects those sources to one :class:`EventBus`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from network.frames import CameraEvent as ReceiverCameraEvent
from station.event_bus import EventBus
from station.events import AlarmEvent, CameraEvent, EventKind, GalleryEvent, details_of
from station.sighting_events import SightingEvents
from storage.gallery import Gallery
from storage.records import AuditEntry
from vision.results import FrameResult
from vision.tracker import TrackRecord

log = logging.getLogger(__name__)

# Audit actions (storage/gallery.py) that change who is enrolled, and the event each one is.
GALLERY_ACTIONS = {
    "enrol": EventKind.PERSON_ENROLLED,
    "promote": EventKind.PERSON_ENROLLED,
    "rename": EventKind.PERSON_RENAMED,
    "merge": EventKind.PERSON_MERGED,
    "delete": EventKind.PERSON_DELETED,
    "watchlist": EventKind.WATCHLIST_CHANGED,
}


# Audit actions of the alarm workflow (storage/alarms.py): alarm state changes are events too.
ALARM_ACTIONS = {
    "alarm_raised": EventKind.ALARM_RAISED,
    "alarm_acknowledged": EventKind.ALARM_ACKNOWLEDGED,
    "alarm_escalated": EventKind.ALARM_ESCALATED,
    "alarm_closed": EventKind.ALARM_CLOSED,
}


def _details(entry: AuditEntry) -> dict[str, Any] | None:
    """An audit entry's details as a JSON object; None where they are not one."""
    try:
        details = json.loads(entry.details)
    except ValueError:
        return None
    return details if isinstance(details, dict) else None


def alarm_event(entry: AuditEntry) -> AlarmEvent | None:
    """The event of an alarm's audit entry; None for any other entry."""
    kind = ALARM_ACTIONS.get(entry.action)
    if kind is None:
        return None
    details = _details(entry)
    if details is None or _int(details.get("alarm_id")) is None:
        return None
    by = _text(details.get("by"))
    person = details.get("person")
    return AlarmEvent(
        kind=kind,
        at=entry.time,
        alarm=int(details["alarm_id"]),
        alarm_kind=_text(details.get("kind")),
        state=_text(details.get("state")),
        priority=_int(details.get("priority")) or 0,
        camera=_text(details.get("camera")),
        track=_text(details.get("track")),
        watchlist=_text(details.get("list")),
        person=person if isinstance(person, str) else None,
        person_id=_int(details.get("person_id")),
        subject=_text(details.get("subject")),
        actor=by or entry.actor,
        note=_text(details.get("note")),
    )


def camera_event(event: ReceiverCameraEvent) -> CameraEvent:
    kind = EventKind.CAMERA_ONLINE if event.state == "online" else EventKind.CAMERA_OFFLINE
    return CameraEvent(kind=kind, at=event.at, camera=event.camera, address=event.address, reason=event.reason)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


_NAME_KEYS = frozenset({"person", "person_id", "new_person", "on", "to", "from", "into", "into_id", "from_id"})


def _names(kind: EventKind, details: dict[str, object]) -> tuple[str, int | None, str | None, int | None]:
    """(person, person_id, previous, previous_id) of an audit entry's details."""
    if kind is EventKind.PERSON_RENAMED:
        pid = _int(details.get("person_id"))
        return _text(details.get("to")), pid, _text(details.get("from")), pid
    if kind is EventKind.PERSON_MERGED:
        into, source = _int(details.get("into_id")), _int(details.get("from_id"))
        return _text(details.get("into")), into, _text(details.get("from")), source
    return _text(details.get("person")), _int(details.get("person_id")), None, None


def gallery_event(entry: AuditEntry) -> GalleryEvent | None:
    """The event of an audit entry that changed who is enrolled; None for any other entry."""
    kind = GALLERY_ACTIONS.get(entry.action)
    if kind is None:
        return None
    details = _details(entry)
    if details is None:
        return None
    person, person_id, previous, previous_id = _names(kind, details)
    on = details.get("on")
    return GalleryEvent(
        kind=kind,
        at=entry.time,
        actor=entry.actor,
        person=person,
        person_id=person_id,
        previous=previous,
        previous_id=previous_id,
        new=bool(details.get("new_person", entry.action == "promote")),
        watchlist=bool(on) if kind is EventKind.WATCHLIST_CHANGED and on is not None else None,
        details=details_of({k: v for k, v in details.items() if k not in _NAME_KEYS}),
    )


class CameraSource(Protocol):
    def add_event_listener(self, listener: Callable[[ReceiverCameraEvent], None]) -> None: ...


class EventFeed:
    """Publishes the station's facts on ``bus``; attach each source once."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.sightings = SightingEvents(bus.publish)

    def attach_receiver(self, receiver: CameraSource) -> None:
        receiver.add_event_listener(lambda ev: self.bus.publish(camera_event(ev)))

    def attach_gallery(self, gallery: Gallery) -> None:
        gallery.commits.on_recorded(self.sightings.on_recorded)
        gallery.commits.on_audited(self._audited)

    def attach_results(self, add_listener: Callable[[Callable[[FrameResult], None]], None]) -> None:
        """``add_listener`` is the recognition service's (``Recogniser.service.add_listener``)."""
        add_listener(self.sightings.on_result)

    def track_listener(self) -> Callable[[TrackRecord], None]:
        """For ``Recogniser.add_sighting_listener`` (ended tracks, once handed to the gallery's writer)."""
        return self.sightings.on_ended

    def _audited(self, entry: AuditEntry) -> None:
        event = gallery_event(entry) or alarm_event(entry)
        if event is not None:
            self.bus.publish(event)
