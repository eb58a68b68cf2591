"""Who is where now, from the events (pure state, no client): the names in view per camera, the last
name recognised per camera, and per person whether they are present (a live track of theirs on some
camera) with the camera and time they were last seen. The MQTT bridge publishes what changed."""

from __future__ import annotations

from dataclasses import dataclass

from station.events import CameraEvent, Decision, Event, EventKind, SightingEvent


@dataclass(frozen=True)
class Seen:
    camera: str
    at: float
    score: float | None = None
    track: str = ""


@dataclass(frozen=True)
class Changes:
    persons: frozenset[str]
    cameras: frozenset[str]


class Presence:
    """Apply events in order (one thread); read the state."""

    def __init__(self) -> None:
        self._live: dict[tuple[str, str], str] = {}  # (camera, track) -> person named on it
        self.last_seen: dict[str, Seen] = {}  # person -> where and when last seen
        self.last_named: dict[str, tuple[str, Seen]] = {}  # camera -> (person, when)

    def apply(self, event: Event) -> Changes:
        if isinstance(event, SightingEvent):
            return self._sighting(event)
        if isinstance(event, CameraEvent) and event.kind is EventKind.CAMERA_OFFLINE:
            gone = [k for k in self._live if k[0] == event.camera]
            persons = frozenset(self._live.pop(k) for k in gone)
            return Changes(persons, frozenset({event.camera}))
        return Changes(frozenset(), frozenset())

    def _sighting(self, event: SightingEvent) -> Changes:
        key = (event.camera, event.track)
        before = self._live.get(key)
        if event.kind is EventKind.SIGHTING_ENDED:
            self._live.pop(key, None)
        elif event.decision is Decision.NAMED and event.person:
            self._live[key] = event.person
        else:
            self._live.pop(key, None)
        named = event.person if event.decision is Decision.NAMED and event.person else None
        if named is not None:
            seen = Seen(event.camera, event.end or event.at, event.score, event.track)
            self.last_seen[named] = seen
            self.last_named[event.camera] = (named, seen)
        persons = {p for p in (before, named) if p}
        return Changes(frozenset(persons), frozenset({event.camera}))

    def present(self, person: str) -> bool:
        return person in self._live.values()

    def in_view(self, camera: str) -> list[str]:
        return sorted({p for (cam, _), p in self._live.items() if cam == camera})

    def forget(self, person: str) -> None:
        """A deleted (or renamed) person: drop what is known of them."""
        self.last_seen.pop(person, None)
        for key in [k for k, p in self._live.items() if p == person]:
            del self._live[key]
