"""The whole console with real services: freeze a streamed face, enrol it by drawing a box, see the name live."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox, QTableView
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.overlay import FaceState
from gui.services import ConsoleServices
from network import protocol
from network.udp_receiver import ReceiverConfig, UdpReceiver
from station.alarm_rules import KINDS as ALARM_EVENT_KINDS
from station.alarm_rules import AlarmRules
from station.enrolment import enrol_observation
from station.event_bus import EventBus
from station.event_feed import EventFeed
from station.recent_frames import best_of_track
from station.runtime import (
    MAX_RATE,
    MIN_FACE,
    THRESHOLD,
    LocalFaces,
    Recogniser,
    RecognitionSettings,
    calibrated_threshold,
)
from storage.export import write_rows
from storage.gallery import Gallery
from storage.records import STATES, NewSighting
from tests.conftest import FACES, SenderFactory, need
from vision.faces import DecisionState
from vision.pipeline import FacePipeline

pytestmark = pytest.mark.slow


@pytest.fixture
def console(qtbot: QtBot, key: bytes, key_file: Path, tmp_path: Path, pipeline: FacePipeline) -> Iterator[MainWindow]:
    gallery = Gallery.open(tmp_path / "gallery.db")
    rx = UdpReceiver(key, "127.0.0.1", 0, config=ReceiverConfig(offline_after_s=2.0)).start()
    # Faces from 12 px are tracked, so a face too small to enrol still has a track to follow back.
    settings = RecognitionSettings(threshold=calibrated_threshold(pipeline.model), max_rate_hz=4.0, min_face_px=12)
    recogniser = Recogniser(rx, gallery, LocalFaces(pipeline), settings)
    # The station's event bus and alarm rules, wired as station/station.py wires them.
    bus = EventBus()
    feed = EventFeed(bus)
    feed.attach_gallery(gallery)
    feed.attach_results(recogniser.service.add_listener)
    recogniser.add_sighting_listener(feed.track_listener())
    rules = bus.listen("alarms", AlarmRules(gallery, lambda: settings.threshold).on_event, kinds=ALARM_EVENT_KINDS)
    recogniser.start()
    services = ConsoleServices(
        rx,
        list,
        protocol.encode_key(key),
        key_file,
        rx.address,
        gallery=gallery,
        faces=pipeline,
        recogniser=recogniser,
        events=bus,
        operator="guard@console",
    )
    window = MainWindow(services)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    try:
        yield window
    finally:
        window.close()
        window.jobs.wait(10_000)  # the alarm queue's last load, before the gallery closes
        recogniser.stop()
        bus.unsubscribe(rules)
        rx.stop()
        gallery.close()


def test_enrol_a_streamed_face_by_drawing_a_box_and_see_the_name_live(
    qtbot: QtBot, console: MainWindow, start_sender: SenderFactory, tmp_path: Path
) -> None:
    # A camera streaming photos of one person (a folder source, looped).
    folder = tmp_path / "walkby"
    folder.mkdir()
    for src in sorted(need(FACES / "identities" / "Colin_Powell").glob("*.jpg"))[:4]:
        (folder / src.name).write_bytes(src.read_bytes())
    host, port = console.services.receiver.address
    start_sender("--source", str(folder), "--loop", "--name", "lobby", "--station", f"{host}:{port}", "--fps", "4")
    qtbot.waitUntil(lambda: "lobby" in console.grid.tiles, timeout=15_000)
    tile = console.grid.tiles["lobby"]
    qtbot.waitUntil(lambda: tile.frames_painted > 2, timeout=15_000)
    qtbot.waitUntil(
        lambda: any(o.state is FaceState.UNKNOWN for o in tile.overlays), timeout=60_000
    )  # recognised as a face, not yet anyone
    # Nobody is enrolled yet: there was no one to compare the face with, so no score ("unknown", not "unknown -1.00").
    assert all(o.score is None for o in tile.overlays if o.state is FaceState.UNKNOWN)

    console.freeze_and_enrol("lobby")
    qtbot.waitUntil(lambda: console.enrol_dialog is not None, timeout=10_000)
    dialog = console.enrol_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.busy == 0, timeout=60_000)
    assert dialog.detected, "the frozen frame shows a face"
    x, y, w, h = dialog.detected[0].detection.box
    editor = dialog.editor
    r = editor.picture_rect()
    sx, sy = r.width() / editor.image.width(), r.height() / editor.image.height()
    a = QPoint(round(r.x() + (x - 5) * sx), round(r.y() + (y - 5) * sy))
    b = QPoint(round(r.x() + (x + w + 5) * sx), round(r.y() + (y + h + 5) * sy))
    qtbot.mousePress(editor, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(editor, pos=b)
    qtbot.mouseRelease(editor, Qt.MouseButton.LeftButton, pos=b)
    qtbot.waitUntil(lambda: bool(dialog.candidates) and dialog.candidates[0].assessment is not None, timeout=30_000)
    dialog.person.setCurrentText("Colin Powell")
    assert dialog.enrol_button.isEnabled(), dialog.warnings.text()
    qtbot.mouseClick(dialog.enrol_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(dialog.sample_ids), timeout=20_000)

    # The gallery page lists him; the live tile names him within a few frames.
    gallery_view = console.gallery_view
    assert gallery_view is not None
    console.tabs.setCurrentWidget(gallery_view)
    qtbot.waitUntil(lambda: "Colin Powell" in gallery_view_names(console), timeout=10_000)
    console.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: any(o.label == "Colin Powell" for o in tile.overlays), timeout=30_000)
    named = next(o for o in tile.overlays if o.label == "Colin Powell")
    # This frame's score; the name is the track's vote.
    assert named.state is FaceState.KNOWN and named.score is not None and named.score > 0.5


def walking_away(folder: Path) -> None:
    """Six frames of one face shrinking from about 115 px to 32 px: the last is too small to enrol."""
    folder.mkdir()
    src = cv2.imread(str(need(FACES / "identities" / "Colin_Powell" / "Colin_Powell_0001.jpg")))
    assert src is not None
    for i, scale in enumerate((1.4, 1.1, 0.8, 0.6, 0.45, 0.38)):
        canvas = np.full((400, 400, 3), 110, np.uint8)
        side = round(250 * scale)
        picture = cv2.resize(src, (side, side), interpolation=cv2.INTER_AREA)
        if side > 400:
            cut = (side - 400) // 2
            picture, side = picture[cut : cut + 400, cut : cut + 400], 400
        at = 200 - side // 2
        canvas[at : at + side, at : at + side] = picture
        assert cv2.imwrite(str(folder / f"{i}.jpg"), canvas)


def tracked_back(console: MainWindow, camera: str, frames: int) -> bool:
    kept = console.recent.frames(camera)
    if len(kept) < frames or not kept[-1].faces:
        return False
    best = best_of_track(kept, kept[-1].faces[0].track_id)
    return best is not None and best[0] < 3


def test_a_frozen_face_too_small_to_enrol_steps_back_to_its_best_frame_or_is_enrolled_anyway(
    qtbot: QtBot, console: MainWindow, start_sender: SenderFactory, tmp_path: Path
) -> None:
    walking_away(tmp_path / "away")
    host, port = console.services.receiver.address
    start_sender("--source", str(tmp_path / "away"), "--name", "door", "--station", f"{host}:{port}", "--fps", "2")
    qtbot.waitUntil(lambda: tracked_back(console, "door", 6), timeout=90_000)

    console.freeze_and_enrol("door")
    qtbot.waitUntil(lambda: console.enrol_dialog is not None, timeout=10_000)
    dialog = console.enrol_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.busy == 0 and bool(dialog.detected), timeout=60_000)
    assert (dialog.index, len(dialog.frames)) == (5, 6), "the frozen frame is the newest of six kept"
    assert "frame 6/6" in dialog.frame_label.text()
    dialog.add_detection(0)
    qtbot.waitUntil(lambda: dialog.candidates[0].assessment is not None, timeout=30_000)
    dialog.person.setCurrentText("Colin Powell")
    weak = dialog.candidates[0].assessment
    assert weak is not None and weak.reject_reason == "face too small"
    assert not dialog.enrol_button.isEnabled(), "refused below the quality bar..."
    assert dialog.best_button.isEnabled() and dialog.older_button.isEnabled(), "...but no longer a dead end"

    # Step back one frame and forward again: the picture and its faces follow.
    qtbot.mouseClick(dialog.older_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.busy == 0 and dialog.index == 4, timeout=60_000)
    assert "frame 5/6" in dialog.frame_label.text() and dialog.editor.boxes == []
    assert dialog.detected and dialog.detected[0].detection.box[2] > weak.observation.detection.box[2]
    qtbot.mouseClick(dialog.newer_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.busy == 0 and dialog.index == 5, timeout=60_000)
    assert dialog.editor.boxes == [dialog.candidates[0].box]

    # The track's best frame replaces the weak face, keeping its name.
    qtbot.mouseClick(dialog.best_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: dialog.busy == 0 and len(dialog.candidates) == 1 and dialog.candidates[0].assessment is not None,
        timeout=60_000,
    )
    good = dialog.candidates[0]
    assert good.frame < 3 and dialog.index == good.frame and good.person == "Colin Powell"
    assert good.assessment is not None and good.assessment.reject_reason is None
    assert good.assessment.observation.quality.score > weak.observation.quality.score
    assert dialog.enrol_button.isEnabled(), dialog.warnings.text()
    qtbot.mouseClick(dialog.enrol_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(dialog.sample_ids), timeout=20_000)
    gallery = console.services.gallery
    assert gallery is not None
    (sample,) = gallery.samples("Colin Powell")
    assert sample.source.startswith("camera door at ")

    # Or the weak face itself, explicitly, and the audit log says it was below the bar and why.
    console.freeze_and_enrol("door")
    qtbot.waitUntil(lambda: console.enrol_dialog is not dialog and console.enrol_dialog is not None, timeout=10_000)
    again = console.enrol_dialog
    assert again is not None
    qtbot.waitUntil(lambda: again.busy == 0 and bool(again.detected), timeout=60_000)
    again.add_detection(0)
    qtbot.waitUntil(lambda: again.candidates[0].assessment is not None, timeout=30_000)
    again.person.setCurrentText("Colin Powell")
    assert again.enrol_anyway.isVisible() and not again.enrol_button.isEnabled()
    again.enrol_anyway.setChecked(True)
    assert again.enrol_button.isEnabled() and again.enrol_button.text() == "Enrol anyway"
    qtbot.mouseClick(again.enrol_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(again.sample_ids), timeout=20_000)
    assert gallery.person("Colin Powell").samples == 2
    (entry,) = [
        e for e in gallery.audit_log(action="enrol") if json.loads(e.details)["sample_id"] == again.sample_ids[0]
    ]
    details = json.loads(entry.details)
    assert details["below_quality_bar"] is True and details["reason"] == "face too small"
    assert details["face_px"] < 40

    # Or step back by hand and click the face there: it replaces the refused one, keeping its name.
    console.freeze_and_enrol("door")
    qtbot.waitUntil(lambda: console.enrol_dialog not in (dialog, again, None), timeout=10_000)
    third = console.enrol_dialog
    assert third is not None
    qtbot.waitUntil(lambda: third.busy == 0 and bool(third.detected), timeout=60_000)
    third.add_detection(0)
    third.person.setCurrentText("Colin Powell")
    third.show_frame(2)
    qtbot.waitUntil(lambda: third.busy == 0 and third.index == 2 and bool(third.detected), timeout=60_000)
    assert third.editor.labels == []
    third.add_detection(0)
    qtbot.waitUntil(lambda: third.busy == 0 and third.candidates[0].assessment is not None, timeout=30_000)
    (taken,) = third.candidates
    assert (taken.frame, taken.person) == (2, "Colin Powell") and third.editor.labels == ["1"]
    assert taken.assessment is not None and taken.assessment.reject_reason is None and third.enrol_button.isEnabled()


def appearances(folder: Path, photos: list[Path], frames_each: int, blanks: int) -> None:
    """Each photo for ``frames_each`` frames, then ``blanks`` empty frames (the track ends, a sighting is recorded)."""
    folder.mkdir()
    n = 0
    for path in photos:
        image = cv2.imread(str(path))
        assert image is not None
        for frames, picture in ((frames_each, image), (blanks, np.full_like(image, 110))):
            for _ in range(frames):
                assert cv2.imwrite(str(folder / f"{n:03d}.jpg"), picture)
                n += 1


def cell(table: QTableView, row: int, column: int) -> str:
    value = table.model().index(row, column).data()
    return "" if value is None else str(value)


def colin(i: int) -> Path:
    return need(FACES / "identities" / "Colin_Powell" / f"Colin_Powell_{i:04d}.jpg")


def test_a_watchlist_alarm_shows_the_face_and_opens_its_sighting_in_history(
    qtbot: QtBot, console: MainWindow, start_sender: SenderFactory, tmp_path: Path, pipeline: FacePipeline
) -> None:
    gallery = console.services.gallery
    assert gallery is not None
    first = cv2.imread(str(colin(1)))
    assert first is not None
    enrol_observation(gallery, "Colin Powell", pipeline.central_face(np.asarray(first, np.uint8)), "test")
    gallery.set_watchlist("Colin Powell", True)
    appearances(tmp_path / "visit", [colin(2), colin(3)], frames_each=8, blanks=8)
    host, port = console.services.receiver.address
    start_sender("--source", str(tmp_path / "visit"), "--name", "hall", "--station", f"{host}:{port}", "--fps", "4")

    # The station's rules raise the alarm; the queue hears of it, rings and shows it.
    queue = console.alerts
    qtbot.waitUntil(lambda: any(a.kind == "watchlist" for a in queue.alarms), timeout=60_000)
    (alarm,) = [a for a in queue.alarms if a.kind == "watchlist"]
    assert alarm.track.startswith("hall-") and alarm.camera == "hall" and queue.rings >= 1
    assert alarm.title() == "Colin Powell on Watchlist" and alarm.score is not None and 0.5 < alarm.score < 1.0
    shown = [i.text() if i is not None else "" for i in (queue.table.item(0, c) for c in (2, 3))]
    assert shown[0].startswith("Colin Powell on Watchlist") and shown[1] == "new"

    # Opening it: the face, cut from the frame it was seen in until its sighting is recorded, beside the score.
    dialog = console.open_alarm(alarm)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.busy == 0 and dialog.detail is not None, timeout=10_000)
    assert dialog.detail is not None and dialog.detail.crop is not None, "the face is shown"
    assert dialog.detail.enrolled is not None, "beside the enrolled photo"
    assert f"{alarm.score:.3f}" in dialog.score.text()

    # "Open in History" opens its sighting the moment the station says it was recorded (no polling).
    qtbot.mouseClick(dialog.history_button, Qt.MouseButton.LeftButton)
    history = console.history_view
    assert history is not None
    qtbot.waitUntil(lambda: console.tabs.currentWidget() is history and len(history.rows()) == 1, timeout=60_000)
    (row,) = history.rows()
    assert row.sighting.track == alarm.track and row.sighting.camera == "hall"
    assert row.sighting.person == "Colin Powell"
    qtbot.waitUntil(lambda: history.selected() == row.sighting, timeout=5_000)
    assert cell(history.table, 0, 4) == f"{row.sighting.score:.3f}"
    assert f"Colin Powell (score {row.sighting.score:.3f})" in history.crop_text.text()

    # Acknowledged with a note, by this console's operator; the alarm is linked to its sighting.
    dialog.note.setPlainText("guard on the way")
    qtbot.mouseClick(dialog.ack_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gallery.alarms.get(alarm.id).state == "acknowledged", timeout=10_000)
    done = gallery.alarms.get(alarm.id)
    assert (done.acknowledged_by, done.ack_note, done.sighting_id) == (
        "guard@console",
        "guard on the way",
        row.sighting.id,
    )


def test_a_named_cluster_keeps_its_scores_and_its_samples_their_quality(
    qtbot: QtBot, console: MainWindow, start_sender: SenderFactory, tmp_path: Path, pipeline: FacePipeline
) -> None:
    gallery = console.services.gallery
    assert gallery is not None
    blair = cv2.imread(str(need(FACES / "identities" / "Tony_Blair" / "Tony_Blair_0002.jpg")))
    assert blair is not None
    enrol_observation(
        gallery, "Tony Blair", pipeline.central_face(np.asarray(blair, np.uint8)), "test"
    )  # someone to compare with
    appearances(tmp_path / "visits", [colin(1), colin(2), colin(3)], frames_each=3, blanks=8)
    host, port = console.services.receiver.address
    start_sender("--source", str(tmp_path / "visits"), "--name", "porch", "--station", f"{host}:{port}", "--fps", "4")
    qtbot.waitUntil(lambda: gallery.count_sightings() >= 3, timeout=90_000)
    assert gallery.flush()
    recorded = {s.id: s for s in gallery.history(camera="porch")}
    qualities = dict(gallery.read(lambda c: c.execute("SELECT id, quality FROM sightings").fetchall()))
    assert all(0.0 < qualities[i] <= 1.0 for i in recorded), qualities
    assert all(s.score is not None and s.score < 0.6 for s in recorded.values()), "compared with Tony Blair, not him"

    view = console.unknown_view
    assert view is not None
    console.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.busy == 0 and bool(view.clusters), timeout=30_000)
    row = max(range(len(view.clusters)), key=lambda r: view.clusters[r].cluster.size)
    ids = set(view.clusters[row].cluster.sighting_ids)
    view.name_cluster(row, "Colin Powell")
    qtbot.waitUntil(lambda: view.busy == 0 and "Colin Powell" in [p.name for p in gallery.persons()], timeout=30_000)

    # The samples carry the quality measured when the faces were recognised, not 0.
    samples = gallery.samples("Colin Powell")
    assert samples and all(s.quality > 0.3 for s in samples)
    by_source = {int(s.source.split()[1]): s.quality for s in samples}
    assert all(abs(q - qualities[sid]) < 1e-9 for sid, q in by_source.items())
    page = console.gallery_view
    assert page is not None
    console.tabs.setCurrentWidget(page)
    page.select_person(gallery.person("Colin Powell").id)
    qtbot.waitUntil(lambda: page.busy == 0 and page.samples.count() == len(samples), timeout=30_000)
    texts = [page.samples.item(i).text() for i in range(page.samples.count())]
    assert all("q 0.00" not in t and "q 0." in t for t in texts), texts

    # The named sightings keep the score they were recorded with (against Tony Blair), shown as it was.
    named = {s.id: s for s in gallery.history(person="Colin Powell")}
    assert set(named) == ids
    assert all(named[i].score == recorded[i].score for i in ids)
    history = console.history_view
    assert history is not None
    console.show_sighting(min(ids))
    qtbot.waitUntil(lambda: history.busy == 0 and len(history.rows()) == 1, timeout=30_000)
    assert cell(history.table, 0, 4) == f"{recorded[min(ids)].score:.3f}"
    assert cell(history.table, 0, 3) == "Colin Powell"


def test_history_and_exports_show_no_score_where_there_was_no_comparison(
    qtbot: QtBot, console: MainWindow, tmp_path: Path
) -> None:
    gallery = console.services.gallery
    assert gallery is not None
    box = (1.0, 2.0, 30.0, 40.0)
    gallery.record_sightings(
        [
            NewSighting("gate", 1000.0, 1001.0, None, None, box, b"", None, "facenet-512", "gate-1"),
            NewSighting("gate", 1002.0, 1003.0, None, 0.41, box, b"", None, "facenet-512", "gate-2"),
        ]
    )
    assert gallery.flush()
    history = console.history_view
    assert history is not None
    console.tabs.setCurrentWidget(history)
    history.search()
    qtbot.waitUntil(lambda: history.busy == 0 and len(history.rows()) == 2, timeout=30_000)
    assert [cell(history.table, r, 4) for r in range(2)] == ["0.410", "—"]
    history.export_csv(tmp_path / "history.csv")
    qtbot.waitUntil(lambda: history.busy == 0 and (tmp_path / "history.csv").exists(), timeout=30_000)
    with (tmp_path / "history.csv").open(newline="") as f:
        assert [r["score"] for r in csv.DictReader(f)] == ["", "0.41"]
    out = io.StringIO()
    write_rows(gallery.history(), out, "json")
    assert [json.loads(line)["score"] for line in out.getvalue().splitlines()] == [0.41, None]
    assert tuple(s.value for s in DecisionState) == STATES, "storage's states are vision's"


def gallery_view_names(console: MainWindow) -> str:
    view = console.gallery_view
    assert view is not None
    lst = view.list
    return " ".join(lst.item(i).text() for i in range(lst.count()))


def test_settings_apply_to_the_running_recogniser(
    qtbot: QtBot, console: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    recogniser = console.services.recogniser
    assert recogniser is not None
    console.apply_settings({THRESHOLD: 0.55, MIN_FACE: 60, MAX_RATE: 2.0})
    assert recogniser.settings.threshold == 0.55
    assert recogniser.settings.min_face_px == 60
    assert recogniser.service.config.max_rate_hz == 2.0
    live = recogniser.service.decider.live
    assert live is not None and live.threshold == 0.55
    assert console.threshold() == 0.55, "the window asks the running recogniser, not a copied constant"
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args, **kw: shown.append(str(args[2])))
    console.apply_settings({MIN_FACE: 1500})  # refused by the same table as the dialog and the CLI
    assert recogniser.settings.min_face_px == 60
    assert shown and "minimum face size must be between 12 and 1000 px" in shown[0]


def test_an_unreadable_image_gives_a_message_not_a_traceback(
    qtbot: QtBot, console: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args, **kw: shown.append(str(args[2])))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    console.enrol_from_file(bad)
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert "cannot read image" in shown[0] and "broken.jpg" in shown[0]
    assert console.enrol_dialog is None
    assert console.isVisible()


def test_the_console_shows_where_files_live_and_backs_up_the_running_gallery(
    qtbot: QtBot, console: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gallery = console.services.gallery
    assert gallery is not None
    paths = console.paths()
    assert paths["Gallery"] == str(gallery.path.absolute()) and paths["Station key"] == str(console.services.key_file)
    gallery.set_setting("marker", "before backup")
    target = tmp_path / "backup.db"
    console.backup_to(target)
    qtbot.waitUntil(lambda: "backed up" in console.statusBar().currentMessage(), timeout=20_000)
    with Gallery.open(target) as copy:
        assert copy.get_setting("marker") == "before backup"
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args, **kw: shown.append(str(args[2])))
    console.backup_to(target)  # exists: refused with a message, the first copy untouched
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert "exists" in shown[0]
