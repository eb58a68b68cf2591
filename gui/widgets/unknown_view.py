"""Recurring unknown faces: clusters of unknown sightings that look alike, with "Name this person…",
which makes them a new person (their sightings become theirs, and a few become samples).

Clustering and promotion run in background jobs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.jobs import Jobs
from gui.services import FaceAnalyser
from gui.widgets.thumbnails import ViewJobs, decode_thumbnail, to_pixmap
from storage.gallery import Gallery
from storage.records import Cluster

ROW_PX = 72


@dataclass(frozen=True)
class ClusterRow:
    cluster: Cluster
    model: str
    thumbnail: np.ndarray | None  # the representative's crop


def load_clusters(gallery: Gallery, models: list[str], threshold: float | None) -> list[ClusterRow]:
    rows = []
    for model in models:
        found = (
            gallery.unknown_clusters(model)
            if threshold is None
            else gallery.unknown_clusters(model, threshold=threshold)
        )
        for c in found:
            rows.append(ClusterRow(c, model, decode_thumbnail(gallery.crop(c.representative), ROW_PX)))
    rows.sort(key=lambda r: (-r.cluster.size, -r.cluster.last_seen))
    return rows


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


class UnknownView(QWidget):
    """The clusters, largest first."""

    gallery_changed = Signal()  # after a cluster became a person
    person_named = Signal(int, str)  # (person id, why): the station may offer more of their past sightings

    def __init__(
        self,
        gallery: Gallery,
        jobs: Jobs,
        faces: FaceAnalyser | None,
        parent: QWidget | None = None,
        *,
        threshold: float | None = None,
    ) -> None:
        """``threshold``: the cosine similarity that links two faces into one cluster (None: the gallery's)."""
        super().__init__(parent)
        self.gallery = gallery
        self.faces = faces
        self.threshold = threshold
        self.work = ViewJobs(jobs, self, "Unknown faces")
        self.clusters: list[ClusterRow] = []

        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Face", "Sightings", "Cameras", "First seen", "Last seen"])
        self.table.setIconSize(QSize(ROW_PX - 4, ROW_PX - 4))
        self.table.verticalHeader().setDefaultSectionSize(ROW_PX)
        self.table.verticalHeader().setVisible(False)
        self.table.setColumnWidth(0, ROW_PX + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        for col in (1, 3, 4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _: self._ask_name())
        self.summary = QLabel("")
        self.name_button = QPushButton("Name this person…")
        self.name_button.clicked.connect(self._ask_name)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.name_button)
        row.addWidget(refresh)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self._selection_changed()
        self.refresh()

    @property
    def busy(self) -> int:
        return self.work.busy

    def refresh(self) -> None:
        gallery, faces, threshold = self.gallery, self.faces, self.threshold

        def load() -> list[ClusterRow]:
            models = [faces.model] if faces is not None else sorted(gallery.models())
            return load_clusters(gallery, models, threshold)

        self.summary.setText("Grouping unknown faces…")
        self.work.run(load, self._loaded, failed=lambda _: self.summary.setText(""))

    def _loaded(self, rows: list[ClusterRow]) -> None:
        self.clusters = rows
        self.table.clearContents()
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            c = r.cluster
            face = QTableWidgetItem(QIcon(to_pixmap(r.thumbnail, ROW_PX)), "")
            face.setToolTip(f"sighting {c.representative}; cohesion {c.cohesion:.2f}")
            items = [
                face,
                QTableWidgetItem(str(c.size)),
                QTableWidgetItem(", ".join(c.cameras)),
                QTableWidgetItem(_when(c.first_seen)),
                QTableWidgetItem(_when(c.last_seen)),
            ]
            for col, item in enumerate(items):
                self.table.setItem(i, col, item)
        self.summary.setText(f"{len(rows)} recurring unknown face(s)" if rows else "No recurring unknown faces (yet).")
        self._selection_changed()

    def selected_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows and 0 <= rows[0].row() < len(self.clusters) else None

    def _selection_changed(self) -> None:
        self.name_button.setEnabled(self.selected_row() is not None)

    def _ask_name(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        name, ok = QInputDialog.getText(
            self, "Name this person", f"Name for these {self.clusters[row].cluster.size} sightings:"
        )
        if ok and name.strip():
            self.name_cluster(row, name.strip())

    def name_cluster(self, row: int, name: str) -> None:
        """Make cluster ``row`` a new person called ``name``."""
        cluster, gallery = self.clusters[row].cluster, self.gallery

        def done(pid: int) -> None:
            self.gallery_changed.emit()
            self.person_named.emit(int(pid), f"named from {cluster.size} unknown sightings")
            self.refresh()

        self.summary.setText(f"Naming {name}…")
        self.work.run(lambda: gallery.promote_cluster(cluster, name), done, failed=lambda _: self.refresh())
