"""The relabelling offer: past unknown sightings that now match a person just enrolled or named
(station/relabel_offer.py), best first with their crops, to relabel in one step or one by one; each step is
audited and can be undone here (``Gallery.relabels``). Crops are decoded and the changes made in jobs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.jobs import Jobs
from gui.widgets.history_model import local_time
from gui.widgets.thumbnails import ViewJobs, decode_thumbnail, to_pixmap
from station.relabel_offer import RelabelCandidate
from storage.gallery import Gallery
from storage.relabel_records import RelabelBatch

CROP_PX = 96


@dataclass(frozen=True)
class Offer:
    """What the dialog offers: a person's past sightings that now match them, each with its crop."""

    person_id: int
    person: str
    why: str  # "just enrolled", "named from 6 unknown sightings"
    candidates: tuple[RelabelCandidate, ...]
    crops: tuple[np.ndarray | None, ...]


def load_offer(gallery: Gallery, person_id: int, why: str, candidates: Sequence[RelabelCandidate]) -> Offer:
    crops = tuple(decode_thumbnail(gallery.crop(c.sighting.id), CROP_PX) for c in candidates)
    return Offer(person_id, gallery.person(person_id).name, why, tuple(candidates), crops)


class RelabelDialog(QDialog):
    """See the module docstring."""

    relabelled = Signal(object)  # the RelabelBatch, or None after an undo

    def __init__(self, gallery: Gallery, jobs: Jobs, offer: Offer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.offer = offer
        self.work = ViewJobs(jobs, self, "Relabel")
        self.batches: list[RelabelBatch] = []
        self.setWindowTitle(f"Past sightings of {offer.person}")
        self.resize(820, 560)

        n = len(offer.candidates)
        self.heading = QLabel(
            f"<b>{offer.person}</b> ({offer.why}) now matches <b>{n}</b> past sighting{'s' if n != 1 else ''} "
            "recorded as unknown, at the station's current strictness. Best match first."
        )
        self.heading.setWordWrap(True)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(CROP_PX, CROP_PX))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setSpacing(8)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        for cand, crop in zip(offer.candidates, offer.crops, strict=True):
            s = cand.sighting
            day = time.strftime("%m-%d %H:%M", time.localtime(s.start))
            item = QListWidgetItem(QIcon(to_pixmap(crop, CROP_PX)), f"{cand.score:.3f}\n{s.camera}\n{day}")
            item.setToolTip(f"sighting {s.id}\n{local_time(s.start)} at {s.camera}\nmatches with {cand.score:.3f}")
            item.setData(Qt.ItemDataRole.UserRole, s.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.status = QLabel("Tick the ones that are them, or relabel them all.")
        self.status.setWordWrap(True)
        self.all_button = QPushButton(f"Relabel all {n} as {offer.person}")
        self.all_button.clicked.connect(self.relabel_all)
        self.ticked_button = QPushButton("Relabel ticked")
        self.ticked_button.clicked.connect(self.relabel_ticked)
        self.undo_button = QPushButton("Undo the last relabelling")
        self.undo_button.clicked.connect(self.undo_last)
        self.undo_button.setEnabled(False)
        done = QPushButton("Done")
        done.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        for b in (self.all_button, self.ticked_button, self.undo_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(done)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._enable()

    @property
    def busy(self) -> int:
        return self.work.busy

    def _pending(self, only_ticked: bool) -> list[tuple[int, float]]:
        scores = {c.sighting.id: c.score for c in self.offer.candidates}
        out = []
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.isHidden():
                continue
            if only_ticked and item.checkState() != Qt.CheckState.Checked:
                continue
            sid = int(item.data(Qt.ItemDataRole.UserRole))
            out.append((sid, scores[sid]))
        return out

    def _enable(self) -> None:
        left = self._pending(only_ticked=False)
        self.all_button.setEnabled(bool(left))
        self.ticked_button.setEnabled(bool(left))
        self.undo_button.setEnabled(any(b.undone is None for b in self.batches))

    def relabel_all(self) -> None:
        self._apply(self._pending(only_ticked=False), "all offered")

    def relabel_ticked(self) -> None:
        self._apply(self._pending(only_ticked=True), "chosen one by one")

    def _apply(self, items: list[tuple[int, float]], how: str) -> None:
        if not items:
            self.status.setText("Nothing ticked.")
            return
        gallery, pid, why = self.gallery, self.offer.person_id, f"{self.offer.why}; {how}"
        self.work.run(lambda: gallery.relabels.apply(pid, items, reason=why), self._applied)

    def _applied(self, batch: RelabelBatch) -> None:
        self.batches.append(batch)
        done = set(batch.sighting_ids)
        for i in range(self.list.count()):
            item = self.list.item(i)
            if int(item.data(Qt.ItemDataRole.UserRole)) in done:
                item.setHidden(True)
        self.status.setText(
            f"{len(done)} sighting(s) now named {self.offer.person} (relabelling {batch.id}, in the audit log)."
        )
        self._enable()
        self.relabelled.emit(batch)

    def undo_last(self) -> None:
        live = [b for b in self.batches if b.undone is None]
        if not live:
            return
        batch, gallery = live[-1], self.gallery
        self.work.run(lambda: gallery.relabels.undo(batch.id), lambda back: self._undone(batch, back))

    def _undone(self, batch: RelabelBatch, back: list[int]) -> None:
        self.batches = [b if b.id != batch.id else _undone(b) for b in self.batches]
        for i in range(self.list.count()):
            item = self.list.item(i)
            if int(item.data(Qt.ItemDataRole.UserRole)) in back:
                item.setHidden(False)
        self.status.setText(f"Undone: {len(back)} sighting(s) are unknown again.")
        self._enable()
        self.relabelled.emit(None)


def _undone(b: RelabelBatch) -> RelabelBatch:
    return RelabelBatch(b.id, b.time, b.actor, b.person_id, b.reason, time.time(), "this console", b.sighting_ids)
