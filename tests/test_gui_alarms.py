"""The console's control room with real galleries: the alarm queue (ordered, filtered, opened side by side,
acknowledged with a note, escalated, two consoles on one gallery), the storage warning in the status bar,
a sighting opened the moment the station's bus says it was recorded, the watchlists dialog, and the person
page (last seen, lists, sightings that open in History). Faces are LFW photos from ../shared/faces."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.services import ConsoleServices
from gui.widgets.alerts_panel import QueueFilter
from gui.widgets.watchlist_dialog import WatchlistDialog
from network import protocol
from network.udp_receiver import ReceiverConfig, UdpReceiver
from station.event_bus import EventBus
from station.events import Decision, EventKind, SightingEvent
from station.storage_watch import StorageWatch
from storage.alarm_records import AlarmState
from storage.gallery import Gallery
from storage.records import NewSighting
from storage.watchlist_records import ListAction, Priority
from tests.conftest import FACES, need

WAIT_MS = 20_000


def jpeg_of(name: str, i: int, size: int | None = None) -> bytes:
    image = cv2.imread(str(need(FACES / "identities" / name / f"{name}_{i:04d}.jpg")))
    assert image is not None
    if size is not None:
        image = cv2.resize(image[60:190, 60:190], (size, size))
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return bytes(buf)


def enrol(gallery: Gallery, name: str, i: int) -> int:
    emb = np.random.default_rng(i).standard_normal(8).astype(np.float32)
    gallery.enrol_sample(name, model="m8", embedding=emb, crop_jpeg=jpeg_of(name, i, 112), source="t", quality=0.8)
    return gallery.person(name).id


def record(gallery: Gallery, camera: str, track: str, person_id: int | None, name: str, i: int, at: float) -> int:
    """A sighting with a real face crop and its evidence snapshot (the whole photo, the face boxed)."""
    gallery.record_sightings(
        [
            NewSighting(
                camera,
                at,
                at + 2,
                person_id,
                0.82,
                (60, 60, 130, 130),
                jpeg_of(name, i, 112),
                None,
                "m8",
                track,
                snapshot_jpeg=jpeg_of(name, i),
                snapshot_box=(60.0, 60.0, 130.0, 130.0),
            )
        ]
    )
    assert gallery.flush()
    return gallery.history(camera=camera, limit=1, audit=False)[0].id


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def console(qtbot: QtBot, key: bytes, key_file: Path, tmp_path: Path, bus: EventBus) -> Iterator[MainWindow]:
    gallery = Gallery.open(tmp_path / "gallery.db", actor="console-1")
    watch = StorageWatch(gallery, lambda: 200_000, on_alarm=gallery.alarms.raise_system, persist_s=0)
    rx = UdpReceiver(key, "127.0.0.1", 0, config=ReceiverConfig(offline_after_s=2.0)).start()
    services = ConsoleServices(
        rx,
        list,
        protocol.encode_key(key),
        key_file,
        rx.address,
        gallery=gallery,
        events=bus,
        storage=watch.status,
        operator="guard-1@pc",
    )
    window = MainWindow(services)
    window.storage_watch = watch  # type: ignore[attr-defined]  # the station's, for the tests to drive
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    qtbot.waitExposed(window)
    try:
        yield window
    finally:
        window.close()
        window.jobs.wait(10_000)
        rx.stop()
        gallery.close()


def gallery_of(console: MainWindow) -> Gallery:
    assert console.services.gallery is not None
    return console.services.gallery


def test_a_sighting_opens_the_moment_the_bus_says_it_was_recorded(
    qtbot: QtBot, console: MainWindow, bus: EventBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console used to poll sighting_of_track once a second for up to a minute; it hears of it now."""
    gallery = gallery_of(console)

    def polled(*_args: object, **_kw: object) -> None:
        raise AssertionError("the console polled the gallery for the track's sighting")

    monkeypatch.setattr(gallery, "sighting_of_track", polled)
    console.open_track("door", "door-7")
    assert "still in view" in console.statusBar().currentMessage()
    sid = record(gallery, "door", "door-7", None, "Colin_Powell", 2, time.time())
    bus.publish(
        SightingEvent(
            kind=EventKind.SIGHTING_ENDED,
            at=time.time(),
            camera="door",
            track="door-7",
            person=None,
            person_id=None,
            score=0.3,
            decision=Decision.UNKNOWN,
            sighting=sid,
            has_crop=True,
        )
    )
    history = console.history_view
    assert history is not None
    qtbot.waitUntil(lambda: console.tabs.currentWidget() is history and len(history.rows()) == 1, timeout=WAIT_MS)
    assert history.rows()[0].sighting.id == sid


