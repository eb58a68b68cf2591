"""The cameras panel: senders found on the LAN, manual add, and pairing a new camera.

It polls the discovery browser and the receiver on a timer (both are thread-safe and cheap), so
nothing from zeroconf's threads ever touches a widget.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from network.addresses import parse_hostport
from network.discovery import DiscoveredSender
from network.udp_receiver import UdpReceiver


def sender_command(key_file: Path, station: tuple[str, int] | None) -> str:
    """The exact commands to run on a camera host: announce on the LAN, or push to this station."""
    base = ["python", "network/udp_sender.py", "--source", "0", "--name", "CAMERA-NAME", "--key-file", "station.key"]
    lines = [f"# copy {key_file} to the camera host as station.key (mode 0600), then:", shlex.join(base)]
    if station is not None:
        lines += [
            "# or, where multicast does not pass (routed networks):",
            shlex.join([*base, "--station", f"{station[0]}:{station[1]}"]),
        ]
    return "\n".join(lines)


class CamerasPanel(QWidget):
    """Lists discovered senders; subscribes, unsubscribes and adds cameras by address."""

    COLUMNS = ("Camera", "Address", "Resolution", "FPS", "State")

    def __init__(
        self,
        receiver: UdpReceiver,
        senders: Callable[[], list[DiscoveredSender]],
        key_hex: str,
        key_file: Path,
        station_address: tuple[str, int] | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.receiver = receiver
        self._senders = senders
        self._rows: list[DiscoveredSender] = []

        self.table = QTableWidget(0, len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.subscribe_button = QPushButton("Subscribe")
        self.unsubscribe_button = QPushButton("Unsubscribe")
        self.subscribe_button.clicked.connect(self.subscribe_selected)
        self.unsubscribe_button.clicked.connect(self.unsubscribe_selected)

        self.address_edit = QLineEdit()
        self.address_edit.setPlaceholderText("HOST:PORT of a sender (e.g. 192.168.1.20:47810)")
        self.add_button = QPushButton("Add")
        self.add_button.clicked.connect(self.add_manual)
        self.address_edit.returnPressed.connect(self.add_manual)
        self.message = QLabel("")
        self.message.setWordWrap(True)

        found = QGroupBox("Cameras on the LAN")
        fl = QVBoxLayout(found)
        fl.addWidget(self.table)
        row = QHBoxLayout()
        row.addWidget(self.subscribe_button)
        row.addWidget(self.unsubscribe_button)
        row.addStretch(1)
        fl.addLayout(row)

        manual = QGroupBox("Add by address (routed networks)")
        ml = QHBoxLayout(manual)
        ml.addWidget(self.address_edit, 1)
        ml.addWidget(self.add_button)

        pairing = QGroupBox("Pair a camera")
        pl = QVBoxLayout(pairing)
        self.key_edit = QLineEdit(key_hex)
        self.key_edit.setReadOnly(True)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.show_key = QPushButton("Show")
        self.show_key.setCheckable(True)
        self.show_key.toggled.connect(
            lambda on: self.key_edit.setEchoMode(QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password)
        )
        copy_key = QPushButton("Copy key")
        copy_key.clicked.connect(lambda: self._copy(key_hex, "key copied"))
        kl = QHBoxLayout()
        kl.addWidget(QLabel("Station key:"))
        kl.addWidget(self.key_edit, 1)
        kl.addWidget(self.show_key)
        kl.addWidget(copy_key)
        pl.addLayout(kl)
        self.command = sender_command(key_file, station_address)
        command_label = QLabel(self.command)
        command_label.setWordWrap(True)
        command_label.setStyleSheet("font-family: monospace; font-size: 9pt;")
        command_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        copy_cmd = QPushButton("Copy sender command")
        copy_cmd.clicked.connect(lambda: self._copy(self.command, "command copied"))
        pl.addWidget(QLabel("On the camera host, with the key file copied there:"))
        pl.addWidget(command_label)
        pl.addWidget(copy_cmd, 0, Qt.AlignmentFlag.AlignLeft)

        layout = QVBoxLayout(self)
        layout.addWidget(found, 1)
        layout.addWidget(manual)
        layout.addWidget(pairing)
        layout.addWidget(self.message)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(1000)
        self.refresh()

    def refresh(self) -> None:
        senders = self._senders()
        subscribed = set(self.receiver.subscriptions())
        online = {s.camera: s.online for s in self.receiver.stats()}
        if senders != self._rows:
            selected = self.selected()
            self._rows = senders
            self.table.setRowCount(len(senders))
            for r, s in enumerate(senders):
                values = (s.name, s.address, f"{s.width}×{s.height}" if s.width else "?", f"{s.fps:g}", "")
                for c, v in enumerate(values):
                    self.table.setItem(r, c, QTableWidgetItem(v))
                if selected is not None and s.name == selected.name:
                    self.table.selectRow(r)
        for r, s in enumerate(self._rows):
            if (s.host, s.port) in subscribed:
                state = "streaming" if online.get(s.name) else "subscribed"
            else:
                state = "available"
            item = self.table.item(r, 4)
            if item is not None and item.text() != state:
                item.setText(state)

    def selected(self) -> DiscoveredSender | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        r = rows[0].row()
        return self._rows[r] if 0 <= r < len(self._rows) else None

    def subscribe_selected(self) -> None:
        s = self.selected()
        if s is None:
            self.message.setText("Select a camera first.")
            return
        self._subscribe(s.host, s.port, s.name)

    def unsubscribe_selected(self) -> None:
        s = self.selected()
        if s is None:
            self.message.setText("Select a camera first.")
            return
        try:
            self.receiver.unsubscribe(s.host, s.port)
        except ValueError as exc:
            self.message.setText(f"Cannot unsubscribe {s.name}: {exc}")
            return
        self.message.setText(f"Unsubscribed from {s.name}.")
        self.refresh()

    def add_manual(self) -> None:
        text = self.address_edit.text().strip()
        try:
            host, port = parse_hostport(text)
        except ValueError as exc:
            self.message.setText(f"Not a camera address: {exc}")
            return
        if self._subscribe(host, port, text):
            self.address_edit.clear()

    def _subscribe(self, host: str, port: int, label: str) -> bool:
        try:
            self.receiver.subscribe(host, port)
        except ValueError as exc:
            self.message.setText(f"Cannot subscribe to {label}: {exc}")
            return False
        self.message.setText(f"Subscribed to {label}; its tile appears when frames arrive.")
        self.refresh()
        return True

    def _copy(self, text: str, done: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.message.setText(done)
