"""Setting up watchlists: each list's name, strictness (in the operator's words, from the calibrated operating
points: gui/strictness.py), cameras, priority, sound, actions and escalation, and who is on it.

A list may be stricter than the station's threshold, never more lenient: the engine names nobody below the
station's threshold, so a more lenient list could not see them; those points are shown but cannot be chosen.
Loading and saving run in background jobs; a refusal (an empty, over-long or taken name) is said in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.jobs import Jobs
from gui.strictness import LENIENT, StrictnessChoice, strictness_choices
from gui.widgets.thumbnails import ViewJobs
from station import settings as table
from storage.gallery import Gallery
from storage.watchlist_records import MAX_NAME, SOUNDS, ListAction, Priority, Watchlist

ACTION_WORDS = {
    ListAction.QUEUE: "Raise an alarm in the alarm queue (kept until closed)",
    ListAction.TRAY: "Show a desktop (tray) message",
    ListAction.FOCUS: "Bring the alarm queue to the front",
    ListAction.PUBLISH: "Pass the alarm to the integrations (MQTT, webhooks)",
}
RULE = (
    "A list may be stricter than the station's threshold, never more lenient: the engine names nobody below "
    "the station's threshold, so a more lenient list could not see them."
)


@dataclass(frozen=True)
class ListsPage:
    lists: tuple[Watchlist, ...]
    members: tuple[tuple[int, tuple[str, ...]], ...]  # list id -> names on it
    cameras: tuple[str, ...]  # every camera the station has seen
    threshold: float  # the station's threshold now


def load_lists(gallery: Gallery, model: str, threshold: float | None) -> ListsPage:
    lists = gallery.watchlists.all()
    members = tuple((w.id, tuple(n for _, n in gallery.watchlists.members(w.id))) for w in lists)
    if threshold is None:
        threshold = table.load(gallery.get_setting, model, ["threshold"], strict=False).number("threshold")
    cameras = tuple(c.name for c in gallery.cameras())
    return ListsPage(tuple(lists), members, cameras, float(threshold))


class WatchlistDialog(QDialog):
    """The lists on the left, the selected list's settings on the right."""

    lists_changed = Signal()

    def __init__(
        self,
        gallery: Gallery,
        jobs: Jobs,
        *,
        model: str,
        threshold: float | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """``threshold``: the station's threshold now (None: the stored setting, read in the loading job)."""
        super().__init__(parent)
        self.setWindowTitle("Watchlists")
        self.resize(980, 620)
        self.gallery = gallery
        self.model = model
        self.work = ViewJobs(jobs, self, "Watchlists")
        self.page: ListsPage | None = None
        self.current: Watchlist | None = None  # None with the form open: a new list
        self._threshold = threshold
        self._want: int | None = None

        self.lists = QListWidget()
        self.lists.currentRowChanged.connect(self._select)
        new = QPushButton("New list")
        new.clicked.connect(self.new_list)
        self.delete_button = QPushButton("Delete list…")
        self.delete_button.clicked.connect(self.delete_list)
        left = QVBoxLayout()
        left.addWidget(QLabel("Lists"))
        left.addWidget(self.lists, 1)
        row = QHBoxLayout()
        row.addWidget(new)
        row.addWidget(self.delete_button)
        left.addLayout(row)

        self.name = QLineEdit()
        self.name.setMaxLength(MAX_NAME + 5)  # a longer one is refused with a message, not cut silently
        self.strictness = QComboBox()
        self.strictness.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.strictness.setMinimumContentsLength(40)
        rule = QLabel(RULE)
        rule.setWordWrap(True)
        rule.setStyleSheet("color: #555;")
        self.cameras = QListWidget()
        self.cameras.setMaximumHeight(110)
        self.cameras.setToolTip("None ticked: every camera")
        self.add_camera = QLineEdit()
        self.add_camera.setPlaceholderText("another camera's name, then Enter")
        self.add_camera.returnPressed.connect(self._add_camera)
        self.priority = QComboBox()
        for p in Priority:
            self.priority.addItem(f"{p.value}: {p.label}", int(p))
        self.sound = QComboBox()
        for s in SOUNDS:
            self.sound.addItem(s, s)
        self.action_boxes = {a: QCheckBox(ACTION_WORDS[a]) for a in ListAction}
        actions_box = QVBoxLayout()
        for box in self.action_boxes.values():
            actions_box.addWidget(box)
        self.escalate = QSpinBox()
        self.escalate.setRange(0, 86_400)
        self.escalate.setSuffix(" s")
        self.escalate.setSpecialValueText("never")
        self.escalate.setToolTip("An alarm nobody acknowledges within this time rings and shows again, each period")
        self.members = QLabel("")
        self.members.setWordWrap(True)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c0392b;")

        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Strictness", self.strictness)
        form.addRow("", rule)
        form.addRow("Cameras", self.cameras)
        form.addRow("", self.add_camera)
        form.addRow("Priority", self.priority)
        form.addRow("Sound", self.sound)
        form.addRow("Actions", actions_box)
        form.addRow("Escalate after", self.escalate)
        form.addRow("On this list", self.members)
        self.save_button = QPushButton("Save list")
        self.save_button.clicked.connect(self.save)
        right = QVBoxLayout()
        right.addLayout(form)
        right.addWidget(self.message)
        right.addWidget(self.save_button, 0, Qt.AlignmentFlag.AlignRight)
        right.addStretch(1)

        left_panel, right_panel = QWidget(), QWidget()
        left_panel.setLayout(left)
        right_panel.setLayout(right)
        split = QSplitter()
        split.addWidget(left_panel)
        split.addWidget(right_panel)
        split.setSizes([260, 720])
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(close)
        self.refresh()

    @property
    def busy(self) -> int:
        return self.work.busy

    # ---------------------------------------------------------------- loading

    def refresh(self) -> None:
        gallery, model, threshold = self.gallery, self.model, self._threshold
        self.work.run(lambda: load_lists(gallery, model, threshold), self._loaded)

    def _loaded(self, page: ListsPage) -> None:
        self.page = page
        want = self._want if self._want is not None else (self.current.id if self.current else None)
        self._want = None
        self._fill_strictness(page.threshold)
        members = dict(page.members)
        self.lists.blockSignals(True)
        self.lists.clear()
        for w in page.lists:
            n = len(members.get(w.id, ()))
            item = QListWidgetItem(f"{w.name}\n{Priority(w.priority).label}, {n} person{'s' if n != 1 else ''}")
            item.setData(Qt.ItemDataRole.UserRole, w.id)
            self.lists.addItem(item)
        self.lists.blockSignals(False)
        ids = [w.id for w in page.lists]
        if want in ids:
            self.lists.setCurrentRow(ids.index(want))
        elif ids:
            self.lists.setCurrentRow(0)
        else:
            self.new_list()

    def _fill_strictness(self, station: float) -> None:
        self.strictness.clear()
        model = QStandardItemModel()
        self.strictness.setModel(model)
        for choice in strictness_choices(self.model, station):
            self.strictness.addItem(choice.label, choice.threshold)
            item = model.item(self.strictness.count() - 1)
            item.setEnabled(choice.allowed)
            if not choice.allowed:
                item.setToolTip(LENIENT)

    def choices(self) -> list[StrictnessChoice]:
        """The strictness choices offered (for tests): a disabled one cannot be picked."""
        model = self.strictness.model()
        assert isinstance(model, QStandardItemModel)
        return [
            StrictnessChoice(self.strictness.itemData(i), self.strictness.itemText(i), model.item(i).isEnabled())
            for i in range(self.strictness.count())
        ]

    # ------------------------------------------------------------------- form

    def _select(self, row: int) -> None:
        if self.page is None or not 0 <= row < len(self.page.lists):
            return
        self.show_list(self.page.lists[row])

    def show_list(self, w: Watchlist | None) -> None:
        """Fill the form with ``w`` (None: a new list with the defaults)."""
        assert self.page is not None
        self.current = w
        shown = w or Watchlist(0, "")
        self.name.setText(shown.name)
        index = self.strictness.findData(shown.threshold)
        if index < 0 and shown.threshold is not None:  # a threshold between the calibrated points
            self.strictness.addItem(f"{shown.threshold:.3f} (set elsewhere)", shown.threshold)
            index = self.strictness.count() - 1
        self.strictness.setCurrentIndex(max(0, index))
        self.cameras.clear()
        for camera in dict.fromkeys((*self.page.cameras, *shown.cameras)):
            self._camera_item(camera, camera in shown.cameras)
        self.priority.setCurrentIndex(max(0, self.priority.findData(int(shown.priority))))
        self.sound.setCurrentIndex(max(0, self.sound.findData(shown.sound)))
        for action, box in self.action_boxes.items():
            box.setChecked(action in shown.actions)
        self.escalate.setValue(round(shown.escalate_after_s))
        names = dict(self.page.members).get(shown.id, ()) if w is not None else ()
        self.members.setText(", ".join(names) if names else "nobody yet (put persons on it from the Gallery page)")
        self.delete_button.setEnabled(w is not None)
        self.message.setText("")

    def _camera_item(self, camera: str, checked: bool) -> None:
        item = QListWidgetItem(camera)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.cameras.addItem(item)

    def _add_camera(self) -> None:
        name = self.add_camera.text().strip()
        if name and not self.cameras.findItems(name, Qt.MatchFlag.MatchExactly):
            self._camera_item(name, True)
        self.add_camera.clear()

    def form(self) -> dict[str, object]:
        """The form's values as ``Watchlists.create`` and ``update`` take them (checked there)."""
        cameras = [
            self.cameras.item(i).text()
            for i in range(self.cameras.count())
            if self.cameras.item(i).checkState() == Qt.CheckState.Checked
        ]
        return {
            "name": self.name.text(),
            "threshold": self.strictness.currentData(),
            "cameras": tuple(cameras),
            "priority": int(self.priority.currentData()),
            "sound": str(self.sound.currentData()),
            "actions": tuple(a for a, box in self.action_boxes.items() if box.isChecked()),
            "escalate_after_s": float(self.escalate.value()),
        }

    # ---------------------------------------------------------------- changes

    def new_list(self) -> None:
        self.lists.clearSelection()
        if self.page is not None:
            self.show_list(None)
        self.name.setFocus()

    def save(self) -> None:
        values, gallery, current = self.form(), self.gallery, self.current

        def run() -> Watchlist:
            if current is None:
                name = str(values.pop("name"))
                return gallery.watchlists.create(name, **values)  # type: ignore[arg-type]
            return gallery.watchlists.update(current.id, **values)

        self.work.run(run, self._saved, failed=self.message.setText)

    def _saved(self, w: Watchlist) -> None:
        self.current = w
        self._want = w.id
        self.lists_changed.emit()
        self.refresh()

    def delete_list(self) -> None:
        """Delete the selected list after a confirmation; the persons on it stay in the gallery."""
        w = self.current
        if w is None or self.page is None:
            return
        names = dict(self.page.members).get(w.id, ())
        on_it = f"{len(names)} person(s) are on it ({', '.join(names[:5])}{'…' if len(names) > 5 else ''})"
        answer = QMessageBox.question(
            self,
            "Delete list",
            f"Delete the list {w.name}?\n\n{on_it if names else 'Nobody is on it.'} They stay in the gallery, "
            "on their other lists; alarms already raised keep the list's name.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        gallery = self.gallery

        def done(_: object) -> None:
            self.current = None
            self.lists_changed.emit()
            self.refresh()

        self.work.run(lambda: gallery.watchlists.delete(w.id), done)
