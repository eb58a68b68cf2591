"""The gallery: enrolled persons with a thumbnail and their photo count, and a person's page
(enrolled photos, add or remove a photo, rename, merge, watchlist, notes, delete).

Every enrolment stores one sample per model (facenet-512 and fusion-640) of the same photo; the page shows
one entry per photo, and removing it removes its samples of every model.

Every gallery and vision call runs in a background job; the view only paints what comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.jobs import Jobs
from gui.services import FaceAnalyser
from gui.widgets import data_exports
from gui.widgets.history_model import local_time
from gui.widgets.person_data import SAMPLE_PX, PersonPage, PersonRow, load_page, load_rows
from gui.widgets.thumbnails import ViewJobs, to_pixmap
from station.enrolment import Companion, enrol_observation
from storage.gallery import Gallery
from storage.watchlist_records import Priority
from vision.pipeline import FaceObservation

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp);;All files (*)"
FILTER_ALL, FILTER_ANY = "\x00everyone", "\x00any list"  # the list filter's first choices (no list name has NUL)


def read_image_file(path: Path) -> np.ndarray:
    """The image at ``path`` (BGR), or ValueError "cannot read image PATH"."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}: not an image file, or unreadable")
    return np.asarray(image, dtype=np.uint8)


def face_from_file(faces: FaceAnalyser, path: Path) -> FaceObservation:
    """The largest face the detector finds in an image file (runs in a job)."""
    return face_and_image(faces, path)[0]


def face_and_image(faces: FaceAnalyser, path: Path) -> tuple[FaceObservation, np.ndarray]:
    """The largest face of an image file, and the image (the photo model aligns it again at enrolment)."""
    image = read_image_file(path)
    found = faces.observe(image)
    if not found:
        raise ValueError(f"no face found in {path}")
    return max(found, key=lambda o: o.detection.box[2] * o.detection.box[3]), image


def enrol_from_file(
    gallery: Gallery, faces: FaceAnalyser, person: str, path: Path, companions: Sequence[Companion] = ()
) -> int:
    """Enrol the largest face of an image file as a sample of ``person`` (and of each companion model);
    refuses a poor face."""
    obs, image = face_and_image(faces, path)
    reason = obs.quality.reject_reason()
    if reason:
        raise ValueError(f"not enrolled ({path.name}): {reason}")
    return enrol_observation(gallery, person, obs, str(path), image=image, companions=companions)