def test_lost_writes_and_a_full_disk_show_in_the_status_bar_and_raise_alarms(qtbot: QtBot, console: MainWindow) -> None:
    gallery = gallery_of(console)
    watch: StorageWatch = console.storage_watch  # type: ignore[attr-defined]
    assert not console.storage_warning.isVisible()
    gallery.set_size_limit(1)  # nothing more fits
    watch.check()
    big = np.ones(8192, np.float32)  # 32 kB a row that no lighter form can leave out: these are lost
    gallery.record_sightings(
        [NewSighting("door", 1.0, 2.0, None, 0.2, (1, 1, 9, 9), b"", big, "m8192", f"t{i}") for i in range(3)]
    )
    assert gallery.flush()
    qtbot.waitUntil(console.storage_warning.isVisible, timeout=WAIT_MS)
    text = console.storage_warning.text()
    assert "Gallery disk nearly full" in text and "3 write(s) lost (3 sightings)" in text and "disk is full" in text
    gallery.set_size_limit(None)  # room again: the alarms about it can be stored
    gallery.alarms.raise_system("writes", "sightings are not being recorded (3 lost so far)")
    queue = console.alerts
    qtbot.waitUntil(lambda: {a.subject for a in queue.alarms} >= {"writes"}, timeout=WAIT_MS)
    assert any(a.kind == "system" for a in queue.alarms) and queue.messages, "a tray message for the station's trouble"


