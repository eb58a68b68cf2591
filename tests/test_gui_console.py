"""The whole console with real services: freeze a streamed face, enrol it by drawing a box, see the name live."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.overlay import FaceState
from gui.services import ConsoleServices
from network import protocol
from network.udp_receiver import ReceiverConfig, UdpReceiver
from station.runtime import MAX_RATE, MIN_FACE, THRESHOLD, Recogniser, RecognitionSettings, calibrated_threshold
from storage.gallery import Gallery
from tests.conftest import FACES, SenderFactory, need
from vision.pipeline import FacePipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    p = FacePipeline()
    p.warm_up()
    return p


@pytest.fixture
def console(qtbot: QtBot, key: bytes, key_file: Path, tmp_path: Path, pipeline: FacePipeline) -> Iterator[MainWindow]:
    gallery = Gallery.open(tmp_path / "gallery.db")
    rx = UdpReceiver(key, "127.0.0.1", 0, config=ReceiverConfig(offline_after_s=2.0)).start()
    settings = RecognitionSettings(threshold=calibrated_threshold(pipeline.model), max_rate_hz=4.0)
    recogniser = Recogniser(rx, gallery, pipeline, settings).start()
    services = ConsoleServices(
        rx,
        list,
        protocol.encode_key(key),
        key_file,
        rx.address,
        gallery=gallery,
        faces=pipeline,
        recogniser=recogniser,
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
        recogniser.stop()
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
    assert named.state is FaceState.KNOWN and named.score > 0.5  # this frame's score; the name is the track's vote


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
    assert recogniser.service.matcher is not None and recogniser.service.matcher.threshold == 0.55
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
