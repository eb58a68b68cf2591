"""Webhooks through the durable outbox, against a real HTTP server on loopback: signed, filtered,
retried with backoff while the endpoint is down, slow or failing, one endpoint never delaying another,
and delivered after a SIGKILL and a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from integrations.webhook_config import WebhookConfigError, WebhookEndpoint, parse_webhooks
from integrations.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, Webhooks, verify, wants
from station.event_bus import EventBus
from station.events import AlarmEvent, CameraEvent, Decision, EventKind, GalleryEvent, SightingEvent
from storage.gallery import Gallery
from storage.outbox import Outbox, OutboxItem
from tests.conftest import ROOT
from tests.webhook_server import WebhookServer

SECRET = "s3cret"


def camera(i: int, cam: str = "door") -> CameraEvent:
    return CameraEvent(kind=EventKind.CAMERA_ONLINE, at=time.time(), camera=cam, address=str(i))


def hit(person: str, cam: str = "door", watch: bool = True) -> SightingEvent:
    return SightingEvent(kind=EventKind.WATCHLIST_HIT, at=time.time(), camera=cam, track="1", person=person,
                         person_id=1, score=0.8, decision=Decision.NAMED, watchlist=watch)  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_webhooks_setting_is_checked_with_one_clear_message() -> None:
    ok = parse_webhooks('[{"url": "http://127.0.0.1:9/h", "events": ["watchlist_hit"], "persons": ["Ann"]}]')
    assert ok[0].events == {EventKind.WATCHLIST_HIT} and ok[0].persons == {"ann"} and ok[0].name == ok[0].url
    for text, message in [
        ("{", "not JSON"),
        ('{"url": "x"}', "JSON list"),
        ('[{"url": "ftp://h/x"}]', "http:// or https://"),
        ('[{"url": "http://h/x", "events": ["nope"]}]', "unknown event 'nope'"),
        ('[{"url": "http://h/x", "colour": 1}]', "unknown field 'colour'"),
        ('[{"url": "http://h/x", "timeout_s": 0}]', "timeout_s"),
        ('[{"url": "http://h/x"}, {"url": "http://h/x"}]', "same name"),
    ]:
        with pytest.raises(WebhookConfigError, match=message):
            parse_webhooks(text)


def test_filters_pass_only_what_each_endpoint_asked_for() -> None:
    ep = WebhookEndpoint(name="a", url="http://h/x", persons=frozenset({"ann"}), cameras=frozenset({"door"}))
    assert wants(ep, hit("ANN")) and not wants(ep, hit("Bob")) and not wants(ep, hit("Ann", cam="yard"))
    assert not wants(ep, camera(1))  # names nobody
    watch = WebhookEndpoint(name="w", url="http://h/x", watchlist_only=True)
    assert wants(watch, hit("Ann")) and not wants(watch, hit("Ann", watch=False)) and not wants(watch, camera(1))
    kinds = WebhookEndpoint(name="k", url="http://h/x", events=frozenset({EventKind.PERSON_DELETED}))
    gone = GalleryEvent(kind=EventKind.PERSON_DELETED, at=0.0, person="Ann", person_id=1, actor="cli")
    assert wants(kinds, gone) and not wants(kinds, hit("Ann"))


def test_an_alarm_reaches_the_endpoint_that_asked_for_alarms(gallery: Gallery) -> None:
    """Alarms (issue 20) travel the same outbox: filtered by kind, person and "watchlist only", delivered whole."""
    now, kind = time.time(), EventKind.ALARM_RAISED
    raised = AlarmEvent(kind=kind, at=now, alarm=4, alarm_kind="watchlist", state="new", priority=3,
                        camera="door", track="door-7", watchlist="Barred", person="Ann", person_id=1)  # fmt: skip
    stranger = AlarmEvent(kind=kind, at=now, alarm=5, alarm_kind="stranger", state="new", priority=2,
                          camera="yard", subject="yard/yard-2")  # fmt: skip
    alarms = WebhookEndpoint(name="alarms", url="http://h/x", events=frozenset({EventKind.ALARM_RAISED}))
    watch = WebhookEndpoint(name="w", url="http://h/x", watchlist_only=True)
    assert wants(alarms, raised) and wants(alarms, stranger) and not wants(alarms, hit("Ann"))
    assert wants(watch, raised) and not wants(watch, stranger)
    with WebhookServer() as server:
        endpoint = WebhookEndpoint(name="sink", url=server.url, secret=SECRET, timeout_s=1.0)
        hooks = Webhooks([endpoint], Outbox(gallery), backoff_cap_s=0.3).start(EventBus())
        try:
            hooks.enqueue(raised)
            (got,) = server.wait_for(1, timeout=10)
        finally:
            hooks.stop()
    assert got.event["event"] == "alarm_raised" and got.event["alarm"] == 4 and got.event["watchlist"] == "Barred"
    assert got.event["person"] == "Ann" and got.event["state"] == "new" and got.event["priority"] == 3


def test_events_arrive_signed_in_order_after_the_endpoint_comes_back(gallery: Gallery) -> None:
    port = free_port()
    endpoint = WebhookEndpoint(name="sink", url=f"http://127.0.0.1:{port}/hook", secret=SECRET, timeout_s=1.0)
    outbox = Outbox(gallery)
    hooks = Webhooks([endpoint], outbox, backoff_cap_s=0.3).start(EventBus())
    try:
        for i in range(20):
            hooks.enqueue(camera(i, cam=f"c{i % 2}"))
        time.sleep(0.5)  # down meanwhile: the deliverer retries with backoff, nothing is lost
        assert outbox.counts()["webhook:sink"].pending == 20 and hooks.deliverers[0].failing
        with WebhookServer(port) as server:
            got = server.wait_for(20, timeout=10)
            assert [r.event["address"] for r in got] == [str(i) for i in range(20)]  # in order
            for r in got:
                assert verify(SECRET.encode(), r.header(TIMESTAMP_HEADER), r.body, r.header(SIGNATURE_HEADER))
                assert not verify(b"other", r.header(TIMESTAMP_HEADER), r.body, r.header(SIGNATURE_HEADER))
            deadline = time.monotonic() + 5
            while "webhook:sink" in outbox.counts() and outbox.counts()["webhook:sink"].pending:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        hooks.stop()


@pytest.mark.slow
def test_a_slow_or_failing_endpoint_delays_no_other_and_gets_everything_later(gallery: Gallery) -> None:
    good, slow, failing = WebhookServer(), WebhookServer(mode="slow", slow_s=1.5), WebhookServer(mode="fail")
    servers = [good.start(), slow.start(), failing.start()]
    endpoints = [
        WebhookEndpoint(name=n, url=s.url, secret=SECRET, timeout_s=0.5) for n, s in zip("gsf", servers, strict=True)
    ]
    bus = EventBus()
    hooks = Webhooks(endpoints, Outbox(gallery), backoff_cap_s=0.3).start(bus)
    try:
        started = time.perf_counter()
        for i in range(30):
            bus.publish(camera(i))
        assert time.perf_counter() - started < 0.2  # the publisher never waits for delivery
        assert [r.event["address"] for r in good.wait_for(30, timeout=15)] == [str(i) for i in range(30)]
        assert not slow.received and not failing.received and failing.attempts >= 1 and slow.attempts >= 1
        slow.mode = failing.mode = "ok"
        for server in (slow, failing):
            assert [r.event["address"] for r in server.wait_for(30, timeout=20)][:30] == [str(i) for i in range(30)]
    finally:
        hooks.stop()
        for s in servers:
            s.stop()


def test_an_endpoint_refusing_an_event_for_good_is_not_retried(gallery: Gallery) -> None:
    with WebhookServer(mode="refuse") as server:
        ep = WebhookEndpoint(name="r", url=server.url, timeout_s=1.0)
        outbox = Outbox(gallery)
        hooks = Webhooks([ep], outbox).start(EventBus())
        try:
            hooks.enqueue(camera(1))
            deadline = time.monotonic() + 5
            while (left := outbox.counts().get("webhook:r")) is not None and left.pending:  # one read: no race
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert server.attempts == 1
        finally:
            hooks.stop()


def test_the_outbox_is_bounded_dropping_the_oldest_and_counting_them(gallery: Gallery) -> None:
    outbox = Outbox(gallery, max_per_destination=5)
    outbox.put([OutboxItem("webhook:x", "camera_online", json.dumps(i).encode()) for i in range(8)])
    outbox.put([OutboxItem("mqtt", "camera_online", b"1", topic="t")])
    counts = outbox.counts()
    assert (counts["webhook:x"].pending, counts["webhook:x"].dropped) == (5, 3) and counts["mqtt"].pending == 1
    assert [json.loads(e.payload) for e in outbox.take("webhook:x")] == [3, 4, 5, 6, 7]


@pytest.mark.slow
def test_deliveries_pending_at_a_sigkill_are_delivered_after_the_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    path = tmp_path / "gallery.db"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.outbox_child", str(path), url, "25"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("queued"), line
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    with Gallery.open(path, actor="restart") as gallery, WebhookServer(port) as server:
        ep = WebhookEndpoint(name="sink", url=url, secret="s3cret", timeout_s=1.0)
        hooks = Webhooks([ep], Outbox(gallery)).start(EventBus())
        try:
            got = server.wait_for(25, timeout=15)
            assert [r.event["address"] for r in got] == [str(i) for i in range(25)]
        finally:
            hooks.stop()


def test_a_deleted_persons_undelivered_entries_are_erased_but_the_news_of_it(gallery: Gallery) -> None:
    outbox = Outbox(gallery)
    outbox.put(
        [
            OutboxItem("webhook:x", "watchlist_hit", b"1", person="Ann"),
            OutboxItem("mqtt", "crop", b"\xff\xd8", topic="t", person="Ann"),
            OutboxItem("webhook:x", "watchlist_hit", b"2", person="Bob"),
            OutboxItem("webhook:x", "person_deleted", b"3", person="Ann"),
            OutboxItem("webhook:x", "camera_online", b"4"),
        ]
    )
    assert outbox.forget_person("ann") == 2
    assert [e.payload for e in outbox.take("webhook:x")] == [b"2", b"3", b"4"] and outbox.take("mqtt") == []


def test_deleting_a_person_erases_what_the_outbox_still_owes_about_them(gallery: Gallery) -> None:
    import numpy as np

    from tests.test_storage import unit

    gallery.enrol_sample("Ann", model="m", embedding=unit(np.random.default_rng(1), 8), crop_jpeg=b"", source="x",
                         quality=0.5)  # fmt: skip
    outbox = Outbox(gallery)
    outbox.put([OutboxItem("mqtt", "crop", b"\xff\xd8", topic="t", person="Ann"), OutboxItem("mqtt", "x", b"1")])
    gallery.delete_person("Ann")  # no station running: the erasure itself clears the outbox
    assert [e.payload for e in outbox.take("mqtt")] == [b"1"]
    (entry,) = gallery.audit_log(action="delete")
    assert json.loads(entry.details)["outbox"] == 1
