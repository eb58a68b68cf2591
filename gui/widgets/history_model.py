"""The history table's model: whole pages of frozen rows in, cells out.

The history view hands it one page at a time (:meth:`HistoryModel.set_page`) and Qt asks it for the cells
it paints, so a page is one model reset rather than five hundred item objects, and only the thumbnails
that are shown become pixmaps (on the GUI thread, once each).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QIcon

from gui.scores import score_text
from gui.widgets.thumbnails import to_pixmap
from storage.records import Sighting

ROW_PX = 52
HEADERS = ("Face", "Time", "Camera", "Person", "Score")
FACE, TIME, CAMERA, PERSON, SCORE = range(len(HEADERS))
UNKNOWN_COLOUR = QColor(Qt.GlobalColor.darkYellow)

Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class HistoryRow:
    sighting: Sighting
    thumbnail: np.ndarray | None
    similarity: float | None = None  # set in a search by face


def local_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


class HistoryModel(QAbstractTableModel):
    """One page of sightings: face, local time, camera, person ("unknown" in yellow), score or similarity.
    ``Qt.UserRole`` on any cell is the sighting id."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: tuple[HistoryRow, ...] = ()
        self._icons: dict[int, QIcon] = {}
        self.face_search = False

    def set_page(self, rows: Sequence[HistoryRow], *, face_search: bool) -> None:
        """Show ``rows`` instead of what was shown (one reset); a face search shows similarity, not score."""
        self.beginResetModel()
        self._rows = tuple(rows)
        self._icons = {}
        self.face_search = face_search
        self.endResetModel()

    def rows(self) -> tuple[HistoryRow, ...]:
        return self._rows

    def row_at(self, row: int) -> HistoryRow | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or role != Qt.ItemDataRole.DisplayRole:
            return None
        if section == SCORE and self.face_search:
            return "Similarity"
        return HEADERS[section] if 0 <= section < len(HEADERS) else None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row_at(index.row()) if index.isValid() else None
        if row is None:
            return None
        s, col = row.sighting, index.column()
        if role == Qt.ItemDataRole.UserRole:
            return s.id
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, col)
        if role == Qt.ItemDataRole.DecorationRole and col == FACE:
            icon = self._icons.get(index.row())
            if icon is None:
                icon = self._icons[index.row()] = QIcon(to_pixmap(row.thumbnail, ROW_PX))
            return icon
        if role == Qt.ItemDataRole.ForegroundRole and col == PERSON and s.person is None:
            return UNKNOWN_COLOUR
        return None

    @staticmethod
    def _text(row: HistoryRow, col: int) -> str | None:
        s = row.sighting
        if col == TIME:
            return local_time(s.start)
        if col == CAMERA:
            return s.camera
        if col == PERSON:
            return s.person if s.person is not None else s.state  # "unknown", or "undecided": never seen well
        if col == SCORE:
            return score_text(row.similarity if row.similarity is not None else s.score)  # "—": compared with no one
        return "" if col == FACE else None
