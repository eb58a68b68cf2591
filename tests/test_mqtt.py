"""MQTT through the durable outbox to real brokers on loopback (amqtt always; mosquitto where it is
installed): events at QoS 1, presence and names in view, Home Assistant discovery (its required fields
checked, retained, removed on delete), and the failures: the broker down at start, lost mid-run, and
refusing the credentials."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from integrations import ha_discovery as ha
from integrations.mqtt import MqttBridge, MqttConfig
from station.event_bus import EventBus
from station.event_feed import EventFeed
from station.events import CameraEvent, Decision, EventKind, SightingEvent
from storage.gallery import Gallery
from storage.outbox import Outbox
from tests.mqtt_broker import MOSQUITTO, Broker, Message, Subscriber, free_port
from tests.test_storage import unit

STATION = "abc123def456"
P = "facestation"


def sighting(kind: EventKind, person: str | None, track: str = "1", camera: str = "Front door") -> SightingEvent:
    return SightingEvent(
        kind=kind,
        at=time.time(),
        camera=camera,
        track=track,
        person=person,
        person_id=None,
        score=0.71 if person else None,
        decision=Decision.NAMED if person else Decision.UNKNOWN,
        watchlist=person == "Ann",
        end=time.time() if kind is EventKind.SIGHTING_ENDED else None,
    )


def enrol(gallery: Gallery, *names: str) -> None:
    rng = np.random.default_rng(3)
    for name in names:
        gallery.enrol_sample(name, model="m", embedding=unit(rng, 8), crop_jpeg=b"", source="x", quality=0.5)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker("amqtt", tmp_path) as b:
        yield b


def bridge_for(gallery: Gallery, port: int, **options: object) -> MqttBridge:
    config = MqttConfig(host="127.0.0.1", port=port, reconnect_max_s=1, **options)  # type: ignore[arg-type]
    return MqttBridge(config, Outbox(gallery), gallery, STATION)


def events_of(messages: list[Message], kind: str) -> list[Message]:
    return [m for m in messages if m.topic == f"{P}/events/{kind}"]


def test_discovery_payloads_carry_what_home_assistant_requires() -> None:
    topics = ha.Topics(P)
    topic, payload = ha.person_config(topics, "homeassistant", STATION, "Ann Smith", 7)
    assert topic == f"homeassistant/binary_sensor/facestation_{STATION}/person_7/config"
    assert ha.check("binary_sensor", topic, payload) == []
    assert payload["state_topic"] == "facestation/person/ann_smith/state" and payload["device_class"] == "presence"
    assert payload["device"]["identifiers"] == [f"facestation_{STATION}"]
    ctopic, cpayload = ha.camera_config(topics, "homeassistant", STATION, "Front door")
    assert (
        ha.check("sensor", ctopic, cpayload) == [] and cpayload["state_topic"] == "facestation/camera/front_door/last"
    )
    broken = {k: v for k, v in payload.items() if k != "state_topic"}
    assert ha.check("binary_sensor", topic, broken) == ["missing state_topic"]
    assert ha.check("sensor", "homeassistant/sensor/a b/config", cpayload)  # not a discovery topic
    assert ha.slug("Zoë O'Brien") == "zoe_o_brien" and ha.slug("***").startswith("x")


def test_events_presence_and_discovery_reach_a_subscriber(gallery: Gallery, broker: Broker) -> None:
    enrol(gallery, "Ann", "Bob")
    bus = EventBus()
    EventFeed(bus).attach_gallery(gallery)  # gallery changes come as events, as in the station
    bridge = bridge_for(gallery, broker.port).start(bus)
    sub = Subscriber(broker.port)
    try:
        sub.wait_for(lambda ms: any(m.topic.endswith("/person_1/config") for m in ms))
        bus.publish(sighting(EventKind.SIGHTING_STARTED, "Ann"))
        bus.publish(sighting(EventKind.WATCHLIST_HIT, "Ann"))
        got = sub.wait_for(lambda ms: events_of(ms, "watchlist_hit") and sub.on(f"{P}/person/ann/state")[-1:]
                           and sub.on(f"{P}/person/ann/state")[-1].payload == b"ON")  # fmt: skip
        (hit,) = events_of(got, "watchlist_hit")
        assert hit.json()["person"] == "Ann" and hit.json()["camera"] == "Front door" and not hit.retain
        assert sub.on(f"{P}/camera/front_door/names")[-1].json() == ["Ann"]
        assert sub.on(f"{P}/camera/front_door/last")[-1].payload == b"Ann"
        bus.publish(sighting(EventKind.SIGHTING_ENDED, "Ann"))
        sub.wait_for(lambda ms: sub.on(f"{P}/person/ann/state")[-1].payload == b"OFF")
        assert sub.on(f"{P}/person/ann/attributes")[-1].json()["camera"] == "Front door"
        assert [m.payload for m in sub.on(f"{P}/status")][-1] == b"online"
        # A subscriber arriving later gets the retained state and discovery, checked as HA would.
        late = Subscriber(broker.port, "homeassistant/#")
        late.wait_for(lambda ms: len([m for m in ms if m.topic.endswith("/config")]) >= 3)
        # (amqtt also hands a new subscriber retained messages outside its filter: only discovery is looked at)
        configs = [m for m in late.messages if m.topic.startswith("homeassistant/")]
        for m in configs:
            component = m.topic.split("/")[1]
            assert m.retain and ha.check(component, m.topic, m.json()) == [], m.topic
        gallery.delete_person("Bob")
        late.wait_for(lambda ms: any(m.topic.endswith("/person_2/config") and m.payload == b"" for m in ms))
        late.close()
        after = Subscriber(broker.port, "homeassistant/binary_sensor/#")
        time.sleep(0.5)
        persons = {m.topic.split("/")[-2] for m in after.messages if m.topic.startswith("homeassistant/binary")}
        assert persons == {"person_1"}  # Bob's retained config is gone
        after.close()
    finally:
        sub.close()
        bridge.stop()
    # The last will's counterpart: a clean stop says offline, retained.
    check = Subscriber(broker.port, f"{P}/status")
    status = check.wait_for(lambda ms: any(m.topic == f"{P}/status" for m in ms))
    assert {m.payload for m in status if m.topic == f"{P}/status"} == {b"offline"}
    check.close()


@pytest.mark.slow
def test_broker_down_at_start_then_lost_mid_run_loses_no_event(
    gallery: Gallery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    bus = EventBus()
    caplog.set_level(logging.INFO, logger="integrations")
    bridge = bridge_for(gallery, port).start(bus)
    try:
        started = time.perf_counter()
        for i in range(10):
            bus.publish(CameraEvent(kind=EventKind.CAMERA_ONLINE, at=time.time(), camera=f"c{i}"))
        assert time.perf_counter() - started < 0.1  # recognition's publish never waits for the broker
        time.sleep(1.5)  # down at start: retried with backoff, said once
        assert sum("reconnecting with backoff" in r.message for r in caplog.records) == 1
        broker = Broker("amqtt", tmp_path, port=port).start()
        sub = Subscriber(port, f"{P}/events/#")
        sub.wait_for(lambda ms: len(ms) >= 10, timeout=20)
        assert [m.json()["camera"] for m in sub.messages][:10] == [f"c{i}" for i in range(10)]
        broker.stop()  # lost mid-run
        sub.close()
        for i in range(10, 15):
            bus.publish(CameraEvent(kind=EventKind.CAMERA_OFFLINE, at=time.time(), camera=f"c{i}"))
        time.sleep(0.5)
        assert Outbox(gallery).counts()["mqtt"].pending >= 5
        broker = Broker("amqtt", tmp_path, port=port).start()
        sub = Subscriber(port, f"{P}/events/camera_offline")
        got = sub.wait_for(lambda ms: len({m.json()["camera"] for m in ms}) >= 5, timeout=20)
        assert sorted({m.json()["camera"] for m in got}) == [f"c{i}" for i in range(10, 15)]
        assert any("lost the connection" in r.message for r in caplog.records)
        assert any("connected to" in r.message and "again" in r.message for r in caplog.records)
        sub.close()
        broker.stop()
    finally:
        bridge.stop()


@pytest.mark.slow
def test_refused_credentials_are_one_line_and_retried(
    gallery: Gallery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="integrations")
    with Broker("amqtt", tmp_path, users={"station": "right"}) as broker:
        bridge = bridge_for(gallery, broker.port, username="station", password="wrong").start(EventBus())
        try:
            deadline = time.monotonic() + 15
            while bridge.link.refusals < 2:  # refused, and tried again
                assert time.monotonic() < deadline, "not retried"
                time.sleep(0.05)
            lines = [r.message for r in caplog.records if "refused" in r.message]
            assert len(lines) == 1 and "127.0.0.1" in lines[0]
            assert not bridge.link.connected.is_set()
        finally:
            bridge.stop()
        good = bridge_for(gallery, broker.port, username="station", password="right").start(EventBus())
        try:
            assert good.link.connected.wait(10)
        finally:
            good.stop()


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed here")
def test_against_mosquitto_with_a_login(gallery: Gallery, tmp_path: Path) -> None:
    enrol(gallery, "Ann")
    with Broker("mosquitto", tmp_path, users={"station": "pw"}) as broker:
        bus = EventBus()
        bridge = bridge_for(gallery, broker.port, username="station", password="pw").start(bus)
        sub = Subscriber(broker.port, username="station", password="pw")
        try:
            sub.wait_for(lambda ms: any(m.topic.endswith("/person_1/config") for m in ms))
            bus.publish(sighting(EventKind.WATCHLIST_HIT, "Ann"))
            (hit,) = events_of(sub.wait_for(lambda ms: events_of(ms, "watchlist_hit")), "watchlist_hit")
            assert hit.json()["person"] == "Ann"
        finally:
            sub.close()
            bridge.stop()
