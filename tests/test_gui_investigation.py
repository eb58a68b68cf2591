"""The console's long jobs on files, with real models and a real gallery: "Import a roster…" and
"Scan a video file…", each a background job with a progress bar and a closing summary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.services import ConsoleServices
from network import protocol
from network.udp_receiver import ReceiverConfig, UdpReceiver
from station.scan import ScanSummary
from storage.gallery import Gallery
from tests.conftest import CLIP, FACES, need
from vision.pipeline import FacePipeline

pytestmark = pytest.mark.slow
T0 = 1_790_000_000.0


@pytest.fixture
def console(qtbot: QtBot, key: bytes, key_file: Path, tmp_path: Path, pipeline: FacePipeline) -> Iterator[MainWindow]:
    gallery = Gallery.open(tmp_path / "gallery.db")
    rx = UdpReceiver(key, "127.0.0.1", 0, config=ReceiverConfig()).start()
    services = ConsoleServices(
        rx, list, protocol.encode_key(key), key_file, rx.address, gallery=gallery, faces=pipeline
    )
    window = MainWindow(services)
    qtbot.addWidget(window)
    window.show()
    try:
        yield window
    finally:
        window.close()
        rx.stop()
        gallery.close()


def test_import_a_roster_folder_with_a_progress_bar_and_a_summary_of_refusals(
    qtbot: QtBot, console: MainWindow, tmp_path: Path, warnings: list[str]
) -> None:
    roster = tmp_path / "roster"
    for person in ("Colin_Powell", "Gerhard_Schroeder"):
        (roster / person).mkdir(parents=True)
        for photo in sorted(need(FACES / "identities" / person).glob("*.jpg"))[:2]:
            (roster / person / photo.name).symlink_to(photo)
    (roster / "Colin_Powell" / "scan.jpg").write_text("not a photo")
    dialog = console.import_roster(roster)
    assert dialog is not None
    qtbot.waitUntil(lambda: not dialog.running, timeout=120_000)
    assert dialog.error is None and dialog.bar.value() == 1000
    text = dialog.summary.toPlainText()
    assert text.startswith("2 people, ") and "Colin Powell: scan.jpg: not an image, or unreadable" in text
    gallery = console.services.gallery
    assert gallery is not None
    assert {p.name for p in gallery.persons()} == {"Colin Powell", "Gerhard Schroeder"}
    assert dialog.buttons.standardButtons() == QDialogButtonBox.StandardButton.Close
    # A roster that cannot be read is one message, and no job starts.
    assert console.import_roster(tmp_path / "nowhere") is None
    assert warnings == [f"no roster at {tmp_path / 'nowhere'}"]


def test_scan_a_video_file_then_show_its_sightings_in_history(qtbot: QtBot, console: MainWindow) -> None:
    dialog = console.scan(need(CLIP), "archive", T0)
    assert dialog is not None
    qtbot.waitUntil(lambda: not dialog.running, timeout=180_000)
    assert dialog.error is None
    summary = dialog.result
    assert isinstance(summary, ScanSummary) and summary.camera == "archive" and summary.sightings >= 3
    assert "in History: filter by camera 'archive'" in dialog.summary.toPlainText()
    show = next(b for b in dialog.buttons.buttons() if b.text() == "Show in History")
    assert show.isEnabled()
    show.click()
    history = console.history_view
    assert history is not None and console.tabs.currentWidget() is history
    qtbot.waitUntil(lambda: len(history.rows()) == summary.sightings, timeout=10_000)
    assert {r.sighting.camera for r in history.rows()} == {"archive"}
    assert min(r.sighting.start for r in history.rows()) >= T0


def test_a_scan_stops_when_asked_and_keeps_what_it_saw(qtbot: QtBot, console: MainWindow) -> None:
    dialog = console.scan(need(CLIP), "stopped", T0)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.progress.read()[0] > 0.2, timeout=120_000)
    dialog.reject()  # Escape: asks the job to stop
    assert dialog.running, "the dialog stays until the job has stopped"
    qtbot.waitUntil(lambda: not dialog.running, timeout=60_000)
    summary = dialog.result
    assert isinstance(summary, ScanSummary) and 0 < summary.frames < 130
    assert dialog.status.text().startswith("stopped at your request")
    gallery = console.services.gallery
    assert gallery is not None
    assert len(gallery.history(camera="stopped", limit=50, audit=False)) == summary.sightings
