"""Each list's own strictness and cameras decide whether a watchlist hit raises that list's alarm; strangers
raise one alarm per face and window, on the chosen cameras and hours, once they came back N times. The rules
are fed by a real event bus with the events the station's feed publishes, on a real gallery."""

from __future__ import annotations

import time

import numpy as np

from station.alarm_rules import KINDS, AlarmRules
from station.event_bus import EventBus
from station.events import Decision, EventKind, SightingEvent
from station.stranger_rules import StrangerPolicy, StrangerRules
from storage.alarm_records import AlarmKind
from storage.gallery import Gallery
from storage.records import NewSighting
from storage.watchlist_records import ListAction
from tests.conftest import wait_until

STATION = 0.644
JPEG = b"\xff\xd8\xff\xd9"
RNG = np.random.default_rng(3)


def event(
    kind: EventKind,
    person_id: int | None,
    score: float | None,
    *,
    camera: str = "door",
    track: str = "t1",
    sighting: int | None = None,
    at: float | None = None,
) -> SightingEvent:
    return SightingEvent(
        kind=kind,
        at=time.time() if at is None else at,
        camera=camera,
        track=track,
        person=None,
        person_id=person_id,
        score=score,
        decision=Decision.UNKNOWN if person_id is None else Decision.NAMED,
        watchlist=person_id is not None,
        frame_id=3,
        box=(10.0, 20.0, 40.0, 40.0),
        sighting=sighting,
    )


def test_a_lists_strictness_and_cameras_decide_its_alarm(gallery: Gallery) -> None:
    gallery.enrol_sample("Ada", model="m4", embedding=np.ones(4, np.float32), crop_jpeg=JPEG, source="t", quality=1)
    ada = gallery.person("Ada").id
    gallery.watchlists.create("Barred", threshold=0.8, cameras=["door"])
    gallery.watchlists.create("Everywhere")
    gallery.watchlists.create("Lenient", threshold=0.5)  # never under the station's threshold
    gallery.watchlists.create("Staff", actions=[ListAction.TRAY])  # shown, never queued
    gallery.watchlists.set_lists("Ada", ["Barred", "Everywhere", "Lenient", "Staff"])
    bus = EventBus()
    rules = AlarmRules(gallery, lambda: STATION)
    sub = bus.listen("alarms", rules.on_event, kinds=KINDS)
    try:
        bus.publish(event(EventKind.WATCHLIST_HIT, ada, 0.70, camera="gate", track="g1"))
        bus.publish(event(EventKind.WATCHLIST_HIT, ada, 0.70, camera="door", track="d1"))
        assert wait_until(lambda: sub.pending() == 0 and rules.raised >= 2, 5)
        lists = sorted(a.watchlist for a in gallery.alarms.query())
        assert lists == ["Everywhere", "Lenient"], "Barred needs 0.8 on the door; Staff does not queue"
        # The track's template ends stronger than its live score: Barred's alarm now, with the sighting linked.
        gallery.record_sightings([NewSighting("door", 1.0, 2.0, ada, 0.85, (1, 1, 9, 9), JPEG, None, "m4", "d1")])
        assert gallery.flush()
        (sid,) = [s.id for s in gallery.history(audit=False)]
        bus.publish(event(EventKind.SIGHTING_ENDED, ada, 0.85, camera="door", track="d1", sighting=sid))
        assert wait_until(lambda: len(gallery.alarms.query(watchlist="Barred")) == 1, 5)
        assert wait_until(lambda: all(a.sighting_id == sid for a in gallery.alarms.query(camera="door")), 5)
        (barred,) = gallery.alarms.query(watchlist="Barred")
        assert (barred.camera, barred.track, barred.score, barred.priority) == ("door", "d1", 0.85, 3)
        gate = [a for a in gallery.alarms.query(camera="gate")]
        assert gate and all(a.sighting_id is None for a in gate), "another track's sighting is not theirs"
    finally:
        bus.unsubscribe(sub)
    # Everywhere and Lenient: raised on the gate, the door's hit counted on them (the same person, still open).
    assert sorted((a.watchlist, a.hits) for a in gallery.alarms.query()) == [
        ("Barred", 1),
        ("Everywhere", 2),
        ("Lenient", 2),
    ]


def record_unknown(gallery: Gallery, base: np.ndarray, at: float, camera: str, track: str) -> int:
    emb = (base + RNG.normal(0, 0.05, base.shape)).astype(np.float32)
    gallery.record_sightings([NewSighting(camera, at, at + 1, None, 0.2, (1, 1, 9, 9), JPEG, emb, "m64", track)])
    assert gallery.flush()
    return gallery.history(camera=camera, limit=1, audit=False)[0].id


def test_strangers_raise_one_alarm_per_face_and_window_on_chosen_cameras(gallery: Gallery) -> None:
    policy = StrangerPolicy(on=True, cameras=("yard",), hours=None, returns=3, window_s=3600.0)
    rules = AlarmRules(gallery, lambda: STATION, strangers=StrangerRules(gallery, lambda: policy))
    face, other = RNG.standard_normal(64), RNG.standard_normal(64)
    now = time.time()

    def seen(base: np.ndarray, i: int, camera: str = "yard", at: float | None = None) -> None:
        t = now + i if at is None else at
        sid = record_unknown(gallery, base, t, camera, f"{camera}-{i}")
        rules.on_event(
            event(EventKind.SIGHTING_ENDED, None, 0.2, camera=camera, track=f"{camera}-{i}", sighting=sid, at=t)
        )

    seen(face, 0, at=now - 7200)  # out of the window: it does not count
    seen(face, 1)
    seen(face, 2)
    assert gallery.alarms.query(kind=AlarmKind.STRANGER) == [], "seen twice in the window, three asked"
    seen(other, 3)
    seen(face, 4, camera="lobby")  # not a chosen camera: no alarm for it (it counts as a return, though)
    assert gallery.alarms.query(kind=AlarmKind.STRANGER) == []
    seen(face, 5)
    (alarm,) = gallery.alarms.query(kind=AlarmKind.STRANGER)
    assert (alarm.camera, alarm.detail, alarm.hits) == ("yard", "seen 4 times in 60 min", 1)
    for i in range(6, 10):
        seen(face, i)
    (alarm,) = gallery.alarms.query(kind=AlarmKind.STRANGER)
    assert alarm.hits == 5 and alarm.detail == "seen 8 times in 60 min", "one alarm per face and window"
    for i in range(10, 13):
        seen(other, i)
    assert len(gallery.alarms.query(kind=AlarmKind.STRANGER)) == 2, "another face, its own alarm"


def test_stranger_hours_may_cross_midnight() -> None:
    night = StrangerPolicy(on=True, cameras=(), hours=(22 * 60, 6 * 60), returns=1, window_s=60)
    at = time.mktime((2026, 5, 1, 23, 30, 0, 0, 0, -1))
    assert night.applies("any", at) and night.applies("any", at + 6 * 3600)
    assert not night.applies("any", at - 12 * 3600)
    assert not StrangerPolicy(False, (), None, 1, 60).applies("any", at)
