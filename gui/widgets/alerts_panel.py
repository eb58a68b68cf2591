"""The alert list: watchlist hits, new unknown faces (when switched on) and cameras going offline.

A face alert shows the face, cropped from the frame it was seen in (the crop arrives from a background
job a moment after the alert); a double-click opens that face's sighting in the History page.
Alerts stay until acknowledged; a new one can ring the system bell and show a tray message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from gui.widgets.thumbnails import to_pixmap

ICON_PX = 64
CROP_ROLE = Qt.ItemDataRole.UserRole + 1
MAX_ALERTS = 500  # the oldest unacknowledged alerts beyond this are dropped from the list


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert. A face alert names the face's ``track_id`` (its sighting, once recorded) and the
    ``frame_id`` and ``box`` it was seen at (its crop)."""

    kind: str  # "watchlist" | "unknown" | "camera"
    camera: str
    text: str
    at: float
    track_id: str = ""
    frame_id: int | None = None
    box: tuple[float, float, float, float] | None = None


COLOURS = {"watchlist": QColor(235, 60, 60), "unknown": QColor(200, 150, 20), "camera": QColor(120, 120, 200)}


class AlertsPanel(QWidget):
    """Unacknowledged alerts, newest first."""

    alert_added = Signal(object)
    open_requested = Signal(object)  # a face Alert, double-clicked: show its sighting

    def __init__(self, tray: QSystemTrayIcon | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tray = tray
        self.list = QListWidget(self)
        self.list.setIconSize(QSize(ICON_PX, ICON_PX))
        self.list.setWordWrap(True)
        self.list.setSpacing(2)
        self.list.itemDoubleClicked.connect(self._double_clicked)
        self.sound = QCheckBox("Sound")
        self.sound.setChecked(True)
        self.unknown_alerts = QCheckBox("Alert on new unknown faces")
        ack = QPushButton("Acknowledge")
        ack.clicked.connect(self.acknowledge_selected)
        ack_all = QPushButton("Acknowledge all")
        ack_all.clicked.connect(self.acknowledge_all)
        row = QHBoxLayout()
        row.addWidget(ack)
        row.addWidget(ack_all)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(row)
        layout.addWidget(self.sound)
        layout.addWidget(self.unknown_alerts)
        self.acknowledged = 0

    def add(self, alert: Alert) -> QListWidgetItem | None:
        if alert.kind == "unknown" and not self.unknown_alerts.isChecked():
            return None
        stamp = time.strftime("%H:%M:%S", time.localtime(alert.at))
        item = QListWidgetItem(f"{stamp}  {alert.camera}\n{alert.text}")
        item.setForeground(QBrush(COLOURS.get(alert.kind, QColor(200, 200, 200))))
        item.setData(Qt.ItemDataRole.UserRole, alert)
        if alert.track_id:
            item.setIcon(QIcon(to_pixmap(None, ICON_PX)))  # until the crop arrives
            item.setToolTip("Double-click to open this sighting in the History page")
        self.list.insertItem(0, item)
        while self.list.count() > MAX_ALERTS:
            self.list.takeItem(self.list.count() - 1)
        if alert.kind != "camera":
            if self.sound.isChecked():
                QApplication.beep()
            if self.tray is not None and self.tray.isVisible():
                self.tray.showMessage("FaceStation", f"{alert.camera}: {alert.text}")
        self.alert_added.emit(alert)
        return item

    def set_crop(self, alert: Alert, face: np.ndarray) -> bool:
        """Show ``face`` (a BGR crop) beside ``alert``; False when the alert is no longer listed."""
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == alert:
                item.setIcon(QIcon(to_pixmap(face, ICON_PX)))
                item.setData(CROP_ROLE, face.shape[:2])
                return True
        return False

    def crop_size(self, alert: Alert) -> tuple[int, int] | None:
        """(height, width) of the crop shown beside ``alert``, None while there is none."""
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == alert:
                size = item.data(CROP_ROLE)
                return None if size is None else (int(size[0]), int(size[1]))
        return None

    def _double_clicked(self, item: QListWidgetItem) -> None:
        alert = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(alert, Alert) and alert.track_id:
            self.open_requested.emit(alert)

    def pending(self) -> list[Alert]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def acknowledge_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
            self.acknowledged += 1

    def acknowledge_all(self) -> None:
        self.acknowledged += self.list.count()
        self.list.clear()
