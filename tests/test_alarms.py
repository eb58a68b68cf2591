"""Alarms with a workflow on a real gallery file: raised, counted again while open, acknowledged with a note,
escalated while nobody does, closed; kept across restarts; audited; published as events after their commit.
Two consoles on one gallery acknowledging the same alarm: one wins, the other is told who was first."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from station.event_bus import EventBus
from station.event_feed import EventFeed
from station.events import ALARM_KINDS, AlarmEvent, EventKind
from storage.alarm_records import AlarmKind, AlarmState
from storage.errors import AlarmConflict
from storage.gallery import Gallery
from storage.watchlist_records import Priority
from tests.conftest import wait_until

JPEG = b"\xff\xd8\xff\xd9"


def person(gallery: Gallery, name: str) -> int:
    emb = np.random.default_rng(len(name)).standard_normal(4).astype(np.float32)
    gallery.enrol_sample(name, model="m4", embedding=emb, crop_jpeg=JPEG, source="t", quality=0.9)
    return gallery.person(name).id


def test_an_alarm_is_raised_counted_acknowledged_closed_and_kept_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    with Gallery.open(path, actor="console-a") as g:
        ada = person(g, "Ada")
        barred = g.watchlists.create("Barred", priority=Priority.CRITICAL, escalate_after_s=60, sound="bell x3")
        before = g.alarms.revision()
        first = g.alarms.raise_watchlist(
            barred, person_id=ada, camera="door", track="door-1", score=0.81, at=1000.0, frame_id=7, box=(1, 2, 30, 40)
        )
        again = g.alarms.raise_watchlist(barred, person_id=ada, camera="gate", track="gate-4", score=0.9, at=1100.0)
        assert first.new and not again.new and again.alarm_id == first.alarm_id, "one alarm while it is open"
        assert g.alarms.revision() > before
        alarm = g.alarms.get(first.alarm_id)
        assert (alarm.state, alarm.hits, alarm.score, alarm.last_seen) == (AlarmState.NEW, 2, 0.9, 1100.0)
        assert (alarm.priority, alarm.sound, alarm.escalate_after_s, alarm.box) == (1, "bell x3", 60.0, (1, 2, 30, 40))
        assert alarm.title() == "Ada on Barred" and g.alarms.waiting() == 1

        acked = g.alarms.acknowledge(first.alarm_id, "guard sent to the door")
        assert (acked.state, acked.acknowledged_by, acked.ack_note) == ("acknowledged", "console-a", acked.ack_note)
        with pytest.raises(
            AlarmConflict, match=r"already acknowledged by console-a at .*guard sent.*can still be closed"
        ):
            g.alarms.acknowledge(first.alarm_id, "me too")
        later = g.alarms.raise_watchlist(barred, person_id=ada, camera="door", track="door-9", score=0.8, at=1200.0)
        assert not later.new, "acknowledged is still open: the hit is counted on it"
    with Gallery.open(path, actor="console-b") as g:  # a restart: the alarm is still there
        (kept,) = g.alarms.query(states=[AlarmState.ACKNOWLEDGED])
        assert kept.id == first.alarm_id and kept.hits == 3
        closed = g.alarms.close(kept.id, "left the building")
        assert (closed.state, closed.closed_by, closed.close_note) == ("closed", "console-b", "left the building")
        with pytest.raises(AlarmConflict, match="already closed by console-b"):
            g.alarms.close(kept.id)
        new = g.alarms.raise_watchlist(barred, person_id=ada, camera="door", track="door-12", score=0.8, at=1300.0)
        assert new.new, "after closing, the next hit is a new alarm"
        actions = [e.action for e in g.audit_log(limit=20) if e.action.startswith("alarm_")]
        assert actions == ["alarm_raised", "alarm_closed", "alarm_acknowledged", "alarm_raised"]
        details = json.loads(g.audit_log(action="alarm_acknowledged")[0].details)
        assert (
            details["note"] == "guard sent to the door" and details["person"] == "Ada" and details["list"] == "Barred"
        )


def test_two_consoles_acknowledging_one_alarm_never_corrupt_it(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    with Gallery.open(path, actor="a") as a, Gallery.open(path, actor="b") as b:
        ada = person(a, "Ada")
        staff = a.watchlists.create("Staff")
        ids = [
            a.alarms.raise_watchlist(
                staff, person_id=ada, camera=f"c{i}", track=f"t{i}", score=0.7, repeat_s=0
            ).alarm_id
            for i in range(12)
        ]
        outcomes: dict[str, list[str]] = {"a": [], "b": []}

        def ack(g: Gallery, who: str, gate: threading.Barrier) -> None:
            for alarm_id in ids:
                gate.wait(timeout=10)
                try:
                    g.alarms.acknowledge(alarm_id, f"note from {who}", by=who)
                    outcomes[who].append("ok")
                except AlarmConflict as exc:
                    outcomes[who].append(str(exc))

        gate = threading.Barrier(2)
        threads = [threading.Thread(target=ack, args=(g, w, gate)) for g, w in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for i, alarm_id in enumerate(ids):
            results = [outcomes["a"][i], outcomes["b"][i]]
            assert results.count("ok") == 1, results
            alarm = b.alarms.get(alarm_id)
            winner = "a" if results[0] == "ok" else "b"
            loser_message = results[1] if winner == "a" else results[0]
            assert (alarm.state, alarm.acknowledged_by, alarm.ack_note) == (
                "acknowledged",
                winner,
                f"note from {winner}",
            )
            assert f"alarm {alarm_id} was already acknowledged by {winner}" in loser_message
        assert len(a.audit_log(action="alarm_acknowledged", limit=100)) == len(ids)
        assert a.integrity_check() == "ok"


def test_an_unacknowledged_alarm_escalates_each_period_until_acknowledged(gallery: Gallery) -> None:
    ada = person(gallery, "Ada")
    barred = gallery.watchlists.create("Barred", escalate_after_s=60)
    quiet = gallery.watchlists.create("Quiet", escalate_after_s=0)
    alarm = gallery.alarms.raise_watchlist(barred, person_id=ada, camera="door", track="1", score=0.8, at=1000.0)
    gallery.alarms.raise_watchlist(quiet, person_id=ada, camera="door", track="1", score=0.8, at=1000.0)
    assert gallery.alarms.escalate_due(now=1030.0) == []
    (escalated,) = gallery.alarms.escalate_due(now=1061.0)
    assert (escalated.id, escalated.escalations) == (alarm.alarm_id, 1)
    assert gallery.alarms.escalate_due(now=1100.0) == [], "once per period"
    assert [a.escalations for a in gallery.alarms.escalate_due(now=1122.0)] == [2]
    gallery.alarms.acknowledge(alarm.alarm_id, "on it")
    assert gallery.alarms.escalate_due(now=5000.0) == []
    assert len(gallery.audit_log(action="alarm_escalated")) == 2


def test_the_queue_is_ordered_by_priority_then_time_and_filtered(gallery: Gallery) -> None:
    ada, bo = person(gallery, "Ada"), person(gallery, "Bo")
    vip = gallery.watchlists.create("VIP", priority=Priority.LOW)
    barred = gallery.watchlists.create("Barred", priority=Priority.CRITICAL)
    low = gallery.alarms.raise_watchlist(vip, person_id=bo, camera="lobby", track="1", score=0.7, at=3000.0)
    old = gallery.alarms.raise_watchlist(barred, person_id=ada, camera="door", track="2", score=0.9, at=1000.0)
    new = gallery.alarms.raise_watchlist(barred, person_id=bo, camera="gate", track="3", score=0.9, at=2000.0)
    disk = gallery.alarms.raise_system("disk", "the gallery's disk has 80 MB left")
    again = gallery.alarms.raise_system("disk", "the gallery's disk has 60 MB left")
    assert again.alarm_id == disk.alarm_id and gallery.alarms.get(disk.alarm_id).detail.endswith("60 MB left")
    order = [a.id for a in gallery.alarms.query()]
    assert order == [new.alarm_id, old.alarm_id, disk.alarm_id, low.alarm_id]
    gallery.alarms.acknowledge(old.alarm_id)
    assert [a.id for a in gallery.alarms.query(states=[AlarmState.NEW], watchlist="Barred")] == [new.alarm_id]
    assert [a.id for a in gallery.alarms.query(camera="lobby")] == [low.alarm_id]
    assert [a.id for a in gallery.alarms.query(kind=AlarmKind.SYSTEM)] == [disk.alarm_id]
    assert gallery.alarms.facets() == (["Barred", "VIP"], ["door", "gate", "lobby"])
    gallery.delete_person("Bo")
    assert gallery.alarms.get(new.alarm_id).title() == "(a person since deleted) on Barred", "no name kept"


def test_alarm_state_changes_are_events_after_their_commit(gallery: Gallery) -> None:
    bus = EventBus()
    EventFeed(bus).attach_gallery(gallery)
    sub = bus.subscribe("test", kinds=ALARM_KINDS)
    ada = person(gallery, "Ada")
    barred = gallery.watchlists.create("Barred", priority=Priority.HIGH)
    raised = gallery.alarms.raise_watchlist(barred, person_id=ada, camera="door", track="d-1", score=0.8)
    gallery.alarms.acknowledge(raised.alarm_id, "seen", by="guard 2")
    gallery.alarms.close(raised.alarm_id, "gone", by="guard 2")
    assert wait_until(lambda: sub.pending() == 3, 5)
    events = sub.drain()
    assert all(isinstance(e, AlarmEvent) for e in events)
    assert [e.kind for e in events] == [EventKind.ALARM_RAISED, EventKind.ALARM_ACKNOWLEDGED, EventKind.ALARM_CLOSED]
    first, ack, _ = events
    assert isinstance(first, AlarmEvent) and isinstance(ack, AlarmEvent)
    assert (first.alarm, first.watchlist, first.person, first.priority) == (raised.alarm_id, "Barred", "Ada", 2)
    assert (ack.actor, ack.note, ack.state) == ("guard 2", "seen", "acknowledged")
    line = ack.to_json()
    assert line["event"] == "alarm_acknowledged" and line["note"] == "seen" and line["time"].endswith("Z")  # type: ignore[union-attr]
    assert time.time() - first.at < 60
