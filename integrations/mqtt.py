"""MQTT: the station's events, per-camera and per-person state, and Home Assistant discovery, on a
broker (mosquitto at a site, amqtt in the tests), with paho-mqtt 2.

Events go out at QoS 1 through the durable outbox (a broker outage or a restart loses none within its
bound); state (names in view, presence, last recognised, discovery) is retained and published directly,
and all of it again on every (re)connection, so a broker that lost it, or a Home Assistant that
restarted (its ``homeassistant/status`` birth message), gets the current picture. The link connects in
the background, retries with backoff (1 s doubling to 30 s) when the broker is down at start, lost, or
refuses the credentials, and says so in one log line per outage. A last will marks the station offline.
Topics and payloads: integrations/ha_discovery.py.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from integrations import ha_discovery as ha
from integrations.delivery import Backoff, Deliverer, Outcome
from integrations.presence import Presence
from station.event_bus import EventBus, Subscription
from station.events import Event, EventKind, GalleryEvent, SightingEvent, event_camera, event_person, iso
from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.outbox import Outbox, OutboxEntry, OutboxItem

log = logging.getLogger(__name__)

DESTINATION = "mqtt"
ACK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int = 1883
    prefix: str = "facestation"
    username: str = ""
    password: str = field(default="", repr=False)
    tls: bool = False
    discovery_prefix: str = "homeassistant"  # "": no Home Assistant discovery
    crops: bool = False
    keepalive_s: int = 30
    reconnect_max_s: int = 30

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class MqttLink:
    """One paho client: background connection, reconnection with backoff, the last will, and publishing."""

    def __init__(self, config: MqttConfig, station_id: str, on_connected: Callable[[], None] | None = None) -> None:
        self.config = config
        self.topics = ha.Topics(config.prefix)
        self.connected = threading.Event()
        self._on_connected = on_connected
        self._down_since: float | None = time.monotonic()
        self._said_down = False
        self.refusals = 0
        self.connections = 0
        self._stopping = False
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"facestation-{station_id}", clean_session=True)
        client.will_set(self.topics.status, ha.OFFLINE, qos=1, retain=True)
        if config.username:
            client.username_pw_set(config.username, config.password)
        if config.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(1, config.reconnect_max_s)
        client.on_connect = self._connect
        client.on_disconnect = self._disconnect
        client.on_connect_fail = self._connect_fail
        client.on_message = self._message
        self.client = client

    def start(self) -> None:
        self.client.connect_async(self.config.host, self.config.port, self.config.keepalive_s)
        self.client.loop_start()

    def stop(self, timeout: float = 2.0) -> None:
        """Say offline (retained) if connected, then disconnect and end the network thread."""
        self._stopping = True
        if self.connected.is_set():
            info = self.client.publish(self.topics.status, ha.OFFLINE, qos=1, retain=True)
            _wait(info, timeout)
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1, retain=retain)

    # ---------------------------------------------------------- callbacks (paho's network thread)

    def _connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.refusals += 1
            self._down(f"the broker refused the connection: {reason}")
            return
        self.connections += 1
        client.publish(self.topics.status, ha.ONLINE, qos=1, retain=True)
        if self.config.discovery_prefix:
            client.subscribe(f"{self.config.discovery_prefix}/status", qos=1)
        if self._said_down:
            log.info("MQTT: connected to %s again", self.config.address)
        else:
            log.info("MQTT: connected to %s", self.config.address)
        self._said_down = False
        self._down_since = None
        self.connected.set()
        if self._on_connected is not None:
            self._on_connected()

    def _disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._stopping:
            self._down_since = time.monotonic()
            self._down(f"lost the connection ({reason})")

    def _connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._down("cannot reach the broker")

    def _down(self, why: str) -> None:
        if not self._said_down:
            self._said_down = True
            log.warning("MQTT %s: %s; reconnecting with backoff (events wait in the outbox)", self.config.address, why)

    def _message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        # Home Assistant's birth message: it restarted and wants the discovery (and state) again.
        if message.topic.endswith("/status") and message.payload == b"online" and self._on_connected is not None:
            self._on_connected()


def _wait(info: paho.MQTTMessageInfo, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not info.is_published():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class MqttBridge:
    """Events to the outbox (and from there to the broker), state and discovery straight to the broker."""

    def __init__(self, config: MqttConfig, outbox: Outbox, gallery: Gallery, station_id: str) -> None:
        self.config = config
        self.outbox = outbox
        self.gallery = gallery
        self.station_id = station_id
        self.topics = ha.Topics(config.prefix)
        self.presence = Presence()
        self.link = MqttLink(config, station_id, on_connected=self._republish_soon)
        self.deliverer = Deliverer(
            outbox, DESTINATION, self._send, label=f"MQTT {config.address}", backoff=Backoff(cap=10.0),
            ready=self.link.connected.is_set,
        )  # fmt: skip
        self._lock = threading.RLock()  # the state and what discovery has published
        self._persons: dict[int, str] = {}  # person id -> name announced by discovery
        self._cameras: set[str] = set()
        self._subscription: Subscription | None = None
        self._bus: EventBus | None = None

    def start(self, bus: EventBus) -> MqttBridge:
        self.link.start()
        self.deliverer.start()
        self._bus = bus
        self._subscription = bus.listen("mqtt", self.on_event, capacity=5000)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._bus is not None and self._subscription is not None:
            self._bus.unsubscribe(self._subscription, timeout)
        self.deliverer.stop(timeout)
        self.link.stop()

    # ---------------------------------------------------------------- events

    def on_event(self, event: Event) -> None:
        """Queue the event for the broker (committed to the outbox first), then publish what it changed."""
        try:
            self.outbox.put(self._items(event))
        except GalleryError as exc:
            log.error("MQTT: event %s (%s) not queued: %s", event.seq, event.kind, exc)
        with self._lock:
            changes = self.presence.apply(event)
            if isinstance(event, GalleryEvent):
                self._sync_persons()
            for camera in changes.cameras - self._cameras:
                self._announce_camera(camera)
            if self.link.connected.is_set():
                for person in changes.persons:
                    self._publish_person(person)
                for camera in changes.cameras:
                    self._publish_camera(camera)

    def _items(self, event: Event) -> list[OutboxItem]:
        camera, person = event_camera(event), event_person(event) or ""
        kind = str(event.kind)
        items = [OutboxItem(DESTINATION, kind, json_bytes(event.to_json()), camera, self.topics.event(kind), person)]
        if self.config.crops and isinstance(event, SightingEvent) and event.kind is EventKind.SIGHTING_ENDED:
            crop = self.gallery.crop(event.sighting) if event.sighting is not None and event.has_crop else None
            if crop:
                items.append(OutboxItem(DESTINATION, "crop", crop, camera, self.topics.camera(camera, "crop"), person))
        return items

    def _send(self, entries: Sequence[OutboxEntry]) -> Outcome:
        """Publish in order at QoS 1; delivered once the broker acknowledged each."""
        infos = []
        for entry in entries:
            if not self.link.connected.is_set():
                break
            info = self.link.publish(entry.topic, entry.payload)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                break
            infos.append((entry.id, info))
        done: list[int] = []
        for entry_id, info in infos:
            if not _wait(info, ACK_TIMEOUT_S):
                break
            done.append(entry_id)
        error = None if len(done) == len(entries) else "not acknowledged (the connection dropped)"
        return Outcome(tuple(done), error)

    # ----------------------------------------------------------------- state

    def _republish_soon(self) -> None:
        """On (re)connection or Home Assistant's birth message: everything again, off paho's thread."""
        threading.Thread(target=self.republish, name="mqtt-republish", daemon=True).start()

    def republish(self) -> None:
        try:
            with self._lock:
                self._persons.clear()
                self._sync_persons()
                for camera in sorted({c.name for c in self.gallery.cameras()} | self._cameras):
                    self._announce_camera(camera)
                    self._publish_camera(camera)
        except GalleryError as exc:
            log.warning("MQTT: the state could not be read from the gallery: %s", exc)

    def _retain(self, topic: str, payload: bytes | str) -> None:
        if self.link.connected.is_set():
            self.link.publish(topic, payload, retain=True)

    def _sync_persons(self) -> None:
        """Discovery for every enrolled person; a deleted (or renamed) one's retained topics removed."""
        current = {p.id: p.name for p in self.gallery.persons()}
        for pid, name in list(self._persons.items()):
            if current.get(pid) != name:
                self._remove_person(pid, name)
        for pid, name in current.items():
            if pid not in self._persons:
                self._persons[pid] = name
                if self.config.discovery_prefix:
                    topic, payload = ha.person_config(
                        self.topics, self.config.discovery_prefix, self.station_id, name, pid
                    )
                    self._retain(topic, json_bytes(payload))
                self._publish_person(name)

    def _remove_person(self, pid: int, name: str) -> None:
        del self._persons[pid]
        self.presence.forget(name)
        if self.config.discovery_prefix:
            topic, _ = ha.person_config(self.topics, self.config.discovery_prefix, self.station_id, name, pid)
            self._retain(topic, b"")
        self._retain(self.topics.person(name, "state"), b"")
        self._retain(self.topics.person(name, "attributes"), b"")

    def _publish_person(self, name: str) -> None:
        seen = self.presence.last_seen.get(name)
        self._retain(self.topics.person(name, "state"), ha.ON if self.presence.present(name) else ha.OFF)
        attributes = {"person": name, "camera": None if seen is None else seen.camera,
                      "last_seen": None if seen is None else iso(seen.at)}  # fmt: skip
        self._retain(self.topics.person(name, "attributes"), json_bytes(attributes))

    def _announce_camera(self, camera: str) -> None:
        if not camera:
            return
        self._cameras.add(camera)
        if self.config.discovery_prefix:
            topic, payload = ha.camera_config(self.topics, self.config.discovery_prefix, self.station_id, camera)
            self._retain(topic, json_bytes(payload))

    def _publish_camera(self, camera: str) -> None:
        names = self.presence.in_view(camera)
        self._retain(self.topics.camera(camera, "names"), json_bytes(names))
        last = self.presence.last_named.get(camera)
        if last is None:
            return
        person, seen = last
        self._retain(self.topics.camera(camera, "last"), person)
        attributes = {"person": person, "time": iso(seen.at), "score": seen.score, "track": seen.track,
                      "in_view": names}  # fmt: skip
        self._retain(self.topics.camera(camera, "attributes"), json_bytes(attributes))