def test_the_alarm_queue_orders_filters_opens_and_acknowledges_between_two_consoles(
    qtbot: QtBot, console: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gallery = gallery_of(console)
    colin, tony = enrol(gallery, "Colin_Powell", 1), enrol(gallery, "Tony_Blair", 1)
    barred = gallery.watchlists.create("Barred", priority=Priority.CRITICAL, sound="bell x3", escalate_after_s=60)
    vip = gallery.watchlists.create("VIP", priority=Priority.LOW, actions=[ListAction.QUEUE])
    now = time.time()
    sid = record(gallery, "door", "door-1", colin, "Colin_Powell", 2, now - 30)
    first = gallery.alarms.raise_watchlist(
        barred, person_id=colin, camera="door", track="door-1", score=0.82, at=now - 30, sighting_id=sid
    )
    queue = console.alerts
    qtbot.waitUntil(lambda: len(queue.alarms) == 1, timeout=WAIT_MS)
    assert queue.rings == 3 and queue.messages == ["Colin_Powell on Barred at door"], "Barred: three bells, tray"
    gallery.alarms.raise_watchlist(vip, person_id=tony, camera="lobby", track="lobby-1", score=0.7, at=now)
    qtbot.waitUntil(lambda: len(queue.alarms) == 2, timeout=WAIT_MS)
    assert [a.watchlist for a in queue.alarms] == ["Barred", "VIP"], "critical before low, whatever the time"
    assert queue.rings == 4 and len(queue.messages) == 1, "VIP's alarm: its bell, no tray message (not its action)"
    queue.set_filter(QueueFilter(watchlist="VIP"))
    qtbot.waitUntil(lambda: [a.watchlist for a in queue.alarms] == ["VIP"], timeout=WAIT_MS)
    queue.set_filter(QueueFilter(camera="door"))
    qtbot.waitUntil(lambda: [a.camera for a in queue.alarms] == ["door"], timeout=WAIT_MS)

    # Opened: the crop, the evidence snapshot, the enrolled photo and the score side by side.
    dialog = console.open_alarm(queue.alarms[0])
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.detail is not None, timeout=WAIT_MS)
    detail = dialog.detail
    assert detail is not None and detail.crop is not None and detail.snapshot is not None
    assert detail.enrolled is not None and "0.820" in dialog.score.text()
    assert dialog.crop.pixmap() is not None and not dialog.snapshot.pixmap().isNull()

    # Left unacknowledged past its list's time, it rings (three bells) and shows the tray message again.
    escalated = gallery.alarms.escalate_due(now=now + 40)
    assert [a.id for a in escalated] == [first.alarm_id]
    qtbot.waitUntil(lambda: queue.rings == 7, timeout=WAIT_MS)
    assert queue.messages and queue.messages[-1].startswith("not acknowledged after 60 s: Colin_Powell on Barred")

    # A second console on the same gallery acknowledges first; this one is told who, when, and what they wrote.
    with Gallery.open(gallery.path, actor="console-2") as other:
        other.alarms.acknowledge(first.alarm_id, "seen on camera 2", by="guard-2@pc2")
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *a: warnings.append(text))
    dialog.note.setPlainText("on my way")
    qtbot.mouseClick(dialog.ack_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(warnings), timeout=WAIT_MS)
    assert f"alarm {first.alarm_id} was already acknowledged by guard-2@pc2" in warnings[0]
    assert '("seen on camera 2")' in warnings[0]
    kept = gallery.alarms.get(first.alarm_id)
    assert (kept.state, kept.acknowledged_by, kept.ack_note) == (
        AlarmState.ACKNOWLEDGED,
        "guard-2@pc2",
        "seen on camera 2",
    )
    qtbot.waitUntil(lambda: bool(queue.alarms) and queue.alarms[0].state is AlarmState.ACKNOWLEDGED, timeout=WAIT_MS)
    qtbot.mouseClick(dialog.close_alarm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gallery.alarms.get(first.alarm_id).state is AlarmState.CLOSED, timeout=WAIT_MS)
    assert gallery.alarms.get(first.alarm_id).closed_by == "guard-1@pc" and len(warnings) == 1


