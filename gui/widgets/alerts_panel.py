"""The alert list: watchlist hits, new unknown faces (when switched on) and cameras going offline.

Alerts stay until acknowledged; a new one can ring the system bell and show a tray message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
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


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # "watchlist" | "unknown" | "camera"
    camera: str
    text: str
    at: float


COLOURS = {"watchlist": QColor(235, 60, 60), "unknown": QColor(240, 190, 40), "camera": QColor(150, 150, 220)}


class AlertsPanel(QWidget):
    """Unacknowledged alerts, newest first."""

    alert_added = Signal(object)

    def __init__(self, tray: QSystemTrayIcon | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tray = tray
        self.list = QListWidget(self)
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

    def add(self, alert: Alert) -> None:
        if alert.kind == "unknown" and not self.unknown_alerts.isChecked():
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(alert.at))
        item = QListWidgetItem(f"{stamp}  {alert.camera}: {alert.text}")
        item.setForeground(QBrush(COLOURS.get(alert.kind, QColor(200, 200, 200))))
        item.setData(Qt.ItemDataRole.UserRole, alert)
        self.list.insertItem(0, item)
        if alert.kind != "camera":
            if self.sound.isChecked():
                QApplication.beep()
            if self.tray is not None and self.tray.isVisible():
                self.tray.showMessage("FaceStation", f"{alert.camera}: {alert.text}")
        self.alert_added.emit(alert)

    def pending(self) -> list[Alert]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def acknowledge_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
            self.acknowledged += 1

    def acknowledge_all(self) -> None:
        self.acknowledged += self.list.count()
        self.list.clear()
