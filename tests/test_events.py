"""The event model (station/events.py), its bus (station/event_bus.py) and its sources: the engine's
results and ended tracks (station/sighting_events.py), the gallery's committed sightings and audit
entries, and the receiver's camera events (station/event_feed.py). Real galleries in temp folders."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from network.frames import CameraEvent as ReceiverCameraEvent
from station.event_bus import EventBus
from station.event_feed import EventFeed, camera_event
from station.events import (
    CameraEvent,
    Decision,
    Event,
    EventKind,
    GalleryEvent,
    SightingEvent,
    event_camera,
)
from station.sighting_events import UNKNOWN_AFTER_FRAMES, SightingEvents
from storage.gallery import Gallery
from storage.records import RecordedSighting
from tests.test_storage import T0, sighting, unit
from vision.matcher import NO_SCORE
from vision.results import FaceResult, FrameResult
from vision.tracker import TrackRecord

BOX = (10.0, 20.0, 80.0, 90.0)


def face(
    track: str,
    person: str | None,
    *,
    pid: int | None = None,
    score: float = 0.8,
    watch: bool = False,
    decided: bool = True,
) -> FaceResult:
    return FaceResult(BOX, ((0.0, 0.0),) * 5, track, pid, person, score, watch, decided=decided)


def frame(camera: str, fid: int, *faces: FaceResult) -> FrameResult:
    return FrameResult(camera, fid, T0 + fid, tuple(faces), 5.0, T0 + fid + 0.01)


def record(camera: str, track: str, person: str | None, pid: int | None, score: float = 0.8) -> TrackRecord:
    return TrackRecord(camera, track, T0, T0 + 3, pid, person, score, 9, 0.7, BOX, None, None, "m", embeddings=2)


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# ------------------------------------------------------------------ the model


def test_every_event_has_one_json_shape_with_its_kind_as_text() -> None:
    events: list[Event] = [
        SightingEvent(
            kind=EventKind.SIGHTING_ENDED,
            at=T0,
            camera="door",
            track="7",
            person="Ann",
            person_id=1,
            score=None,
            decision=Decision.NAMED,
            start=T0,
            end=T0 + 2,
            sighting=12,
            has_crop=True,
            frames=9,
        ),
        CameraEvent(kind=EventKind.CAMERA_OFFLINE, at=T0, camera="door", address="1.2.3.4:5", reason="silent"),
        GalleryEvent(kind=EventKind.PERSON_RENAMED, at=T0, person="Bo", person_id=3, actor="cli", previous="Bob"),
    ]
    lines = [json.loads(json.dumps(e.to_json())) for e in events]
    assert [line["event"] for line in lines] == ["sighting_ended", "camera_offline", "person_renamed"]
    assert all(line["time"].endswith("Z") and isinstance(line["seq"], int) for line in lines)
    ended = lines[0]
    assert ended["score"] is None and ended["decision"] == "named" and ended["sighting"] == 12
    assert ended["crop"] == "/api/sightings/12/crop" and ended["snapshot"] is None  # no snapshot was kept
    assert ended["unknown"] is None and ended["frames"] == 9
    assert lines[1]["reason"] == "silent" and lines[2]["previous"] == "Bob"
    assert events[0].seq < events[1].seq < events[2].seq  # one order for the process
    assert EventKind("watchlist_hit") is EventKind.WATCHLIST_HIT


# -------------------------------------------------------------------- the bus


def test_a_slow_or_failing_subscriber_delays_neither_the_publisher_nor_another() -> None:
    bus = EventBus()
    release = threading.Event()
    fast: list[Event] = []
    bus.listen("slow", lambda e: release.wait(10), capacity=5)
    bus.listen("failing", lambda e: 1 / 0)
    bus.listen("fast", fast.append)
    pulled = bus.subscribe("pull", kinds=[EventKind.CAMERA_ONLINE])
    started = time.perf_counter()
    for i in range(200):
        bus.publish(CameraEvent(kind=EventKind.CAMERA_ONLINE, at=T0 + i, camera=f"c{i}"))
    assert time.perf_counter() - started < 0.5  # never waited for the slow one
    wait_for(lambda: len(fast) == 200)
    assert [event_camera(e) for e in fast] == [f"c{i}" for i in range(200)]  # oldest first, nothing lost
    slow = next(s for s in bus.subscriptions() if s.name == "slow")
    assert slow.dropped >= 190 and slow.pending() <= 5  # bounded: the oldest dropped and counted
    assert len(pulled.drain()) == 200 and pulled.get(timeout=0.01) is None
    release.set()
    bus.close(timeout=5)
    assert all(s.closed for s in (slow, pulled))


def test_a_pull_subscription_only_takes_the_kinds_it_asked_for_and_reads_what_is_left_after_close() -> None:
    bus = EventBus()
    sub = bus.subscribe("gallery", kinds=[EventKind.PERSON_DELETED])
    bus.publish(CameraEvent(kind=EventKind.CAMERA_ONLINE, at=T0, camera="door"))
    bus.publish(GalleryEvent(kind=EventKind.PERSON_DELETED, at=T0, person="Ann", person_id=1, actor="cli"))
    bus.unsubscribe(sub)
    bus.publish(GalleryEvent(kind=EventKind.PERSON_DELETED, at=T0, person="Bo", person_id=2, actor="cli"))
    got = sub.get(timeout=1)
    assert isinstance(got, GalleryEvent) and got.person == "Ann"
    assert sub.get(timeout=0.05) is None


# ------------------------------------------------------------- the adapter


def test_tracks_start_update_hit_the_watchlist_and_announce_unknowns_once() -> None:
    out: list[Event] = []
    adapter = SightingEvents(out.append)
    adapter.on_result(frame("door", 1, face("1", None, decided=False, score=NO_SCORE), face("2", None)))
    adapter.on_result(frame("door", 2, face("1", "Ann", pid=1, watch=True), face("2", None)))
    adapter.on_result(frame("door", 3, face("1", "Ann", pid=1, watch=True), face("2", None)))
    adapter.on_result(frame("door", 4, face("1", "Bo", pid=2), face("2", None)))
    kinds = [(e.kind, e.track) for e in out if isinstance(e, SightingEvent)]
    assert kinds == [
        (EventKind.SIGHTING_STARTED, "1"),
        (EventKind.SIGHTING_STARTED, "2"),
        (EventKind.SIGHTING_UPDATED, "1"),
        (EventKind.WATCHLIST_HIT, "1"),
        (EventKind.UNKNOWN_FACE, "2"),  # after UNKNOWN_AFTER_FRAMES frames
        (EventKind.SIGHTING_UPDATED, "1"),
    ]
    assert UNKNOWN_AFTER_FRAMES == 3
    first, update, hit, renamed = (e for e in out if isinstance(e, SightingEvent) and e.track == "1")
    unknown = next(e for e in out if e.kind is EventKind.UNKNOWN_FACE)
    assert isinstance(first, SightingEvent) and first.decision is Decision.UNDECIDED and first.score is None
    assert isinstance(update, SightingEvent) and update.person == "Ann" and update.previous is None
    assert isinstance(hit, SightingEvent) and hit.watchlist and hit.frame_id == 2 and hit.box == BOX
    assert isinstance(unknown, SightingEvent) and unknown.unknown == "door/2" and unknown.frame_id == 3
    assert isinstance(renamed, SightingEvent) and renamed.person == "Bo" and renamed.previous == "Ann"
    assert adapter.live_tracks() == 2


@pytest.mark.parametrize("recorded_first", [False, True])
def test_an_ended_track_is_announced_once_with_its_sighting_id_whichever_comes_first(recorded_first: bool) -> None:
    out: list[Event] = []
    adapter = SightingEvents(out.append)
    adapter.on_result(frame("door", 1, face("5", "Ann", pid=1, watch=True)))
    out.clear()
    row = RecordedSighting("door", "5", 42, has_crop=True, has_snapshot=True)
    steps = [lambda: adapter.on_recorded([row]), lambda: adapter.on_ended(record("door", "5", "Ann", 1))]
    for step in steps if recorded_first else reversed(steps):
        step()
    (ended,) = out
    assert isinstance(ended, SightingEvent) and ended.kind is EventKind.SIGHTING_ENDED
    assert ended.sighting == 42 and ended.watchlist and ended.frames == 9
    line = ended.to_json()
    assert line["crop"] == "/api/sightings/42/crop" and line["snapshot"] == "/api/sightings/42/snapshot"
    assert adapter.live_tracks() == 0


# ---------------------------------------------------------- real sources


def test_the_gallery_reports_committed_sighting_ids_and_failures(gallery: Gallery) -> None:
    rows: list[RecordedSighting] = []
    gallery.commits.on_recorded(rows.extend)
    gallery.record_sightings([sighting(track="a"), sighting(track="b", person_id=999), sighting(track="c")])
    assert gallery.flush()
    by_track = {r.track: r.id for r in rows}
    stored = {s.track: s.id for s in gallery.history(limit=10, audit=False)}
    assert by_track == {"a": stored["a"], "b": None, "c": stored["c"]}  # the ghost person's row failed


def test_gallery_changes_become_events_after_they_commit(tmp_path: Path) -> None:
    bus = EventBus()
    sub = bus.subscribe("test")
    rng = np.random.default_rng(5)
    with Gallery.open(tmp_path / "g.db", actor="tester") as g:
        EventFeed(bus).attach_gallery(g)
        for name in ("Ann", "Bob"):
            g.enrol_sample(name, model="m", embedding=unit(rng, 8), crop_jpeg=b"", source="x", quality=0.5)
        g.set_watchlist("Ann", True)
        g.rename("Bob", "Bo")
        with pytest.raises(Exception, match="themself"):
            g.merge("Bo", "Bo")  # rolled back: no event
        g.merge("Bo", "Ann")
        g.delete_person("Ann")
        g.flush()
    events = [e for e in sub.drain() if isinstance(e, GalleryEvent)]
    assert [(e.kind, e.person, e.previous) for e in events] == [
        (EventKind.PERSON_ENROLLED, "Ann", None),
        (EventKind.PERSON_ENROLLED, "Bob", None),
        (EventKind.WATCHLIST_CHANGED, "Ann", None),
        (EventKind.PERSON_RENAMED, "Bo", "Bob"),
        (EventKind.PERSON_MERGED, "Ann", "Bo"),
        (EventKind.PERSON_DELETED, "Ann", None),
    ]
    assert events[0].new and events[0].actor == "tester" and events[2].watchlist is True
    assert events[4].previous_id is not None and events[4].person_id is not None


def test_receiver_camera_events_map_to_the_model() -> None:
    ev = camera_event(ReceiverCameraEvent("door", "offline", "127.0.0.1:9", T0, "bye"))
    assert ev.kind is EventKind.CAMERA_OFFLINE and ev.reason == "bye" and not ev.online
    assert camera_event(ReceiverCameraEvent("door", "online", "127.0.0.1:9", T0)).online
