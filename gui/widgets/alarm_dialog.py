"""One alarm, opened from the queue: the face as it was seen, the evidence snapshot, the enrolled photo and the
score side by side, what happened to it so far, and its workflow (acknowledge with a note, close, open its
sighting in History). Everything is loaded in a background job."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.jobs import Jobs
from gui.scores import score_text
from gui.widgets.alerts_panel import AlarmQueue, when
from gui.widgets.thumbnails import ViewJobs, decode_thumbnail, scaled, snapshot_with_box, to_pixmap
from storage.alarm_records import Alarm, AlarmState
from storage.gallery import Gallery
from storage.watchlist_records import Priority

FACE_PX = 200
SNAPSHOT_PX = 360
LiveCrop = Callable[[Alarm], np.ndarray | None]  # the face cut from the console's recent frames


@dataclass(frozen=True)
class AlarmDetail:
    """What the dialog shows (frozen: it crosses from the loading job)."""

    alarm: Alarm
    crop: np.ndarray | None  # the recorded sighting's best crop, or the live face until it is recorded
    snapshot: np.ndarray | None  # the full frame of the best moment, the face's box drawn
    enrolled: np.ndarray | None  # the person's first enrolled photo
    strictness: float | None  # the list's threshold, where it has its own


def load_detail(gallery: Gallery, alarm_id: int, live_crop: LiveCrop | None) -> AlarmDetail:
    alarm = gallery.alarms.get(alarm_id)
    crop = snapshot = enrolled = None
    if alarm.sighting_id is not None:
        crop = decode_thumbnail(gallery.crop(alarm.sighting_id), FACE_PX)
        snap = gallery.snapshot(alarm.sighting_id)
        snapshot = None if snap is None else snapshot_with_box(snap.jpeg, snap.box, 960)
    if crop is None and live_crop is not None:
        crop = live_crop(alarm)
    if alarm.person_id is not None:
        images = gallery.images(alarm.person_id)
        if images:
            enrolled = decode_thumbnail(gallery.sample_crop(images[0].sample_ids[0]), FACE_PX)
    strictness = None
    if alarm.watchlist_id is not None:
        found = [w for w in gallery.watchlists.all() if w.id == alarm.watchlist_id]
        strictness = found[0].threshold if found else None
    return AlarmDetail(alarm, crop, snapshot, enrolled, strictness)


def _picture(title: str, px: int) -> tuple[QWidget, QLabel]:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    caption = QLabel(title)
    caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
    image = QLabel("…")
    image.setAlignment(Qt.AlignmentFlag.AlignCenter)
    image.setMinimumSize(px, FACE_PX)
    image.setStyleSheet("QLabel { background: #202020; color: #aaa; }")
    layout.addWidget(caption)
    layout.addWidget(image, 1)
    return box, image


class AlarmDialog(QDialog):
    """See the module docstring. ``queue`` runs the workflow (so a refusal reads the same as from the dock)."""

    history_requested = Signal(object)  # the Alarm: open its sighting in History

    def __init__(
        self,
        gallery: Gallery,
        jobs: Jobs,
        queue: AlarmQueue,
        alarm: Alarm,
        *,
        live_crop: LiveCrop | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.queue = queue
        self.alarm = alarm
        self.live_crop = live_crop
        self.work = ViewJobs(jobs, self, "Alarm")
        self.detail: AlarmDetail | None = None
        self.setWindowTitle(f"Alarm {alarm.id}: {alarm.title()}")

        self.title = QLabel(alarm.title())
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        seen_box, self.crop = _picture("Seen", FACE_PX)
        snap_box, self.snapshot = _picture("Evidence snapshot", SNAPSHOT_PX)
        enrolled_box, self.enrolled = _picture("Enrolled photo", FACE_PX)
        self.score = QLabel("")
        self.score.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.score.setMinimumWidth(140)
        pictures = QHBoxLayout()
        for w in (seen_box, snap_box, enrolled_box):
            pictures.addWidget(w)
        pictures.addWidget(self.score)

        self.facts = QLabel("")
        self.facts.setWordWrap(True)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note = QPlainTextEdit()
        self.note.setPlaceholderText("Your note (what you did, who you sent)")
        self.note.setMaximumHeight(70)
        self.ack_button = QPushButton("Acknowledge")
        self.ack_button.clicked.connect(self.acknowledge)
        self.close_alarm_button = QPushButton("Close alarm")
        self.close_alarm_button.clicked.connect(self.close_alarm)
        self.history_button = QPushButton("Open in History")
        self.history_button.clicked.connect(lambda: self.history_requested.emit(self.alarm))
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        for b in (self.ack_button, self.close_alarm_button, self.history_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(dismiss)

        grid = QGridLayout(self)
        grid.addWidget(self.title, 0, 0)
        grid.addLayout(pictures, 1, 0)
        grid.addWidget(self.facts, 2, 0)
        grid.addWidget(self.note, 3, 0)
        grid.addLayout(buttons, 4, 0)
        self._show(alarm)
        self.refresh()

    @property
    def busy(self) -> int:
        return self.work.busy

    def refresh(self) -> None:
        gallery, alarm_id, live = self.gallery, self.alarm.id, self.live_crop
        self.work.run(lambda: load_detail(gallery, alarm_id, live), self._loaded)

    def _loaded(self, detail: AlarmDetail) -> None:
        self.detail = detail
        self._show(detail.alarm)
        for label, image, px, empty in (
            (self.crop, detail.crop, FACE_PX, "no face kept"),
            (self.snapshot, detail.snapshot, SNAPSHOT_PX, "the snapshot comes with the recorded sighting"),
            (self.enrolled, detail.enrolled, FACE_PX, "no enrolled photo"),
        ):
            if image is None:
                label.clear()
                label.setText(empty)
                label.setWordWrap(True)
            else:
                label.setPixmap(scaled(to_pixmap(image, px), px))
        rule = "the station's threshold" if detail.strictness is None else f"{detail.strictness:.3f}"
        list_rule = f"<p>the list needs<br>{rule}</p>" if detail.alarm.watchlist else ""
        self.score.setText(
            f"<p style='font-size:24pt; font-weight:bold'>{score_text(detail.alarm.score, 3)}</p>"
            f"<p>best score</p>{list_rule}"
        )

    def _show(self, alarm: Alarm) -> None:
        self.alarm = alarm
        lines = [
            f"<b>{Priority(alarm.priority).label}</b> · {alarm.kind} · {alarm.state}"
            + (f" · list {alarm.watchlist}" if alarm.watchlist else ""),
            f"camera {alarm.camera or '—'}, raised {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(alarm.raised))}"
            f", last seen {when(alarm.last_seen)}, seen {alarm.hits}×"
            + (f", escalated {alarm.escalations}×" if alarm.escalations else ""),
        ]
        if alarm.detail and alarm.kind != "watchlist":
            lines.append(alarm.detail)
        if alarm.acknowledged_by:
            lines.append(f"acknowledged by {alarm.acknowledged_by}: {alarm.ack_note or '(no note)'}")
        if alarm.closed_by:
            lines.append(f"closed by {alarm.closed_by}: {alarm.close_note or '(no note)'}")
        self.facts.setText("<br>".join(lines))
        self.ack_button.setEnabled(alarm.state is AlarmState.NEW)
        self.close_alarm_button.setEnabled(alarm.state is not AlarmState.CLOSED)
        self.history_button.setEnabled(bool(alarm.track) or alarm.sighting_id is not None)

    def acknowledge(self) -> None:
        self.queue.acknowledge(self.alarm.id, self.note.toPlainText().strip(), self._done)

    def close_alarm(self) -> None:
        self.queue.close_alarm(self.alarm.id, self.note.toPlainText().strip(), self._done)

    def _done(self, alarm: Alarm) -> None:
        self.note.clear()
        self._show(alarm)
