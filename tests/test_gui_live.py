"""The console's live side with real services: discovery, subscribe, tiles, offline, grid layout."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QDockWidget, QLabel
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.services import ConsoleServices
from gui.widgets.camera_grid import CameraGrid, grid_shape
from gui.widgets.camera_tile import MIME_CAMERA
from gui.widgets.cameras_panel import CamerasPanel
from network import protocol
from network.discovery import Browser
from network.udp_receiver import ReceiverConfig, UdpReceiver
from tests.conftest import SenderFactory

pytestmark = pytest.mark.slow


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cell(panel: CamerasPanel, row: int, column: int) -> str:
    item = panel.table.item(row, column)
    return "" if item is None else item.text()


@pytest.fixture
def console(qtbot: QtBot, key: bytes, key_file: Path) -> Iterator[MainWindow]:
    rx = UdpReceiver(key, "127.0.0.1", 0, config=ReceiverConfig(offline_after_s=1.5, lease_s=3)).start()
    browser = Browser(interfaces=["127.0.0.1"])
    services = ConsoleServices(rx, browser.senders, protocol.encode_key(key), key_file, rx.address)
    window = MainWindow(services)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    try:
        yield window
    finally:
        window.close()
        browser.close()
        rx.stop()


def test_discovered_sender_is_subscribed_from_the_panel_and_its_tile_shows_frames(
    qtbot: QtBot, console: MainWindow, start_sender: SenderFactory, tmp_path: Path
) -> None:
    port = free_udp_port()
    proc = start_sender(
        *("--source", "demo", "--name", "porch", "--port", str(port), "--fps", "10"),
        *("--mdns-interface", "127.0.0.1", "--max-width", "320"),
    )
    panel = console.cameras
    console.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.table.rowCount() == 1 and cell(panel, 0, 0) == "porch", timeout=20_000)
    assert [cell(panel, 0, c) for c in (1, 2, 3, 5)] == ["available", "discovered", f"127.0.0.1:{port}", "320×240"]
    assert "porch" not in console.grid.tiles, "nothing streams before the operator subscribes"

    panel.table.selectRow(0)
    qtbot.mouseClick(panel.subscribe_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: cell(panel, 0, 1) == "receiving", timeout=10_000)
    assert cell(panel, 0, 2) == "discovered" and panel.table.rowCount() == 1
    qtbot.mouseClick(panel.show_button, Qt.MouseButton.LeftButton)  # to the Live page, the tile maximised
    assert console.tabs.currentWidget() is console.grid and console.grid.maximised == "porch"
    console.grid.toggle_maximise("porch")
    tile = console.grid.tiles["porch"]
    qtbot.waitUntil(lambda: tile.frames_painted >= 3 and tile.badge is not None, timeout=10_000)
    assert tile.image is not None and tile.source_size == (320, 240)
    assert tile.online
    console.grab().save(str(tmp_path / "live.png"))

    # The camera vanishes without a goodbye: its tile turns offline and the alarm dock notes it (a notice).
    proc.kill()
    qtbot.waitUntil(lambda: not tile.online, timeout=10_000)
    assert any(n.camera == "porch" and n.text.startswith("offline") for n in console.alerts.notices())


def test_manual_add_rejects_a_bad_address_with_a_message(qtbot: QtBot, console: MainWindow) -> None:
    panel = console.cameras
    console.tabs.setCurrentWidget(panel)
    panel.address_edit.setText("not-an-address")
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert "Not a camera address" in panel.message.text()
    assert console.services.receiver.subscriptions() == []
    port = free_udp_port()
    panel.address_edit.setText(f"127.0.0.1:{port}")
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert console.services.receiver.subscriptions() == [("127.0.0.1", port)]
    assert "--key-file" in panel.command and "--station" in panel.command
    assert [cell(panel, 0, c) for c in (0, 1, 2, 3)] == [
        f"127.0.0.1:{port}",
        "subscribed, waiting for frames",
        "added",
        f"127.0.0.1:{port}",
    ]


def test_the_cameras_page_lists_every_camera_with_its_state_and_source(
    qtbot: QtBot, console: MainWindow, start_sender: SenderFactory
) -> None:
    """Three cameras reach the station three ways; before, the table listed only what mDNS found (none here)."""
    host, port = console.services.receiver.address
    start_sender(
        "--source", "demo", "--name", "gate", "--station", f"{host}:{port}", "--fps", "8", "--max-width", "320"
    )
    added_port, found_port = free_udp_port(), free_udp_port()
    start_sender(
        *("--source", "demo", "--name", "yard", "--port", str(added_port), "--no-announce", "--bind", "127.0.0.1"),
        *("--fps", "8", "--max-width", "320"),
    )
    porch = start_sender(
        *("--source", "demo", "--name", "porch", "--port", str(found_port), "--mdns-interface", "127.0.0.1"),
        *("--fps", "8", "--max-width", "320"),
    )
    panel = console.cameras
    console.tabs.setCurrentWidget(panel)
    panel.address_edit.setText(f"127.0.0.1:{added_port}")
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "porch" in [r.name for r in panel.rows], timeout=20_000)
    assert panel.select("porch")
    qtbot.mouseClick(panel.subscribe_button, Qt.MouseButton.LeftButton)

    def table() -> dict[str, tuple[str, ...]]:
        return {cell(panel, r, 0): tuple(cell(panel, r, c) for c in range(1, 6)) for r in range(panel.table.rowCount())}

    qtbot.waitUntil(lambda: [v[0] for v in table().values()] == ["receiving"] * 3, timeout=20_000)
    got = table()
    assert sorted(got) == ["gate", "porch", "yard"]
    assert {name: (v[1], v[4]) for name, v in got.items()} == {
        "gate": ("pushed", "320×240"),
        "yard": ("added", "320×240"),
        "porch": ("discovered", "320×240"),
    }
    assert got["yard"][2] == f"127.0.0.1:{added_port}" and got["porch"][2] == f"127.0.0.1:{found_port}"
    assert all(float(v[3]) > 0 for v in got.values()), got
    assert "3 camera(s), 3 receiving" in panel.summary.text()
    assert panel.select("gate") and not panel.unsubscribe_button.isEnabled(), "a pushing camera has no subscription"
    assert panel.select("yard") and panel.unsubscribe_button.isEnabled()

    porch.kill()
    qtbot.waitUntil(lambda: table().get("porch", ("",))[0].startswith("offline"), timeout=15_000)
    # The Cameras page is a tab: the Live, Gallery and History pages get the whole width.
    assert console.tabs.indexOf(panel) >= 0
    assert not any(d.widget() is panel for d in console.findChildren(QDockWidget))


def test_pushed_camera_tiles_and_hidden_tiles_are_not_decoded(
    qtbot: QtBot, console: MainWindow, start_sender: SenderFactory
) -> None:
    host, port = console.services.receiver.address
    for name in ("gate", "yard"):
        start_sender("--source", "demo", "--name", name, "--station", f"{host}:{port}", "--fps", "10")
    qtbot.waitUntil(lambda: {"gate", "yard"} <= set(console.grid.tiles), timeout=10_000)
    qtbot.waitUntil(lambda: all(t.frames_painted > 0 for t in console.grid.tiles.values()), timeout=10_000)

    # Maximising one tile hides the other, which is then neither decoded nor painted.
    console.grid.toggle_maximise("gate")
    qtbot.wait(300)
    yard = console.grid.tiles["yard"]
    serial_before = yard.serial
    qtbot.wait(1000)
    assert not yard.isVisible()
    assert yard.serial == serial_before, "a hidden tile was fed new pictures"
    console.grid.toggle_maximise("gate")
    qtbot.waitUntil(lambda: yard.serial > serial_before, timeout=5_000)

    # Another tab in front of the grid: nothing is decoded at all.
    console.tabs.addTab(QLabel("another page"), "other")
    console.tabs.setCurrentIndex(1)
    qtbot.wait(300)
    decoded = console.decoder.decoded
    qtbot.wait(1000)
    assert console.decoder.decoded == decoded
    console.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: console.decoder.decoded > decoded, timeout=5_000)


@pytest.mark.parametrize("count", range(1, 21))
def test_grid_shape_fits_every_count(count: int) -> None:
    rows, cols = grid_shape(count)
    assert rows * cols >= count
    assert rows * cols - count < cols, "a whole empty row"


def test_tiles_reorder_by_drop_and_maximise_by_double_click(qtbot: QtBot) -> None:
    grid = CameraGrid()
    qtbot.addWidget(grid)
    grid.resize(800, 450)
    grid.show()
    for name in ("a", "b", "c", "d"):
        grid.tile(name)
    qtbot.wait(50)
    mime = QMimeData()
    mime.setData(MIME_CAMERA, b"d")
    target = grid.tiles["a"].geometry().center()
    drop = QDropEvent(
        QPointF(target), Qt.DropAction.MoveAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    grid.dropEvent(drop)
    assert grid.order == ["d", "a", "b", "c"]
    qtbot.mouseDClick(grid.tiles["b"], Qt.MouseButton.LeftButton)
    assert grid.maximised == "b"
    assert [n for n, t in grid.tiles.items() if t.isVisible()] == ["b"]
    qtbot.mouseDClick(grid.tiles["b"], Qt.MouseButton.LeftButton)
    assert grid.maximised is None and all(t.isVisible() for t in grid.tiles.values())
