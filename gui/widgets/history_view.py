"""The history: who was seen where and when, filtered, paged (newest first), with thumbnails;
a search by face (from a sighting or an image file), "this match was wrong", and export (CSV, JSON, or a
zip with the crops, through storage.export).

Every query runs in a background job on a pool of two threads, so answers can come back out of order:
each page request takes a ticket, and a page whose ticket is not the newest is dropped (napari's layer
slicer drops stale slice requests the same way). The table is a view on HistoryModel, fed whole pages
of frozen rows on the GUI thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QDateTime, QSize, Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from gui.jobs import Jobs
from gui.services import FaceAnalyser
from gui.widgets import data_exports
from gui.widgets.gallery_view import IMAGE_FILTER, face_from_file
from gui.widgets.history_model import ROW_PX, HistoryModel, HistoryRow, local_time
from gui.widgets.thumbnails import ViewJobs, decode_thumbnail, scaled, snapshot_with_box, to_pixmap
from storage.export import export_history
from storage.gallery import Gallery
from storage.records import Sighting

__all__ = ["PAGE", "HistoryFilter", "HistoryPage", "HistoryRow", "HistoryView", "local_time"]

PAGE = 100
DETAIL_PX = 240
SNAPSHOT_PX = 280  # the snapshot beside the crop
SNAPSHOT_FULL_PX = 960  # enlarged


class SnapshotLabel(QLabel):
    """The evidence snapshot; a double-click enlarges it."""

    double_clicked = Signal()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.double_clicked.emit()


@dataclass(frozen=True)
class HistoryFilter:
    """What the filter row asks for; None means "any"."""

    person_id: int | None = None
    camera: str | None = None
    since: float | None = None
    until: float | None = None
    unknown_only: bool = False
    min_score: float | None = None
    undecided_only: bool = False  # faces never seen well enough to decide

    def criteria(self) -> dict[str, Any]:
        """The keyword arguments ``Gallery.history`` and ``storage.export.export_history`` take for this filter."""
        return {
            "person": self.person_id,
            "camera": self.camera,
            "since": self.since,
            "until": self.until,
            "unknown_only": self.unknown_only,
            "min_score": self.min_score,
            "state": "undecided" if self.undecided_only else None,
        }


@dataclass(frozen=True)
class HistoryPage:
    rows: tuple[HistoryRow, ...]
    offset: int
    more: bool  # another page follows
    title: str  # what the table shows, for the label above it


@dataclass(frozen=True)
class CropDetail:
    sighting: Sighting
    image: np.ndarray | None
    snapshot: np.ndarray | None = None  # the full frame of the best moment, the face's box drawn


@dataclass(frozen=True)
class FilterChoices:
    persons: tuple[tuple[int, str], ...]
    cameras: tuple[str, ...]


def _rows(
    gallery: Gallery, sightings: list[Sighting], similarities: list[float] | None = None
) -> tuple[HistoryRow, ...]:
    out = []
    for i, s in enumerate(sightings):
        thumb = decode_thumbnail(gallery.crop(s.id)) if s.has_crop else None
        out.append(HistoryRow(s, thumb, None if similarities is None else similarities[i]))
    return tuple(out)


def query_page(gallery: Gallery, f: HistoryFilter, offset: int) -> HistoryPage:
    found = gallery.history(**f.criteria(), limit=PAGE + 1, offset=offset)
    shown = found[:PAGE]
    if shown:
        title = f"sightings {offset + 1}–{offset + len(shown)}, newest first"
    else:
        title = "no sightings match" if offset == 0 else "no more sightings"
    return HistoryPage(_rows(gallery, shown), offset, len(found) > PAGE, title)


def face_page(gallery: Gallery, model: str, embedding: np.ndarray, what: str) -> HistoryPage:
    hits = gallery.search_by_face(embedding, model, limit=PAGE)
    rows = _rows(gallery, [s for s, _ in hits], [score for _, score in hits])
    return HistoryPage(rows, 0, False, f"{len(rows)} most similar sightings to {what}")


def stored_embedding(gallery: Gallery, sighting_id: int) -> tuple[str, np.ndarray]:
    found = gallery.sighting_embedding(sighting_id)
    if found is None:
        raise ValueError(f"sighting {sighting_id} has no stored face embedding")
    return found


def export_file(gallery: Gallery, f: HistoryFilter, path: Path) -> int:
    """Export every sighting matching ``f`` (all pages, oldest first) to ``path`` by storage's one export path:
    CSV, JSON for a ``.json`` name, or the zip with crops for a ``.zip`` name. Returns the count. Audited."""
    fmt = "json" if path.suffix.lower() == ".json" else "csv"
    return export_history(gallery, path, fmt=fmt, overwrite=True, **f.criteria()).sightings


class HistoryView(QWidget):
    """Filters on top, results in a table, the selected crop beside it."""

    gallery_changed = Signal()  # after "this match was wrong"

    def __init__(self, gallery: Gallery, jobs: Jobs, faces: FaceAnalyser | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.faces = faces
        self.work = ViewJobs(jobs, self, "History")
        self.filter = HistoryFilter()
        self.page: HistoryPage | None = None
        self.face_search = False
        self._ticket = 0  # the newest page request; an answer to an older one is dropped
        self._choices_ticket = 0

        self.person = QComboBox()
        self.person.addItem("anyone", None)
        self.camera = QComboBox()
        self.camera.addItem("any camera", None)
        self.camera.setMinimumContentsLength(12)
        now = QDateTime.currentDateTime()
        self.since_on, self.until_on = QCheckBox("since"), QCheckBox("until")
        self.since = QDateTimeEdit(now.addDays(-1))
        self.until = QDateTimeEdit(now)
        for edit, box in ((self.since, self.since_on), (self.until, self.until_on)):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            edit.setEnabled(False)
            box.toggled.connect(edit.setEnabled)
        self.unknown_only = QCheckBox("unknown only")
        self.undecided_only = QCheckBox("undecided only")
        self.undecided_only.setToolTip("faces never seen well enough to decide (turned away, blurred, too small)")
        for box, other in ((self.unknown_only, self.undecided_only), (self.undecided_only, self.unknown_only)):
            box.toggled.connect(lambda on, other=other: other.setChecked(False) if on else None)
        for box in (self.unknown_only, self.undecided_only):
            box.toggled.connect(self._person_usable)
        self.min_score = QDoubleSpinBox()
        self.min_score.setRange(0.0, 1.0)
        self.min_score.setSingleStep(0.05)
        self.min_score.setDecimals(2)
        self.min_score.setSpecialValueText("any")
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)

        grid = QGridLayout()
        grid.addWidget(QLabel("Person"), 0, 0)
        grid.addWidget(self.person, 0, 1)
        grid.addWidget(QLabel("Camera"), 0, 2)
        grid.addWidget(self.camera, 0, 3)
        grid.addWidget(self.unknown_only, 0, 4)
        grid.addWidget(QLabel("Min score"), 0, 5)
        grid.addWidget(self.min_score, 0, 6)
        grid.addWidget(self.since_on, 1, 0)
        grid.addWidget(self.since, 1, 1)
        grid.addWidget(self.until_on, 1, 2)
        grid.addWidget(self.until, 1, 3)
        grid.addWidget(self.undecided_only, 1, 4)
        grid.addWidget(self.search_button, 1, 6)
        grid.setColumnStretch(7, 1)

        self.model = HistoryModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setIconSize(QSize(ROW_PX - 4, ROW_PX - 4))
        self.table.verticalHeader().setDefaultSectionSize(ROW_PX)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(0, ROW_PX + 6)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(self._row_selected)

        self.title = QLabel("")
        self.prev_button = QPushButton("◀ Newer")
        self.prev_button.clicked.connect(self.previous_page)
        self.next_button = QPushButton("Older ▶")
        self.next_button.clicked.connect(self.next_page)
        paging = QHBoxLayout()
        paging.addWidget(self.title, 1)
        paging.addWidget(self.prev_button)
        paging.addWidget(self.next_button)

        self.crop = QLabel("Select a sighting")
        self.crop.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.crop.setMinimumSize(DETAIL_PX, DETAIL_PX)
        self.crop.setStyleSheet("QLabel { background: #202020; color: #aaa; }")
        self.crop_text = QLabel("")
        self.crop_text.setWordWrap(True)
        self.snapshot = SnapshotLabel()
        self.snapshot.setToolTip("The whole frame of the moment the face was seen best; double-click to enlarge")
        self.snapshot.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.snapshot.setMinimumSize(SNAPSHOT_PX, SNAPSHOT_PX * 9 // 16)
        self.snapshot.setStyleSheet("QLabel { background: #202020; color: #aaa; }")
        self.snapshot.double_clicked.connect(self._enlarge_snapshot)
        self.snapshot_image: np.ndarray | None = None
        self.search_face_button = QPushButton("Search by this face")
        self.search_face_button.clicked.connect(self._search_selected)
        self.search_image_button = QPushButton("Search by image file…")
        self.search_image_button.clicked.connect(self._choose_search_image)
        self.search_image_button.setEnabled(faces is not None)
        self.wrong_button = QPushButton("This match was wrong")
        self.wrong_button.setToolTip("Store this face as a negative sample of the person it was matched to")
        self.wrong_button.clicked.connect(self._mark_selected_wrong)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Every sighting matching the filters (all pages): CSV, JSON, or a zip with crops")
        self.export_button.clicked.connect(self._choose_export)
        self.evidence_button = QPushButton("Export as evidence…")
        self.evidence_button.setToolTip("The selected sightings (Ctrl-click for several) as a signed evidence zip")
        self.evidence_button.clicked.connect(self._ask_evidence)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        side = QVBoxLayout()
        side.addWidget(self.crop)
        side.addWidget(self.crop_text)
        side.addWidget(self.snapshot)
        side.addWidget(self.search_face_button)
        side.addWidget(self.wrong_button)
        side.addSpacing(12)
        side.addWidget(self.search_image_button)
        side.addWidget(self.export_button)
        side.addWidget(self.evidence_button)
        side.addWidget(self.status)
        side.addStretch(1)

        table_panel, side_panel = QWidget(), QWidget()
        left = QVBoxLayout(table_panel)
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(self.table, 1)
        left.addLayout(paging)
        side_panel.setLayout(side)
        split = QSplitter()
        split.addWidget(table_panel)
        split.addWidget(side_panel)
        split.setStretchFactor(0, 1)
        split.setSizes([800, 280])
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(split, 1)
        self._selection_changed()
        self.refresh()

    @property
    def busy(self) -> int:
        return self.work.busy

    # ------------------------------------------------------------ filters

    def refresh(self) -> None:
        """Reload the person and camera choices, then run the current filter again."""
        gallery = self.gallery

        def load() -> FilterChoices:
            persons = tuple((p.id, p.name) for p in gallery.persons())
            return FilterChoices(persons, tuple(c.name for c in gallery.cameras()))

        self._choices_ticket += 1
        ticket = self._choices_ticket
        self.work.run(load, lambda choices: self._choices_loaded(choices) if ticket == self._choices_ticket else None)
        self._load(self.filter, self.page.offset if self.page is not None and not self.face_search else 0)

    def _choices_loaded(self, choices: FilterChoices) -> None:
        for combo, entries in (
            (self.person, [(name, pid) for pid, name in choices.persons]),
            (self.camera, [(name, name) for name in choices.cameras]),
        ):
            current = combo.currentData()
            combo.blockSignals(True)
            while combo.count() > 1:
                combo.removeItem(1)
            for text, data in entries:
                combo.addItem(text, data)
            index = combo.findData(current)
            combo.setCurrentIndex(max(0, index))
            combo.blockSignals(False)

    def _person_usable(self) -> None:
        self.person.setEnabled(not (self.unknown_only.isChecked() or self.undecided_only.isChecked()))

    def current_filter(self) -> HistoryFilter:
        unknown = self.unknown_only.isChecked()
        undecided = self.undecided_only.isChecked()
        person = None if unknown or undecided else self.person.currentData()
        camera = self.camera.currentData()
        return HistoryFilter(
            person_id=None if person is None else int(person),
            camera=None if camera is None else str(camera),
            since=self.since.dateTime().toSecsSinceEpoch() if self.since_on.isChecked() else None,
            until=self.until.dateTime().toSecsSinceEpoch() if self.until_on.isChecked() else None,
            unknown_only=unknown,
            min_score=self.min_score.value() if self.min_score.value() > 0 else None,
            undecided_only=undecided,
        )

    def set_filter(self, f: HistoryFilter) -> None:
        """Put ``f`` into the filter row (the camera is added to its list if missing) and search."""
        self.unknown_only.setChecked(f.unknown_only)
        self.undecided_only.setChecked(f.undecided_only)
        index = self.person.findData(f.person_id)
        if f.person_id is not None and index < 0:
            self.person.addItem(f"person {f.person_id}", f.person_id)
            index = self.person.count() - 1
        self.person.setCurrentIndex(max(0, index))
        index = self.camera.findData(f.camera)
        if f.camera is not None and index < 0:
            self.camera.addItem(f.camera, f.camera)
            index = self.camera.count() - 1
        self.camera.setCurrentIndex(max(0, index))
        for on, edit, value in ((self.since_on, self.since, f.since), (self.until_on, self.until, f.until)):
            on.setChecked(value is not None)
            if value is not None:
                edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(value)))
        self.min_score.setValue(f.min_score or 0.0)
        self.search()

    def search(self) -> None:
        """Run the filter row's filter from the newest sighting."""
        self._load(self.current_filter(), 0)

    def next_page(self) -> None:
        if self.page is not None and self.page.more and not self.face_search:
            self._load(self.filter, self.page.offset + PAGE)

    def previous_page(self) -> None:
        if self.page is not None and self.page.offset > 0 and not self.face_search:
            self._load(self.filter, max(0, self.page.offset - PAGE))

    def _load(self, f: HistoryFilter, offset: int) -> None:
        if f.since is not None and f.until is not None and f.until <= f.since:
            self.status.setText("“until” must be after “since”")
            return
        self.filter = f
        gallery = self.gallery
        self._request(lambda: query_page(gallery, f, offset), face_search=False)

    def _request(self, fn: Callable[[], HistoryPage], *, face_search: bool) -> None:
        """Run a page query in the background; only the newest request's page is shown."""
        self._ticket += 1
        ticket = self._ticket
        self.work.run(fn, lambda page: self._show(page, face_search=face_search, ticket=ticket))

    # -------------------------------------------------------------- table

    def _show(self, page: HistoryPage, *, face_search: bool, ticket: int) -> None:
        if ticket != self._ticket:
            return  # superseded: a newer request was made while this one ran
        self.page = page
        self.face_search = face_search
        self.title.setText(page.title)
        self.model.set_page(page.rows, face_search=face_search)
        self.prev_button.setEnabled(not face_search and page.offset > 0)
        self.next_button.setEnabled(not face_search and page.more)
        self._selection_changed()

    def rows(self) -> list[HistoryRow]:
        return list(self.page.rows) if self.page is not None else []

    def selected(self) -> Sighting | None:
        rows = self.table.selectionModel().selectedRows()
        row = self.model.row_at(rows[0].row()) if rows else None
        return None if row is None else row.sighting

    def selected_ids(self) -> list[int]:
        rows = (self.model.row_at(i.row()) for i in self.table.selectionModel().selectedRows())
        return sorted(r.sighting.id for r in rows if r is not None)

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def _selection_changed(self) -> None:
        s = self.selected()
        self.search_face_button.setEnabled(s is not None)
        self.wrong_button.setEnabled(s is not None and s.person_id is not None)
        self.evidence_button.setEnabled(s is not None)

    def _row_selected(self) -> None:
        self._selection_changed()
        s = self.selected()
        if s is None:
            return
        gallery = self.gallery
        self.crop_text.setText(
            f"{local_time(s.start)} – {time.strftime('%H:%M:%S', time.localtime(s.end))}\n"
            f"camera {s.camera}\n{s.person or ('undecided' if s.state == 'undecided' else 'unknown')}"
            + ("" if s.score is None else f" (score {s.score:.3f})")
        )

        def load() -> CropDetail:
            snap = gallery.snapshot(s.id) if s.has_snapshot else None
            frame = None if snap is None else snapshot_with_box(snap.jpeg, snap.box, SNAPSHOT_FULL_PX)
            return CropDetail(s, decode_thumbnail(gallery.crop(s.id), DETAIL_PX), frame)

        self.work.run(load, self._crop_loaded)

    def _crop_loaded(self, detail: CropDetail) -> None:
        if self.selected() != detail.sighting:
            return
        if detail.image is None:
            self.crop.clear()
            self.crop.setText("no crop stored")
        else:
            self.crop.setPixmap(scaled(to_pixmap(detail.image), DETAIL_PX))
        self.snapshot_image = detail.snapshot
        if detail.snapshot is None:
            self.snapshot.clear()
            self.snapshot.setText("no snapshot stored")
        else:
            self.snapshot.setPixmap(scaled(to_pixmap(detail.snapshot), SNAPSHOT_PX))

    def _enlarge_snapshot(self) -> None:
        if self.snapshot_image is None:
            return
        dialog = QDialog(self)
        dialog.setWindowTitle("Evidence snapshot")
        label = QLabel()
        label.setPixmap(to_pixmap(self.snapshot_image))
        QVBoxLayout(dialog).addWidget(label)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def show_sighting(self, sighting_id: int) -> None:
        """Show one sighting (e.g. an alert's) alone in the table, selected, with its crop and detail."""
        gallery = self.gallery

        def run() -> HistoryPage:
            found = gallery.sightings_by_id([sighting_id])
            if not found:
                raise ValueError(f"sighting {sighting_id} is no longer in the history")
            return HistoryPage(
                _rows(gallery, found), 0, False, f"sighting {sighting_id} (Search lists the filter again)"
            )

        self._ticket += 1
        ticket = self._ticket

        def done(page: HistoryPage) -> None:
            self._show(page, face_search=False, ticket=ticket)
            if ticket == self._ticket:
                self.select_row(0)

        self.work.run(run, done)

    # ------------------------------------------------------ face search

    def _search_selected(self) -> None:
        self.search_by_sighting()

    def search_by_sighting(self, sighting_id: int | None = None) -> None:
        """List the stored sightings most like a sighting's face (default: the selected one)."""
        sid = sighting_id if sighting_id is not None else getattr(self.selected(), "id", None)
        if sid is None:
            return
        gallery = self.gallery

        def run() -> HistoryPage:
            model, embedding = stored_embedding(gallery, sid)
            return face_page(gallery, model, embedding, f"sighting {sid}")

        self._request(run, face_search=True)

    def _choose_search_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Search by face: an image", "", IMAGE_FILTER)
        if path:
            self.search_by_image(Path(path))

    def search_by_image(self, path: Path) -> None:
        """List the stored sightings most like the largest face of an image file."""
        faces, gallery = self.faces, self.gallery
        if faces is None:
            self.status.setText("the face models are not available")
            return

        def run() -> HistoryPage:
            obs = face_from_file(faces, path)
            return face_page(gallery, obs.model, obs.embedding, path.name)

        self._request(run, face_search=True)

    # ------------------------------------------------------ wrong match

    def _mark_selected_wrong(self) -> None:
        self.mark_wrong()

    def mark_wrong(self, sighting: Sighting | None = None) -> None:
        """Store a known sighting's face as a negative sample of the person it was matched to."""
        s = sighting if sighting is not None else self.selected()
        if s is None or s.person_id is None:
            return
        gallery, pid = self.gallery, s.person_id

        def run() -> int:
            model, embedding = stored_embedding(gallery, s.id)
            crop = gallery.crop(s.id) or b""
            return gallery.add_negative(
                pid, model=model, embedding=embedding, crop_jpeg=crop, source=f"sighting {s.id} marked wrong"
            )

        def done(_: object) -> None:
            self.status.setText(f"Noted: sighting {s.id} is not {s.person}.")
            self.gallery_changed.emit()

        self.work.run(run, done)

    # ------------------------------------------------------------ export

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export history", "history.csv", "CSV (*.csv);;JSON (*.json);;Zip with crops (*.zip)"
        )
        if path:
            self.export_csv(Path(path))

    def _ask_evidence(self) -> None:
        ids = self.selected_ids()
        dialog = data_exports.EvidenceDialog(len(ids), Path.home() / f"evidence-{ids[0] if ids else 0}.zip", self)
        if ids and dialog.exec() == QDialog.DialogCode.Accepted:
            self.export_evidence(ids, *dialog.values())

    def export_evidence(self, ids: list[int], case: str, note: str, path: Path) -> None:
        """The sightings ``ids`` as signed evidence in ``path`` (station.evidence), in the background."""
        gallery = self.gallery
        self.status.setText(f"Exporting {len(ids)} sighting(s) as evidence…")
        self.work.run(
            lambda: data_exports.evidence(gallery, ids, case, note, path),
            lambda summary: self.status.setText(data_exports.evidence_done(summary)),
            failed=self.status.setText,
        )

    def export_csv(self, path: Path) -> None:
        """Export every sighting matching the current filter (all pages) to ``path``."""
        f, gallery = self.current_filter(), self.gallery
        self.status.setText(f"Exporting to {path.name}…")
        self.work.run(
            lambda: export_file(gallery, f, path),
            lambda n: self.status.setText(f"Exported {n} sighting(s) to {path}"),
            failed=self.status.setText,
        )