class GalleryView(QWidget):
    """Persons on the left (filtered by list), the selected person's page on the right."""

    gallery_changed = Signal()  # after any change the view made
    sighting_requested = Signal(int)  # a sighting on the person's page, double-clicked: show it in History
    person_enrolled = Signal(int, str)  # (person id, why) after a photo was enrolled: past sightings may match

    def __init__(
        self,
        gallery: Gallery,
        jobs: Jobs,
        faces: FaceAnalyser | None,
        parent: QWidget | None = None,
        *,
        companions: Sequence[Companion] = (),
    ) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.faces = faces
        self.companions = tuple(companions)  # the photo model: a sample of it is stored beside the live one
        self.work = ViewJobs(jobs, self, "Gallery")
        self.rows: list[PersonRow] = []
        self.page: PersonPage | None = None
        self._want: int | None = None  # the person to show once the list is loaded
        self._ticket = 0  # the newest persons load
        split = QSplitter()
        split.addWidget(self._build_persons())
        split.addWidget(self._build_page())
        split.setStretchFactor(1, 1)
        split.setSizes([300, 800])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self.new_person_button.setEnabled(faces is not None)
        self._show_page(None)
        self.refresh()

    def _build_persons(self) -> QWidget:
        self.list_filter = QComboBox()
        self.list_filter.addItem("everyone", FILTER_ALL)
        self.list_filter.addItem("on any list", FILTER_ANY)
        self.list_filter.currentIndexChanged.connect(lambda _i: self._fill_rows())
        self.list = QListWidget()
        self.list.setIconSize(QSize(48, 48))
        self.list.currentItemChanged.connect(self._person_selected)
        self.new_person_button = QPushButton("New person from image…")
        self.new_person_button.clicked.connect(self._choose_new_person)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        left = QVBoxLayout()
        top = QHBoxLayout()
        top.addWidget(QLabel("Persons"))
        top.addWidget(self.list_filter, 1)
        left.addLayout(top)
        left.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(self.new_person_button)
        row.addWidget(refresh)
        left.addLayout(row)
        panel = QWidget()
        panel.setLayout(left)
        return panel

    def _build_page(self) -> QWidget:
        self.title = QLabel("Select a person")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.samples = QListWidget()
        self.samples.setViewMode(QListView.ViewMode.IconMode)
        self.samples.setIconSize(QSize(SAMPLE_PX, SAMPLE_PX))
        self.samples.setResizeMode(QListView.ResizeMode.Adjust)
        self.samples.setMovement(QListView.Movement.Static)
        self.samples.setSpacing(6)
        self.samples.setMaximumHeight(SAMPLE_PX * 2 + 60)  # two rows of photos, then it scrolls
        self.add_sample_button = QPushButton("Add photo…")
        self.add_sample_button.setToolTip("Enrol the largest face of a photo (a sample of it for every model)")
        self.add_sample_button.clicked.connect(self._choose_sample_file)
        self.remove_sample_button = QPushButton("Remove photo")
        self.remove_sample_button.setToolTip("Remove the selected photo: its samples of every model")
        self.remove_sample_button.clicked.connect(self._remove_selected_image)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self._ask_rename)
        self.merge_button = QPushButton("Merge into…")
        self.merge_button.setToolTip("Move this person's samples and sightings to another person, then remove this one")
        self.merge_button.clicked.connect(self._ask_merge)
        self.lists_box = QListWidget()
        self.lists_box.setToolTip("Tick the lists this person is on (Faces → Watchlists… sets the lists up)")
        self.lists_box.itemChanged.connect(self._list_ticked)
        self.sightings = QListWidget()
        self.sightings.setToolTip("Double-click a sighting to open it in History")
        self.sightings.itemDoubleClicked.connect(self._sighting_clicked)
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Notes")
        self.notes.setMaximumHeight(70)
        self.save_notes_button = QPushButton("Save notes")
        self.save_notes_button.clicked.connect(lambda: self.save_notes(self.notes.toPlainText()))
        self.export_button = QPushButton("Export all data on this person…")
        self.export_button.setToolTip("A zip of everything held on them, for a data-protection request")
        self.export_button.clicked.connect(self._ask_export)
        self.export_status = QLabel("")
        self.export_status.setWordWrap(True)
        self.delete_button = QPushButton("Delete person…")
        self.delete_button.setToolTip("Erase the person, their samples, sightings and crops")
        self.delete_button.setStyleSheet("QPushButton { color: #d04040; }")
        self.delete_button.clicked.connect(self.delete_person)

        actions = QHBoxLayout()
        for b in (self.add_sample_button, self.remove_sample_button, self.rename_button, self.merge_button):
            actions.addWidget(b)
        actions.addStretch(1)
        boxes = QHBoxLayout()
        boxes.addLayout(_titled("Lists", self.lists_box), 1)
        boxes.addLayout(_titled("Sightings (newest first)", self.sightings), 2)
        bottom = QHBoxLayout()
        bottom.addWidget(self.save_notes_button)
        bottom.addStretch(1)
        bottom.addWidget(self.export_button)
        bottom.addWidget(self.delete_button)
        right = QVBoxLayout()
        right.addWidget(self.title)
        right.addWidget(self.details)
        right.addWidget(QLabel("Enrolled photos (q: face quality)"))
        right.addWidget(self.samples, 1)
        right.addLayout(actions)
        right.addLayout(boxes, 1)
        right.addWidget(self.notes)
        right.addLayout(bottom)
        right.addWidget(self.export_status)
        panel = QWidget()
        panel.setLayout(right)
        return panel

    # ------------------------------------------------------------ loading

    @property
    def busy(self) -> int:
        return self.work.busy

    def refresh(self) -> None:
        """Reload the persons list (and the page of the selected person)."""
        gallery = self.gallery
        self._ticket += 1
        ticket = self._ticket
        # Two loads can finish out of order on the job pool: only the newest request's rows are shown.
        self.work.run(
            lambda: load_rows(gallery), lambda rows: self._rows_loaded(rows) if ticket == self._ticket else None
        )

    def _rows_loaded(self, rows: list[PersonRow]) -> None:
        self.rows = rows
        current = self.list_filter.currentData()
        names = sorted({n for r in rows for n in r.lists}, key=str.casefold)
        self.list_filter.blockSignals(True)
        while self.list_filter.count() > 2:
            self.list_filter.removeItem(2)
        for name in names:
            self.list_filter.addItem(f"on {name}", name)
        self.list_filter.setCurrentIndex(max(0, self.list_filter.findData(current)))
        self.list_filter.blockSignals(False)
        self._fill_rows()

    def shown_rows(self) -> list[PersonRow]:
        """The persons the list filter lets through."""
        wanted = self.list_filter.currentData()
        if wanted == FILTER_ALL:
            return list(self.rows)
        if wanted == FILTER_ANY:
            return [r for r in self.rows if r.lists]
        return [r for r in self.rows if wanted in r.lists]

    def set_list_filter(self, name: str | None) -> None:
        """Show everyone (None), or only those on the list called ``name``."""
        self.list_filter.setCurrentIndex(max(0, self.list_filter.findData(FILTER_ALL if name is None else name)))

    def _fill_rows(self) -> None:
        want = self._want if self._want is not None else self.current_person_id()
        self._want = None
        rows = self.shown_rows()
        self.list.blockSignals(True)
        self.list.clear()
        for r in rows:
            mark = ("  ★ " + ", ".join(r.lists)) if r.lists else ""
            n = r.person.images
            item = QListWidgetItem(
                QIcon(to_pixmap(r.thumbnail)), f"{r.person.name}\n{n} photo{'s' if n != 1 else ''}{mark}"
            )
            item.setData(Qt.ItemDataRole.UserRole, r.person.id)
            self.list.addItem(item)
        self.list.blockSignals(False)
        ids = [r.person.id for r in rows]
        if want in ids:
            self.list.setCurrentRow(ids.index(want))
        else:
            self._show_page(None)

    def current_person_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def select_person(self, person_id: int) -> None:
        """Show a person's page (after the list has their row)."""
        ids = [r.person.id for r in self.rows]
        if person_id in ids:
            self.list.setCurrentRow(ids.index(person_id))
        else:
            self._want = person_id
            self.refresh()

    def _person_selected(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None = None) -> None:
        if item is None:
            self._show_page(None)
            return
        pid = int(item.data(Qt.ItemDataRole.UserRole))
        gallery = self.gallery
        self.work.run(lambda: load_page(gallery, pid), self._page_loaded)

    def _page_loaded(self, page: PersonPage) -> None:
        if self.current_person_id() == page.person.id:
            self._show_page(page)

    def _show_page(self, page: PersonPage | None) -> None:
        self.page = page
        self.samples.clear()
        self.sightings.clear()
        self.lists_box.blockSignals(True)
        self.lists_box.clear()
        enabled = page is not None
        for w in (
            self.remove_sample_button,
            self.rename_button,
            self.merge_button,
            self.lists_box,
            self.notes,
            self.save_notes_button,
            self.delete_button,
            self.export_button,
        ):
            w.setEnabled(enabled)
        self.add_sample_button.setEnabled(enabled and self.faces is not None)
        if page is None:
            self.lists_box.blockSignals(False)
            self.title.setText("Select a person")
            self.details.setText("")
            self.notes.setPlainText("")
            return
        p = page.person
        self.title.setText(p.name + ("  ★" if p.watchlist else ""))
        self.details.setText(_details(page))
        self.notes.setPlainText(p.notes)
        for n, tile in enumerate(page.images, start=1):
            i = tile.image
            item = QListWidgetItem(QIcon(to_pixmap(tile.picture, SAMPLE_PX)), f"photo {n}  q {i.quality:.2f}")
            item.setToolTip(f"{i.source or 'no source'}\nquality {i.quality:.2f}\nmodels: {', '.join(i.models)}")
            item.setData(Qt.ItemDataRole.UserRole, i.id)
            self.samples.addItem(item)
        for wl in page.lists:
            item = QListWidgetItem(f"{wl.name} ({Priority(wl.priority).label})")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if wl.id in page.on else Qt.CheckState.Unchecked)
            item.setData(Qt.ItemDataRole.UserRole, wl.id)
            self.lists_box.addItem(item)
        self.lists_box.blockSignals(False)
        for s in page.sightings:
            score = "" if s.score is None else f"  {s.score:.2f}"
            item = QListWidgetItem(f"{local_time(s.start)}  {s.camera}{score}")
            item.setData(Qt.ItemDataRole.UserRole, s.id)
            self.sightings.addItem(item)

    # -------------------------------------------------------- lists, sightings

    def ticked_lists(self) -> list[int]:
        return [
            int(self.lists_box.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.lists_box.count())
            if self.lists_box.item(i).checkState() == Qt.CheckState.Checked
        ]

    def _list_ticked(self, _item: QListWidgetItem) -> None:
        self.set_lists(self.ticked_lists())

    def set_lists(self, list_ids: Sequence[int]) -> None:
        """Put the page's person on exactly these lists."""
        pid = self.current_person_id()
        if pid is None:
            return
        gallery, wanted = self.gallery, list(list_ids)
        self.work.run(lambda: gallery.watchlists.set_lists(pid, wanted), lambda _: self._changed(pid))

    def _sighting_clicked(self, item: QListWidgetItem) -> None:
        self.sighting_requested.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _changed(self, keep: int | None = None) -> None:
        if keep is not None:
            self._want = keep
        self.gallery_changed.emit()
        self.refresh()

    # ------------------------------------------------------------ actions

    def _choose_new_person(self) -> None:
        name, ok = QInputDialog.getText(self, "New person", "Name:")
        if not ok or not name.strip():
            return
        path, _ = QFileDialog.getOpenFileName(self, f"A photo of {name.strip()}", "", IMAGE_FILTER)
        if path:
            self.add_sample_from_file(Path(path), name.strip())

    def _choose_sample_file(self) -> None:
        if self.page is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, f"A photo of {self.page.person.name}", "", IMAGE_FILTER)
        if path:
            self.add_sample_from_file(Path(path))

    def add_sample_from_file(self, path: Path, person: str | None = None) -> None:
        """Enrol the largest face of ``path`` for ``person`` (a new or existing name; default: the page's)."""
        faces = self.faces
        if faces is None:
            QMessageBox.warning(self, "Gallery", "the face models are not available")
            return
        name = person if person is not None else (self.page.person.name if self.page is not None else None)
        if not name:
            QMessageBox.warning(self, "Gallery", "choose a person first")
            return
        gallery = self.gallery

        companions = self.companions

        def enrol() -> int:
            enrol_from_file(gallery, faces, name, path, companions)
            return gallery.person(name).id

        def done(pid: int) -> None:
            self._changed(pid)
            self.person_enrolled.emit(pid, f"enrolled from {path.name}")

        self.work.run(enrol, done)

    def _selected_image(self) -> int | None:
        item = self.samples.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def _remove_selected_image(self) -> None:
        image_id = self._selected_image()
        if image_id is not None:
            self.remove_image(image_id)

    def remove_image(self, image_id: int) -> None:
        """Remove one enrolled photo: its samples of every model."""
        gallery, keep = self.gallery, self.current_person_id()
        self.work.run(lambda: gallery.delete_image(image_id), lambda _: self._changed(keep))

    def _ask_export(self) -> None:
        path = None if self.page is None else data_exports.ask_person_file(self, self.page.person.name)
        if path is not None:
            self.export_person_data(path)

    def export_person_data(self, path: Path) -> None:
        """Everything held on the selected person, as a zip at ``path`` (storage.person_export)."""
        pid = self.current_person_id()
        if pid is None:
            return
        gallery = self.gallery
        self.export_status.setText("Exporting…")
        self.work.run(
            lambda: data_exports.person_data(gallery, pid, path),
            lambda summary: self.export_status.setText(data_exports.person_done(summary)),
        )

    def _ask_rename(self) -> None:
        if self.page is None:
            return
        name, ok = QInputDialog.getText(self, "Rename", "New name:", text=self.page.person.name)
        if ok and name.strip():
            self.rename(name.strip())

    def rename(self, new_name: str) -> None:
        pid = self.current_person_id()
        if pid is None:
            return
        gallery = self.gallery
        self.work.run(lambda: gallery.rename(pid, new_name), lambda _: self._changed(pid))

    def _ask_merge(self) -> None:
        if self.page is None:
            return
        others = [r.person.name for r in self.rows if r.person.id != self.page.person.id]
        if not others:
            QMessageBox.information(self, "Merge", "There is nobody else to merge into.")
            return
        into, ok = QInputDialog.getItem(self, "Merge", f"Merge {self.page.person.name} into:", others, 0, False)
        if ok and into:
            self.merge_into(into)

    def merge_into(self, target: str) -> None:
        pid = self.current_person_id()
        if pid is None:
            return
        gallery = self.gallery
        self.work.run(lambda: gallery.merge(pid, target), self._changed)

    def set_watchlist(self, on: bool) -> None:
        """On: put the person on the default list; off: take them off every list."""
        pid = self.current_person_id()
        if pid is None:
            return
        gallery = self.gallery
        self.work.run(lambda: gallery.set_watchlist(pid, bool(on)), lambda _: self._changed(pid))

    def save_notes(self, text: str) -> None:
        pid = self.current_person_id()
        if pid is None:
            return
        gallery = self.gallery
        self.work.run(lambda: gallery.set_notes(pid, text), lambda _: self._changed(pid))

    def delete_person(self) -> None:
        """Erase the selected person, their samples, negatives, sightings and crops, after a confirmation."""
        if self.page is None:
            return
        p = self.page.person
        on = [w.name for w in self.page.lists if w.id in self.page.on]
        lists = f"\n\nThey are on {len(on)} list(s) ({', '.join(on)}) and come off them." if on else ""
        answer = QMessageBox.question(
            self,
            "Delete person",
            f"Delete {p.name} for good?\n\nTheir {p.images} photo(s), every sighting of them and every "
            f"crop are erased from the gallery file. This cannot be undone.{lists}",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        gallery, pid = self.gallery, p.id
        self.work.run(lambda: gallery.delete_person(pid, erase_sightings=True, vacuum=True), lambda _: self._changed())


def _titled(title: str, widget: QWidget) -> QVBoxLayout:
    box = QVBoxLayout()
    box.addWidget(QLabel(title))
    box.addWidget(widget, 1)
    return box


def _details(page: PersonPage) -> str:
    """When and where the person was last seen, and what is enrolled."""
    p = page.person
    last = page.last_seen
    seen = "not seen yet" if last is None else f"last seen {local_time(last.start)} at {last.camera}"
    return f"{seen} · {p.images} photo(s) enrolled, {p.negatives} negative sample(s)"