def test_lists_are_set_up_in_words_and_a_list_is_deleted_only_when_confirmed(
    qtbot: QtBot, console: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    gallery = gallery_of(console)
    enrol(gallery, "Colin_Powell", 1)
    gallery.note_camera("door", "10.0.0.7:47800")
    dialog = console.open_watchlists()
    assert isinstance(dialog, WatchlistDialog)
    qtbot.waitUntil(lambda: dialog.busy == 0 and dialog.page is not None, timeout=WAIT_MS)
    choices = dialog.choices()
    assert choices[0].threshold is None and choices[0].label.startswith("The station's threshold (0.644)")
    lenient = [c for c in choices if c.threshold is not None and c.threshold < 0.644]
    stricter = [c for c in choices if c.threshold is not None and c.threshold > 0.644]
    assert lenient and not any(c.allowed for c in lenient), "never more lenient than the station"
    assert stricter and all(c.allowed for c in stricter) and "stranger in" in stricter[0].label

    dialog.new_list()
    dialog.name.setText("x" * 61)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: QMessageBox.StandardButton.Ok)
    dialog.save()
    qtbot.waitUntil(lambda: dialog.busy == 0, timeout=WAIT_MS)
    assert "longer than 60 characters" in dialog.message.text()
    dialog.name.setText("Barred")
    dialog.strictness.setCurrentIndex(dialog.strictness.findData(stricter[0].threshold))
    dialog.cameras.item(0).setCheckState(Qt.CheckState.Checked)
    dialog.priority.setCurrentIndex(dialog.priority.findData(int(Priority.CRITICAL)))
    dialog.escalate.setValue(90)
    dialog.save()
    qtbot.waitUntil(lambda: dialog.busy == 0 and dialog.lists.count() == 2, timeout=WAIT_MS)
    barred = gallery.watchlists.get("Barred")
    assert (barred.threshold, barred.cameras, barred.priority, barred.escalate_after_s) == (
        stricter[0].threshold,
        ("door",),
        1,
        90.0,
    )
    gallery.watchlists.add("Colin_Powell", "Barred")
    dialog.refresh()
    qtbot.waitUntil(lambda: dialog.busy == 0 and "Colin_Powell" in dialog.members.text(), timeout=WAIT_MS)
    asked: list[str] = []
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]

    def question(_p: QWidget | None, _t: str, text: str, *a: object) -> QMessageBox.StandardButton:
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", question)
    dialog.delete_list()
    assert "1 person(s) are on it (Colin_Powell)" in asked[0] and gallery.watchlists.get("Barred")
    dialog.delete_list()
    qtbot.waitUntil(lambda: dialog.busy == 0 and dialog.lists.count() == 1, timeout=WAIT_MS)
    assert [w.name for w in gallery.watchlists.all()] == ["Watchlist"]
    assert [p.name for p in gallery.persons()] == ["Colin_Powell"], "the persons stay"


def test_the_person_page_says_when_and_where_they_were_last_seen_and_opens_their_sightings(
    qtbot: QtBot, console: MainWindow
) -> None:
    gallery = gallery_of(console)
    colin = enrol(gallery, "Colin_Powell", 1)
    enrol(gallery, "Colin_Powell", 2)
    enrol(gallery, "Tony_Blair", 1)
    gallery.watchlists.create("Staff", priority=Priority.LOW)
    gallery.set_watchlist("Colin_Powell", True)
    record(gallery, "door", "d-1", colin, "Colin_Powell", 3, time.time() - 7200)
    last = record(gallery, "gate", "g-1", colin, "Colin_Powell", 4, time.time() - 60)
    view = console.gallery_view
    assert view is not None
    console.tabs.setCurrentWidget(view)
    view.select_person(colin)
    qtbot.waitUntil(lambda: view.busy == 0 and view.page is not None and view.page.person.id == colin, timeout=WAIT_MS)
    assert view.details.text().startswith("last seen ") and " at gate · 2 photo(s) enrolled" in view.details.text()
    assert [view.samples.item(i).text()[:12] for i in range(2)] == ["photo 1  q 0", "photo 2  q 0"]
    assert view.sightings.count() == 2 and view.sightings.item(0).text().endswith("gate  0.82")
    assert view.ticked_lists() == [gallery.watchlists.get("Watchlist").id]

    # The list filter, and ticking a list on the page.
    view.set_list_filter("Watchlist")
    assert [view.list.item(i).text().split("\n")[0] for i in range(view.list.count())] == ["Colin_Powell"]
    staff = next(i for i in range(view.lists_box.count()) if view.lists_box.item(i).text().startswith("Staff"))
    view.lists_box.item(staff).setCheckState(Qt.CheckState.Checked)
    qtbot.waitUntil(lambda: view.busy == 0 and len(gallery.watchlists.lists_of(colin)) == 2, timeout=WAIT_MS)
    view.set_list_filter(None)
    qtbot.waitUntil(lambda: view.list.count() == 2, timeout=WAIT_MS)

    # A sighting on the page opens in History.
    view.sightings.itemDoubleClicked.emit(view.sightings.item(0))
    history = console.history_view
    assert history is not None
    qtbot.waitUntil(lambda: console.tabs.currentWidget() is history and len(history.rows()) == 1, timeout=WAIT_MS)
    assert history.rows()[0].sighting.id == last
