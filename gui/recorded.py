"""Which live track became which recorded sighting, as the station's event bus says (a
:attr:`~station.events.EventKind.SIGHTING_ENDED` event carries the sighting's id once the gallery's writer
committed it). The console opens an alarm's sighting from here the moment it is recorded, instead of asking
the gallery again and again. Drained on the GUI thread's timer; bounded."""

from __future__ import annotations

from collections import OrderedDict

from station.event_bus import EventBus, Subscription
from station.events import EventKind, SightingEvent

MAX_KEPT = 5000  # tracks remembered, oldest forgotten first


class RecordedSightings:
    """(camera, track) -> sighting id, from the bus; ``bus`` None (a console without a station): none known."""

    def __init__(self, bus: EventBus | None) -> None:
        self._bus = bus
        self._sub: Subscription | None = (
            None if bus is None else bus.subscribe("console-sightings", kinds=[EventKind.SIGHTING_ENDED])
        )
        self._ids: OrderedDict[tuple[str, str], int] = OrderedDict()

    def drain(self) -> int:
        """Take what the bus delivered since the last call; returns how many sightings were new."""
        if self._sub is None:
            return 0
        n = 0
        for event in self._sub.drain():
            if isinstance(event, SightingEvent) and event.sighting is not None:
                self._ids[(event.camera, event.track)] = event.sighting
                n += 1
        while len(self._ids) > MAX_KEPT:
            self._ids.popitem(last=False)
        return n

    def of(self, camera: str, track: str) -> int | None:
        """The recorded sighting of a camera's track, once the bus said so."""
        return self._ids.get((camera, track))

    def close(self) -> None:
        if self._bus is not None and self._sub is not None:
            self._bus.unsubscribe(self._sub)
            self._sub = None
