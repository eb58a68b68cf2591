"""The console's long jobs on files: "Import a roster…" and "Scan a video file…".

Both run the same Qt-free code as the command line (station/roster.py for ``enrol --folders``,
station/scan.py for ``scan``) as a background job with a progress bar (gui/widgets/task_dialog.py),
and end with a summary: the refusals of a roster, the sightings of a scan (which then show in
History like any camera's).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QDateTime
from PySide6.QtWidgets import (
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.jobs import Jobs
from gui.widgets.task_dialog import Progress, TaskDialog, open_task
from station.enrolment import Companion
from station.roster import PersonResult, RosterError, RosterSummary, import_roster, read_roster, summary_text
from station.runtime import RecognitionSettings
from station.scan import ScanSummary, scan_file
from storage.gallery import Gallery
from vision.face_sources import LivePipeline

VIDEO_FILTER = "Videos (*.mp4 *.mkv *.avi *.mov *.webm *.m4v *.ts);;All files (*)"


def choose_roster(parent: QWidget) -> Path | None:
    """Ask for a roster: a folder of person folders, or a CSV of name,path rows."""
    box = QMessageBox(parent)
    box.setWindowTitle("Import a roster")
    box.setText(
        "A roster is a folder with one folder of photos per person (named after the person), or a CSV file "
        "of name,path rows."
    )
    folder = box.addButton("Folder of folders…", QMessageBox.ButtonRole.AcceptRole)
    csv = box.addButton("CSV file…", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    if box.clickedButton() is folder:
        chosen = QFileDialog.getExistingDirectory(parent, "Roster folder (one folder per person)")
        return Path(chosen) if chosen else None
    if box.clickedButton() is csv:
        chosen, _ = QFileDialog.getOpenFileName(parent, "Roster CSV (name,path)", "", "CSV (*.csv);;All files (*)")
        return Path(chosen) if chosen else None
    return None


def import_roster_dialog(
    path: Path,
    gallery: Gallery,
    faces: object,
    jobs: Jobs,
    parent: QWidget | None = None,
    *,
    companions: Sequence[Companion] = (),
) -> TaskDialog | None:
    """Read the roster now (a bad one is one message), then enrol it in the background with a progress bar."""
    try:
        entries = read_roster(path)
    except RosterError as exc:
        QMessageBox.warning(parent, "Import a roster", str(exc))
        return None

    def work(progress: Progress) -> tuple[list[PersonResult], RosterSummary]:
        progress.update(0.0, f"{len(entries)} people; loading the face models…")
        return import_roster(
            gallery,
            faces,  # type: ignore[arg-type]  # the console's lazy pipeline
            entries,
            progress=progress.update,
            cancelled=progress.cancelled.is_set,
            companions=companions,
        )

    def summarise(result: tuple[list[PersonResult], RosterSummary]) -> str:
        return summary_text(*result)

    return open_task(TaskDialog(f"Import a roster: {path.name}", jobs, work, summarise, parent))


class ScanOptionsDialog(QDialog):
    """The camera name and the start time of the footage (the file's modification time by default)."""

    def __init__(self, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Scan {path.name}")
        self.camera = QLineEdit(path.stem)
        self.start = QDateTimeEdit()
        self.start.setCalendarPopup(True)
        self.start.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = time.time()
        self.start.setDateTime(QDateTime.fromSecsSinceEpoch(int(mtime)))
        form = QFormLayout()
        form.addRow("Camera name", self.camera)
        form.addRow("Footage starts at", self.start)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def values(self) -> tuple[str, float]:
        name = self.camera.text().strip()
        return name, float(self.start.dateTime().toSecsSinceEpoch())


def scan_dialog(
    path: Path,
    camera: str,
    start: float,
    gallery: Gallery,
    pipeline: LivePipeline,
    settings: RecognitionSettings,
    jobs: Jobs,
    parent: QWidget | None = None,
) -> TaskDialog:
    """Scan ``path`` through the engine in the background; the sightings go into the gallery's history."""

    def work(progress: Progress) -> ScanSummary:
        progress.update(0.0, "loading the face models…")
        return scan_file(
            path,
            pipeline=pipeline,
            gallery=gallery,
            settings=settings,
            camera=camera or None,
            start=start,
            progress=lambda done: progress.update(done, f"{path.name}: {done:.0%}"),
            stop=progress.cancelled,
        )

    def summarise(s: ScanSummary) -> str:
        began = datetime.fromtimestamp(s.start, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        return (
            f"{s.frames} frames analysed ({s.duration_s:.1f} s of footage from {began}) in {s.seconds:.1f} s.\n"
            f"{s.sightings} sightings recorded as camera {s.camera!r}, {s.named} of them named; "
            f"{s.faces} faces seen, {s.embedded} embedded.\nThey are in History: filter by camera {s.camera!r}."
        )

    return open_task(TaskDialog(f"Scan {path.name}", jobs, work, summarise, parent))


def history_button(dialog: TaskDialog, show: object) -> QPushButton:
    """A "Show in History" button on a finished scan's dialog."""
    button = dialog.buttons.addButton("Show in History", QDialogButtonBox.ButtonRole.ActionRole)
    button.setEnabled(False)
    dialog.finished_with.connect(lambda _result: button.setEnabled(True))
    button.clicked.connect(show)
    return button
