"""The gallery: enrolled persons with a thumbnail and their photo count, and a person's page
(enrolled photos, add or remove a photo, rename, merge, watchlist, notes, delete).

Every enrolment stores one sample per model (facenet-512 and fusion-640) of the same photo; the page shows
one entry per photo, and removing it removes its samples of every model.

Every gallery and vision call runs in a background job; the view only paints what comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QCheckBox,
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
from gui.widgets.thumbnails import ViewJobs, decode_thumbnail, to_pixmap
from station.enrolment import Companion, enrol_observation
from storage.gallery import Gallery
from storage.records import EnrolledImage, Person
from vision.pipeline import FaceObservation

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp);;All files (*)"
SAMPLE_PX = 112


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


@dataclass(frozen=True)
class PersonRow:
    person: Person
    thumbnail: np.ndarray | None  # the first sample's crop, decoded


@dataclass(frozen=True)
class ImageTile:
    """One enrolled photo (its samples of every model behind it) and its crop, decoded."""

    image: EnrolledImage
    picture: np.ndarray | None


@dataclass(frozen=True)
class PersonPage:
    person: Person
    images: tuple[ImageTile, ...]


def load_rows(gallery: Gallery) -> list[PersonRow]:
    rows = []
    for p in gallery.persons():
        samples = gallery.samples(p.id) if p.samples else []
        jpeg = gallery.sample_crop(samples[0].id) if samples else None
        rows.append(PersonRow(p, decode_thumbnail(jpeg)))
    return rows


def load_page(gallery: Gallery, person_id: int) -> PersonPage:
    person = gallery.person(person_id)
    tiles = tuple(
        ImageTile(i, decode_thumbnail(gallery.sample_crop(i.sample_ids[0]), SAMPLE_PX))
        for i in gallery.images(person_id)
    )
    return PersonPage(person, tiles)


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
    """Persons on the left, the selected person's page on the right."""

    gallery_changed = Signal()  # after any change the view made

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

        self.list = QListWidget()
        self.list.setIconSize(QSize(48, 48))
        self.list.currentItemChanged.connect(self._person_selected)
        new_person = QPushButton("New person from image…")
        new_person.clicked.connect(self._choose_new_person)
        self.new_person_button = new_person
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        left = QVBoxLayout()
        left.addWidget(QLabel("Persons"))
        left.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(new_person)
        row.addWidget(refresh)
        left.addLayout(row)

        self.title = QLabel("Select a person")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        self.details = QLabel("")
        self.samples = QListWidget()
        self.samples.setViewMode(QListView.ViewMode.IconMode)
        self.samples.setIconSize(QSize(SAMPLE_PX, SAMPLE_PX))
        self.samples.setResizeMode(QListView.ResizeMode.Adjust)
        self.samples.setMovement(QListView.Movement.Static)
        self.samples.setSpacing(6)
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
        self.watchlist = QCheckBox("Watchlist (alert when seen)")
        self.watchlist.clicked.connect(self.set_watchlist)
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Notes")
        self.notes.setMaximumHeight(90)
        self.save_notes_button = QPushButton("Save notes")
        self.save_notes_button.clicked.connect(lambda: self.save_notes(self.notes.toPlainText()))
        self.delete_button = QPushButton("Delete person…")
        self.delete_button.setToolTip("Erase the person, their samples, sightings and crops")
        self.delete_button.setStyleSheet("QPushButton { color: #d04040; }")
        self.delete_button.clicked.connect(self.delete_person)

        actions = QHBoxLayout()
        for b in (self.add_sample_button, self.remove_sample_button, self.rename_button, self.merge_button):
            actions.addWidget(b)
        actions.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.watchlist)
        bottom.addStretch(1)
        bottom.addWidget(self.delete_button)
        right = QVBoxLayout()
        right.addWidget(self.title)
        right.addWidget(self.details)
        right.addWidget(self.samples, 1)
        right.addLayout(actions)
        right.addWidget(self.notes)
        right.addWidget(self.save_notes_button, 0, Qt.AlignmentFlag.AlignLeft)
        right.addLayout(bottom)

        left_panel, right_panel = QWidget(), QWidget()
        left_panel.setLayout(left)
        right_panel.setLayout(right)
        split = QSplitter()
        split.addWidget(left_panel)
        split.addWidget(right_panel)
        split.setStretchFactor(1, 1)
        split.setSizes([300, 700])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        can_enrol = faces is not None
        self.new_person_button.setEnabled(can_enrol)
        self._show_page(None)
        self.refresh()

    # ------------------------------------------------------------ loading

    @property
    def busy(self) -> int:
        return self.work.busy

    def refresh(self) -> None:
        """Reload the persons list (and the page of the selected person)."""
        gallery = self.gallery
        self.work.run(lambda: load_rows(gallery), self._rows_loaded)

    def _rows_loaded(self, rows: list[PersonRow]) -> None:
        self.rows = rows
        want = self._want if self._want is not None else self.current_person_id()
        self._want = None
        self.list.blockSignals(True)
        self.list.clear()
        for r in rows:
            mark = "  ★ watchlist" if r.person.watchlist else ""
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
        enabled = page is not None
        for w in (
            self.remove_sample_button,
            self.rename_button,
            self.merge_button,
            self.watchlist,
            self.notes,
            self.save_notes_button,
            self.delete_button,
        ):
            w.setEnabled(enabled)
        self.add_sample_button.setEnabled(enabled and self.faces is not None)
        if page is None:
            self.title.setText("Select a person")
            self.details.setText("")
            self.notes.setPlainText("")
            self.watchlist.setChecked(False)
            return
        p = page.person
        self.title.setText(p.name + ("  ★" if p.watchlist else ""))
        self.details.setText(f"{p.images} photo(s) enrolled, {p.negatives} negative sample(s)")
        self.watchlist.setChecked(p.watchlist)
        self.notes.setPlainText(p.notes)
        for n, tile in enumerate(page.images, start=1):
            i = tile.image
            item = QListWidgetItem(QIcon(to_pixmap(tile.picture, SAMPLE_PX)), f"photo {n}  q {i.quality:.2f}")
            item.setToolTip(f"{i.source or 'no source'}\nmodels: {', '.join(i.models)}")
            item.setData(Qt.ItemDataRole.UserRole, i.id)
            self.samples.addItem(item)

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

        self.work.run(enrol, self._changed)

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
        answer = QMessageBox.question(
            self,
            "Delete person",
            f"Delete {p.name} for good?\n\nTheir {p.samples} sample(s), every sighting of them and every "
            "crop are erased from the gallery file. This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        gallery, pid = self.gallery, p.id
        self.work.run(lambda: gallery.delete_person(pid, erase_sightings=True, vacuum=True), lambda _: self._changed())
