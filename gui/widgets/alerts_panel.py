"""The Alerts dock as an alarm queue: the gallery's alarms (storage/alarms.py), ordered by priority then time,
filtered by state, list and camera; opening one shows the crop, the evidence snapshot, the enrolled photo and
the score side by side (gui/widgets/alarm_dialog.py); acknowledging takes a note.

Alarms are raised by the station (station/alarm_rules.py), headless or not, and may come from another console
on the same gallery: the queue polls the gallery's alarm counter (a cheap read, in a job) and reloads when it
changes. A new alarm rings its list's sound, shows a tray message and brings the queue to the front, as its
list's actions say; an escalation (left unacknowledged past its list's time) does it again. Cameras going
online or offline are notices below the queue, not alarms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QPushButton,
    QSystemTrayIcon,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import Shiboken

from gui.jobs import Jobs
from gui.scores import score_text
from gui.widgets.thumbnails import ViewJobs
from storage.alarm_records import Alarm, AlarmKind, AlarmState
from storage.gallery import Gallery
from storage.watchlist_records import ListAction, Priority

log = logging.getLogger(__name__)

MAX_NOTICES = 200
RING_GAP_MS = 350  # between the bells of "bell x3"
STATE_CHOICES: tuple[tuple[str, tuple[AlarmState, ...]], ...] = (
    ("open", (AlarmState.NEW, AlarmState.ACKNOWLEDGED)),
    ("new", (AlarmState.NEW,)),
    ("acknowledged", (AlarmState.ACKNOWLEDGED,)),
    ("closed", (AlarmState.CLOSED,)),
    ("all", ()),
)
PRIORITY_COLOURS = {
    Priority.CRITICAL: QColor(235, 60, 60),
    Priority.HIGH: QColor(235, 140, 40),
    Priority.NORMAL: QColor(200, 170, 30),
    Priority.LOW: QColor(140, 140, 160),
}
COLUMNS = ("Priority", "Raised", "Alarm", "State")
WIDTHS = (64, 74, 0, 104)  # the alarm's own column takes what is left
STATE_WORDS = {AlarmState.NEW: "new", AlarmState.ACKNOWLEDGED: "acknowledged", AlarmState.CLOSED: "closed"}


@dataclass(frozen=True)
class Notice:
    """A camera online or offline: shown below the queue, not an alarm."""

    camera: str
    text: str
    at: float


@dataclass(frozen=True)
class QueueFilter:
    states: tuple[AlarmState, ...] = (AlarmState.NEW, AlarmState.ACKNOWLEDGED)
    watchlist: str | None = None
    camera: str | None = None


@dataclass(frozen=True)
class QueuePage:
    """One load of the queue (frozen: it crosses from the job to the GUI thread)."""

    alarms: tuple[Alarm, ...]
    lists: tuple[str, ...]
    cameras: tuple[str, ...]
    revision: int
    fresh: tuple[Alarm, ...]  # new or escalated since the last load (they ring)


def load_queue(gallery: Gallery, f: QueueFilter, seen: dict[int, int] | None) -> tuple[QueuePage, dict[int, int]]:
    """The queue under ``f`` and the open alarms' escalation counts; ``fresh`` holds those new or escalated
    since ``seen`` (the counts of the last load; None on the first load, when nothing rings)."""
    revision = gallery.alarms.revision()
    alarms = gallery.alarms.query(states=f.states, watchlist=f.watchlist, camera=f.camera)
    waiting = gallery.alarms.query(states=[AlarmState.NEW])
    counts = {a.id: a.escalations for a in waiting}
    fresh: tuple[Alarm, ...] = ()
    if seen is not None:
        fresh = tuple(a for a in waiting if a.id not in seen or a.escalations > seen[a.id])
    lists, cameras = gallery.alarms.facets()
    return QueuePage(tuple(alarms), tuple(lists), tuple(cameras), revision, fresh), counts


def when(epoch: float) -> str:
    today = time.strftime("%Y-%m-%d") == time.strftime("%Y-%m-%d", time.localtime(epoch))
    return time.strftime("%H:%M:%S" if today else "%m-%d %H:%M", time.localtime(epoch))


class AlarmQueue(QWidget):
    """The alarm queue; see the module docstring. ``gallery`` None (a live-only console): notices only."""

    open_requested = Signal(object)  # an Alarm: show it (the main window opens gui/widgets/alarm_dialog.py)
    alarm_arrived = Signal(object)  # a new or escalated Alarm, after its sound and tray message
    focus_requested = Signal()  # a list's "focus" action: bring the queue to the front

    def __init__(
        self,
        gallery: Gallery | None,
        jobs: Jobs,
        *,
        operator: str = "operator",
        tray: QSystemTrayIcon | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.operator = operator
        self.tray = tray
        self.work = ViewJobs(jobs, self, "Alarms")
        self.filter = QueueFilter()
        self.alarms: list[Alarm] = []
        self.revision: int | None = None
        self._seen: dict[int, int] | None = None  # open alarms' escalation counts at the last load
        self._polling = False
        self._ticket = 0  # the newest load; an answer to an older one is dropped
        self.rings = 0  # bells rung (tests)
        self.messages: list[str] = []  # tray messages shown (or that would be, without a tray)

        self.state = QComboBox()
        for label, states in STATE_CHOICES:
            self.state.addItem(label, states)
        self.list_filter = QComboBox()
        self.list_filter.addItem("any list", None)
        self.camera_filter = QComboBox()
        self.camera_filter.addItem("any camera", None)
        for combo in (self.state, self.list_filter, self.camera_filter):
            combo.currentIndexChanged.connect(self._filter_changed)
        filters = QHBoxLayout()
        for combo in (self.state, self.list_filter, self.camera_filter):
            filters.addWidget(combo, 1)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setDefaultSectionSize(2 * self.fontMetrics().height() + 10)
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(30)
        for col, width in enumerate(WIDTHS):
            if width:
                header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
                self.table.setColumnWidth(col, width)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.cellDoubleClicked.connect(lambda row, _col: self._open_row(row))
        self.table.setToolTip("Double-click an alarm to see its face, evidence snapshot and enrolled photo")

        self.open_button = QPushButton("Open…")
        self.open_button.clicked.connect(lambda: self._open_row(self._selected_row()))
        self.ack_button = QPushButton("Acknowledge…")
        self.ack_button.clicked.connect(self.acknowledge_selected)
        self.close_button = QPushButton("Close…")
        self.close_button.clicked.connect(self.close_selected)
        buttons = QHBoxLayout()
        for b in (self.open_button, self.ack_button, self.close_button):
            buttons.addWidget(b)
        self.summary = QLabel("")
        self.sound = QCheckBox("Sound")
        self.sound.setChecked(True)
        self.notices_list = QListWidget()
        self.notices_list.setMaximumHeight(90)
        self.notices_list.setToolTip("Cameras going online and offline (not alarms)")

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.sound)
        layout.addLayout(row)
        layout.addWidget(QLabel("Camera notices"))
        layout.addWidget(self.notices_list)
        for w in (self.state, self.list_filter, self.camera_filter, self.table):
            w.setEnabled(gallery is not None)
        self._selection_changed()
        if gallery is None:
            self.summary.setText("no gallery: camera notices only")
        else:
            self.refresh()

    @property
    def busy(self) -> int:
        return self.work.busy

    # ---------------------------------------------------------------- loading

    def poll(self) -> None:
        """On the window's timer: reload when the gallery's alarms changed (the check runs in a job)."""
        gallery = self.gallery
        if gallery is None or self._polling:
            return
        self._polling = True

        def done(revision: int) -> None:
            if not Shiboken.isValid(self):
                return
            self._polling = False
            if revision != self.revision:
                self.refresh()

        def failed(exc: Exception) -> None:  # logged, not a box a second: the next tick tries again
            log.warning("the alarm queue could not be polled: %s", exc)
            if Shiboken.isValid(self):
                self._polling = False

        self.work.jobs.run(gallery.alarms.revision, done, failed)

    def refresh(self) -> None:
        gallery, f, seen = self.gallery, self.filter, self._seen
        if gallery is None:
            return

        def failed(exc: Exception) -> None:  # said in the summary line: a box on every change would pile up
            log.warning("the alarm queue could not be loaded: %s", exc)
            if Shiboken.isValid(self):
                self.summary.setText(f"alarms not loaded: {exc}")

        self._ticket += 1
        ticket = self._ticket

        def loaded(result: tuple[QueuePage, dict[int, int]]) -> None:
            if Shiboken.isValid(self) and ticket == self._ticket:  # a newer load (another filter) supersedes it
                self._loaded(result)

        self.work.jobs.run(lambda: load_queue(gallery, f, seen), loaded, failed)

    def _loaded(self, result: tuple[QueuePage, dict[int, int]]) -> None:
        page, counts = result
        self._seen = counts
        self.revision = page.revision
        self._fill_filters(page)
        selected = self.selected()
        self.alarms = list(page.alarms)
        self.table.setRowCount(len(self.alarms))
        for row, alarm in enumerate(self.alarms):
            self._fill_row(row, alarm)
        ids = [a.id for a in self.alarms]
        if selected is not None and selected.id in ids:
            self.table.selectRow(ids.index(selected.id))
        waiting = sum(1 for a in self.alarms if a.state is AlarmState.NEW)
        self.summary.setText(f"{len(self.alarms)} alarm(s), {waiting} waiting" if self.alarms else "no alarms")
        self._selection_changed()
        for alarm in page.fresh:
            self.notify(alarm)

    def _fill_filters(self, page: QueuePage) -> None:
        for combo, entries in ((self.list_filter, page.lists), (self.camera_filter, page.cameras)):
            current = combo.currentData()
            combo.blockSignals(True)
            while combo.count() > 1:
                combo.removeItem(1)
            for name in entries:
                combo.addItem(name, name)
            combo.setCurrentIndex(max(0, combo.findData(current)))
            combo.blockSignals(False)

    def _fill_row(self, row: int, alarm: Alarm) -> None:
        priority = Priority(alarm.priority)
        facts = [alarm.camera or "station", *([f"score {score_text(alarm.score, 2)}"] if alarm.score else [])]
        facts += [alarm.detail] if alarm.kind is AlarmKind.STRANGER and alarm.detail else []
        facts += [f"seen {alarm.hits}×"] if alarm.hits > 1 else []
        facts += [f"escalated {alarm.escalations}×"] if alarm.escalations else []
        cells = (
            priority.label,
            when(alarm.raised),
            f"{alarm.title()}\n{' · '.join(facts)}",
            STATE_WORDS[alarm.state],
        )
        colour = PRIORITY_COLOURS[priority]
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if alarm.state is AlarmState.CLOSED:
                item.setForeground(QBrush(QColor(130, 130, 130)))
            elif col in (0, 2):
                item.setForeground(QBrush(colour))
            if alarm.state is AlarmState.NEW:
                font = QFont(item.font())
                font.setBold(True)
                item.setFont(font)
            item.setToolTip(_tooltip(alarm))
            self.table.setItem(row, col, item)

    def _filter_changed(self) -> None:
        states = self.state.currentData()
        self.filter = QueueFilter(
            states=tuple(states) if states is not None else (),
            watchlist=self.list_filter.currentData(),
            camera=self.camera_filter.currentData(),
        )
        self.refresh()

    def set_filter(self, f: QueueFilter) -> None:
        """Put ``f`` into the filter row (for tests and the guide's screenshots) and reload."""
        for combo, value in ((self.list_filter, f.watchlist), (self.camera_filter, f.camera)):
            if value is not None and combo.findData(value) < 0:
                combo.addItem(value, value)
        for combo in (self.state, self.list_filter, self.camera_filter):
            combo.blockSignals(True)
        self.state.setCurrentIndex(max(0, [s for _, s in STATE_CHOICES].index(f.states)))
        self.list_filter.setCurrentIndex(max(0, self.list_filter.findData(f.watchlist)))
        self.camera_filter.setCurrentIndex(max(0, self.camera_filter.findData(f.camera)))
        for combo in (self.state, self.list_filter, self.camera_filter):
            combo.blockSignals(False)
        self._filter_changed()

    # -------------------------------------------------------------- selection

    def _selected_row(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def selected(self) -> Alarm | None:
        row = self._selected_row()
        return self.alarms[row] if 0 <= row < len(self.alarms) else None

    def _selection_changed(self) -> None:
        alarm = self.selected()
        self.open_button.setEnabled(alarm is not None)
        self.ack_button.setEnabled(alarm is not None and alarm.state is AlarmState.NEW)
        self.close_button.setEnabled(alarm is not None and alarm.state is not AlarmState.CLOSED)

    def _open_row(self, row: int) -> None:
        if 0 <= row < len(self.alarms):
            self.open_requested.emit(self.alarms[row])

    # -------------------------------------------------------------- workflow

    def acknowledge_selected(self) -> None:
        alarm = self.selected()
        if alarm is None:
            return
        note, ok = QInputDialog.getMultiLineText(self, "Acknowledge", f"{alarm.title()}\n\nYour note:")
        if ok:
            self.acknowledge(alarm.id, note)

    def close_selected(self) -> None:
        alarm = self.selected()
        if alarm is None:
            return
        note, ok = QInputDialog.getMultiLineText(self, "Close", f"{alarm.title()}\n\nHow it ended:")
        if ok:
            self.close_alarm(alarm.id, note)

    def acknowledge(self, alarm_id: int, note: str, done: Callable[[Alarm], object] | None = None) -> None:
        """Acknowledge as this console's operator; a conflict (another console was first) is said in a box."""
        gallery, who = self.gallery, self.operator
        if gallery is not None:
            self._step(lambda: gallery.alarms.acknowledge(alarm_id, note, by=who), done)

    def close_alarm(self, alarm_id: int, note: str, done: Callable[[Alarm], object] | None = None) -> None:
        gallery, who = self.gallery, self.operator
        if gallery is not None:
            self._step(lambda: gallery.alarms.close(alarm_id, note, by=who), done)

    def _step(self, fn: Callable[[], Alarm], done: Callable[[Alarm], object] | None) -> None:
        def ok(alarm: Alarm) -> None:
            self.refresh()
            if done is not None:
                done(alarm)

        # A refusal (AlarmConflict: another console was first) is said in a box by ViewJobs, naming who and
        # when; the queue then shows the alarm as it now is.
        self.work.run(fn, ok, failed=lambda _message: self.refresh())

    # ------------------------------------------------------------ attention

    def notify(self, alarm: Alarm) -> None:
        """A new or escalated alarm: its sound, tray message and focus, as its list's actions say."""
        escalated = alarm.escalations > 0
        if self.sound.isChecked():
            self.ring(alarm.sound)
        if ListAction.TRAY in alarm.actions or alarm.kind is not AlarmKind.WATCHLIST or escalated:
            prefix = f"not acknowledged after {alarm.escalations * alarm.escalate_after_s:.0f} s: " if escalated else ""
            said = f" ({alarm.detail})" if alarm.kind is AlarmKind.STRANGER and alarm.detail else ""
            self.message(f"{prefix}{alarm.title()}{said}" + (f" at {alarm.camera}" if alarm.camera else ""))
        if ListAction.FOCUS in alarm.actions or escalated:
            self.focus_requested.emit()
        self.alarm_arrived.emit(alarm)

    def ring(self, sound: str) -> None:
        times = {"bell": 1, "bell x3": 3}.get(sound, 0)
        for i in range(times):
            QTimer.singleShot(i * RING_GAP_MS, QApplication.beep)
        self.rings += times

    def message(self, text: str) -> None:
        self.messages.append(text)
        del self.messages[:-100]
        if self.tray is not None and self.tray.isVisible():
            self.tray.showMessage("FaceStation alarm", text, QSystemTrayIcon.MessageIcon.Warning)

    # --------------------------------------------------------------- notices

    def add_notice(self, notice: Notice) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(notice.at))
        self.notices_list.insertItem(0, f"{stamp}  {notice.camera}: {notice.text}")
        self.notices_list.item(0).setData(Qt.ItemDataRole.UserRole, notice)
        while self.notices_list.count() > MAX_NOTICES:
            self.notices_list.takeItem(self.notices_list.count() - 1)

    def notices(self) -> list[Notice]:
        return [self.notices_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.notices_list.count())]


def _tooltip(alarm: Alarm) -> str:
    lines = [alarm.title(), f"raised {when(alarm.raised)}, last seen {when(alarm.last_seen)}"]
    if alarm.acknowledged_by:
        lines.append(f"acknowledged by {alarm.acknowledged_by}: {alarm.ack_note or '(no note)'}")
    if alarm.closed_by:
        lines.append(f"closed by {alarm.closed_by}: {alarm.close_note or '(no note)'}")
    return "\n".join(lines)
