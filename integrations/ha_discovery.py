"""MQTT topics and Home Assistant's MQTT discovery payloads (pure: no client, no gallery).

Topics under the prefix P (default ``facestation``)::

    P/status                      online | offline (retained; the last will says offline)
    P/events/KIND                 every event as JSON (QoS 1, through the outbox)
    P/camera/CAM/last             the name last recognised on the camera (retained)
    P/camera/CAM/attributes       JSON: person, score, time, track, names in view (retained)
    P/camera/CAM/names            JSON list of the names in view now (retained)
    P/camera/CAM/crop             a recorded sighting's face crop, JPEG (optional)
    P/person/NAME/state           ON | OFF: present on some camera now (retained)
    P/person/NAME/attributes      JSON: camera, last_seen (retained)

CAM and NAME are slugs (lower case, ``a-z0-9_``). Discovery (under ``homeassistant`` by default) gives
one device for the station, a sensor per camera ("last recognised") and a binary sensor per enrolled
person (device class presence, with camera and last seen as attributes); all retained, and removed
(an empty retained payload) when the person is deleted.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from station.events import EventKind

MANUFACTURER = "FaceStation"
VERSION = "0.1.0"
ON, OFF = "ON", "OFF"
ONLINE, OFFLINE = "online", "offline"

# What Home Assistant's MQTT discovery needs of the payloads sent here (its documentation and schema):
# a state topic for a (binary) sensor, a unique_id for an entity to join the device registry, and a
# device with identifiers. ``check`` refuses a payload without them.
REQUIRED = {
    "sensor": ("state_topic", "unique_id", "name", "device", "availability"),
    "binary_sensor": ("state_topic", "unique_id", "name", "device", "availability", "payload_on", "payload_off"),
}
_OBJECT_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def slug(text: str) -> str:
    """``text`` as one topic level / object id: ASCII lower case, digits and underscores."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    out = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    return out or "x" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class Topics:
    prefix: str = "facestation"

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    def event(self, kind: EventKind | str) -> str:
        return f"{self.prefix}/events/{kind}"

    def camera(self, camera: str, leaf: str) -> str:
        return f"{self.prefix}/camera/{slug(camera)}/{leaf}"

    def person(self, name: str, leaf: str) -> str:
        return f"{self.prefix}/person/{slug(name)}/{leaf}"


def device(station_id: str) -> dict[str, Any]:
    return {
        "identifiers": [f"facestation_{station_id}"],
        "name": "FaceStation",
        "manufacturer": MANUFACTURER,
        "model": "face-recognition station",
        "sw_version": VERSION,
    }


def _availability(topics: Topics) -> list[dict[str, str]]:
    return [{"topic": topics.status, "payload_available": ONLINE, "payload_not_available": OFFLINE}]


def camera_config(topics: Topics, discovery: str, station_id: str, camera: str) -> tuple[str, dict[str, Any]]:
    """(config topic, payload) of the camera's "last recognised" sensor."""
    object_id = f"camera_{slug(camera)}"
    return f"{discovery}/sensor/facestation_{station_id}/{object_id}/config", {
        "name": f"{camera} last recognised",
        "unique_id": f"facestation_{station_id}_{object_id}",
        "object_id": f"facestation_{object_id}",
        "state_topic": topics.camera(camera, "last"),
        "json_attributes_topic": topics.camera(camera, "attributes"),
        "icon": "mdi:cctv",
        "availability": _availability(topics),
        "device": device(station_id),
    }


def person_config(
    topics: Topics, discovery: str, station_id: str, name: str, person_id: int
) -> tuple[str, dict[str, Any]]:
    """(config topic, payload) of the person's presence binary sensor (keyed by their id: a rename keeps it)."""
    object_id = f"person_{int(person_id)}"
    return f"{discovery}/binary_sensor/facestation_{station_id}/{object_id}/config", {
        "name": f"{name} present",
        "unique_id": f"facestation_{station_id}_{object_id}",
        "object_id": f"facestation_{slug(name)}",
        "state_topic": topics.person(name, "state"),
        "json_attributes_topic": topics.person(name, "attributes"),
        "payload_on": ON,
        "payload_off": OFF,
        "device_class": "presence",
        "availability": _availability(topics),
        "device": device(station_id),
    }


def check(component: str, topic: str, payload: dict[str, Any]) -> list[str]:
    """What Home Assistant would refuse in a discovery message (empty when none)."""
    problems = [f"missing {key}" for key in REQUIRED.get(component, ()) if not payload.get(key)]
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[-1] != "config" or parts[-4 if len(parts) == 5 else -3] != component:
        problems.append(f"topic {topic!r} is not <prefix>/{component}/[<node_id>/]<object_id>/config")
    if not all(_OBJECT_ID.match(p) for p in parts[-3:-1]):
        problems.append(f"node and object ids of {topic!r} must be [a-zA-Z0-9_-]+")
    dev = payload.get("device")
    if isinstance(dev, dict) and not (dev.get("identifiers") or dev.get("connections")):
        problems.append("device needs identifiers or connections")
    for entry in payload.get("availability") or []:
        if not isinstance(entry, dict) or not entry.get("topic"):
            problems.append("every availability entry needs a topic")
    return problems
