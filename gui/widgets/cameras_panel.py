"""The Cameras page: every camera the station knows, with its state and where it came from, plus
manual add and pairing a new camera.

A camera is listed when the station receives it (pushed to this station with ``--station``, added
by address, subscribed after mDNS found it, or a local demo sender), when it is subscribed and not
yet streaming, or when mDNS found it on the LAN and it is only available. The page polls the
receiver and the discovery browser on a timer while it is shown (both are thread-safe and cheap),
so nothing from zeroconf's threads ever touches a widget.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QGuiApplication, QShowEvent
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
from network.frames import CameraStats
from network.udp_receiver import UdpReceiver

Address = tuple[str, int]

# Where a camera came from.
PUSHED = "pushed"  # it streams to this station by itself (udp_sender.py --station, the demo senders)
ADDED = "added"  # subscribed by address (Add, or headless --connect)
DISCOVERED = "discovered"  # found over mDNS on the LAN (subscribed or only available)

STATE_COLOURS = {
    "receiving": QColor(40, 150, 60),
    "online": QColor(40, 120, 170),
    "offline": QColor(200, 50, 50),
    "waiting": QColor(190, 130, 20),
    "available": QColor(110, 110, 110),
}


@dataclass(frozen=True)
class CameraRow:
    """One line of the cameras table. ``state`` is receiving, online (announced, no frames now),
    offline, waiting (subscribed, nothing arrived yet) or available (found on the LAN only)."""

    name: str
    state: str
    source: str
    address: str
    fps: float | None = None
    width: int = 0
    height: int = 0
    latency_ms: float | None = None
    loss: float | None = None
    last_seen: float | None = None
    subscribed: Address | None = None  # the subscription to cancel, if any
    sender: DiscoveredSender | None = None  # what to subscribe to, if only available
    detect: str = ""  # "edge": the camera finds the faces (udp_sender.py --detect); "station": this station does

    def cells(self, now: float) -> tuple[str, ...]:
        state = self.state
        if state == "offline" and self.last_seen:
            state = f"offline ({_ago(now - self.last_seen)})"
        elif state == "waiting":
            state = "subscribed, waiting for frames"
        return (
            self.name,
            state,
            self.source,
            self.address,
            "" if self.fps is None else f"{self.fps:.1f}",
            f"{self.width}×{self.height}" if self.width else "",
            "" if self.latency_ms is None else f"{self.latency_ms:.0f} ms",
            "" if self.loss is None else f"{self.loss * 100:.1f}%",
            {"edge": "on the camera", "station": "at the station"}.get(self.detect, ""),
        )


def _ago(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s} s ago" if s < 120 else f"{s // 60} min ago" if s < 7200 else f"{s // 3600} h ago"


def _addr(text: str) -> Address | None:
    host, _, port = text.rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


def camera_rows(
    stats: Sequence[CameraStats], subscriptions: Sequence[Address], discovered: Sequence[DiscoveredSender]
) -> list[CameraRow]:
    """Every camera the station knows, by name: received ones, subscriptions still waiting, LAN finds."""
    subs = set(subscriptions)
    found = {(d.host, d.port): d for d in discovered}
    rows: list[CameraRow] = []
    seen_addresses: set[Address] = set()
    seen_names: set[str] = set()
    for st in stats:
        address = _addr(st.address)
        subscribed = address if address in subs else None
        source = PUSHED if subscribed is None else DISCOVERED if address in found else ADDED
        state = ("receiving" if st.fps > 0 else "online") if st.online else "offline"
        rows.append(
            CameraRow(
                st.camera,
                state,
                source,
                st.address,
                st.fps if st.online else None,
                st.width,
                st.height,
                st.latency_ms_p50 if st.online else None,
                st.loss if st.online else None,
                st.last_seen,
                subscribed,
                detect=st.detect if st.online else "",
            )
        )
        if address is not None:
            seen_addresses.add(address)
        seen_names.add(st.camera)
    for address in subs - seen_addresses:
        d = found.get(address)
        rows.append(
            CameraRow(
                d.name if d is not None else f"{address[0]}:{address[1]}",
                "waiting",
                DISCOVERED if d is not None else ADDED,
                f"{address[0]}:{address[1]}",
                width=d.width if d is not None else 0,
                height=d.height if d is not None else 0,
                subscribed=address,
                sender=d,
            )
        )
        seen_addresses.add(address)
    for address, d in found.items():
        if address in seen_addresses or d.name in seen_names:
            continue
        rows.append(CameraRow(d.name, "available", DISCOVERED, d.address, d.fps or None, d.width, d.height, sender=d))
    return sorted(rows, key=lambda r: (r.name.lower(), r.address))


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
    """Lists every camera; subscribes, unsubscribes, adds cameras by address, and pairs new ones."""

    COLUMNS = ("Camera", "State", "Source", "Address", "FPS", "Resolution", "Latency", "Loss", "Face detection")
    show_requested = Signal(str)  # a camera name: show its tile on the Live page

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
        self.rows: list[CameraRow] = []

        self.table = QTableWidget(0, len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # the name takes the spare width
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _: self._show_selected())
        self.summary = QLabel("")
        self.subscribe_button = QPushButton("Subscribe")
        self.subscribe_button.setToolTip("Ask the selected camera, found on the LAN, to stream to this station")
        self.unsubscribe_button = QPushButton("Unsubscribe")
        self.unsubscribe_button.setToolTip("Stop the selected subscription (a camera that pushes by itself cannot be)")
        self.show_button = QPushButton("Show on Live")
        self.subscribe_button.clicked.connect(self.subscribe_selected)
        self.unsubscribe_button.clicked.connect(self.unsubscribe_selected)
        self.show_button.clicked.connect(self._show_selected)

        self.address_edit = QLineEdit()
        self.address_edit.setPlaceholderText("HOST:PORT of a sender (e.g. 192.168.1.20:47810)")
        self.add_button = QPushButton("Add")
        self.add_button.clicked.connect(self.add_manual)
        self.address_edit.returnPressed.connect(self.add_manual)
        self.message = QLabel("")
        self.message.setWordWrap(True)

        found = QGroupBox("Cameras")
        fl = QVBoxLayout(found)
        fl.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.show_button)
        row.addWidget(self.subscribe_button)
        row.addWidget(self.unsubscribe_button)
        fl.addLayout(row)

        manual = QGroupBox("Add a camera by address (routed networks, no mDNS)")
        ml = QVBoxLayout(manual)
        al = QHBoxLayout()
        al.addWidget(self.address_edit, 1)
        al.addWidget(self.add_button)
        ml.addLayout(al)
        ml.addWidget(self.message)
        ml.addStretch(1)

        pairing = QGroupBox("Pair a new camera")
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

        bottom = QHBoxLayout()
        bottom.addWidget(manual, 2)
        bottom.addWidget(pairing, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(found, 1)
        layout.addLayout(bottom)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.timer.start(1000)
        self.refresh()

    def _tick(self) -> None:
        if self.isVisible():
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        self.refresh()
        super().showEvent(event)

    def refresh(self) -> None:
        rows = camera_rows(self.receiver.stats(), self.receiver.subscriptions(), self._senders())
        selected = self.selected()
        now = time.time()
        self.rows = rows
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row.cells(now)):
                item = self.table.item(r, c)
                if item is None:
                    item = QTableWidgetItem(text)
                    self.table.setItem(r, c, item)
                elif item.text() != text:
                    item.setText(text)
                if c == 1:
                    item.setForeground(QBrush(STATE_COLOURS.get(row.state, QColor(0, 0, 0))))
        if selected is not None:
            index = next((i for i, row in enumerate(rows) if row.name == selected.name), None)
            if index is not None and self.table.currentRow() != index:
                self.table.selectRow(index)
        receiving = sum(1 for row in rows if row.state == "receiving")
        self.summary.setText(f"{len(rows)} camera(s), {receiving} receiving" if rows else "No cameras yet.")
        self._selection_changed()

    def selected(self) -> CameraRow | None:
        model = self.table.selectionModel()
        picked = model.selectedRows() if model is not None else []
        if not picked:
            return None
        r = picked[0].row()
        return self.rows[r] if 0 <= r < len(self.rows) else None

    def select(self, name: str) -> bool:
        index = next((i for i, row in enumerate(self.rows) if row.name == name), None)
        if index is None:
            return False
        self.table.selectRow(index)
        return True

    def _selection_changed(self) -> None:
        s = self.selected()
        self.subscribe_button.setEnabled(s is not None and s.sender is not None and s.subscribed is None)
        self.unsubscribe_button.setEnabled(s is not None and s.subscribed is not None)
        self.show_button.setEnabled(s is not None and s.state in ("receiving", "online", "offline"))

    def _show_selected(self) -> None:
        s = self.selected()
        if s is not None and s.state in ("receiving", "online", "offline"):
            self.show_requested.emit(s.name)

    def subscribe_selected(self) -> None:
        s = self.selected()
        if s is None or s.sender is None:
            self.message.setText("Select a camera found on the LAN first.")
            return
        self._subscribe(s.sender.host, s.sender.port, s.name)

    def unsubscribe_selected(self) -> None:
        s = self.selected()
        if s is None or s.subscribed is None:
            self.message.setText("Select a subscribed camera first (a camera that pushes by itself cannot be).")
            return
        try:
            self.receiver.unsubscribe(*s.subscribed)
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
        self.message.setText(f"Subscribed to {label}; its tile appears on the Live page when frames arrive.")
        self.refresh()
        return True

    def _copy(self, text: str, done: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.message.setText(done)
