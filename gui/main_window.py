"""The console's main window: the live grid, the cameras and alerts docks, and the status bar.

The window is handed its services (receiver, discovery, and optionally the gallery and the
recogniser) and only paints and reacts; the services run on their own threads.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QTabWidget, QWidget

from gui.display_decoder import DisplayDecoder
from gui.live_painter import LivePainter, OverlaySource, RecognitionRates
from gui.services import ConsoleServices
from gui.widgets.alerts_panel import Alert, AlertsPanel
from gui.widgets.camera_grid import CameraGrid
from gui.widgets.cameras_panel import CamerasPanel
from network.frames import CameraEvent

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(
        self,
        services: ConsoleServices,
        overlays: OverlaySource | None = None,
        recognition_rates: RecognitionRates | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.setWindowTitle("FaceStation")
        self.resize(1280, 800)

        self.grid = CameraGrid()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.grid, "Live")
        self.setCentralWidget(self.tabs)

        self.decoder = DisplayDecoder(services.receiver).start()
        self.painter = LivePainter(
            self.grid,
            self.decoder,
            services.receiver.stats,
            services.receiver.drain_events,
            overlays,
            recognition_rates,
            parent=self,
        )

        self.cameras = CamerasPanel(
            services.receiver,
            services.discovered,
            services.key_hex,
            services.key_file,
            services.advertised_address,
        )
        self.cameras_dock = self._dock("Cameras", self.cameras, Qt.DockWidgetArea.RightDockWidgetArea)
        self.alerts = AlertsPanel()
        self.alerts_dock = self._dock("Alerts", self.alerts, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.cameras_dock, self.alerts_dock)
        self.cameras_dock.raise_()
        self.resizeDocks([self.cameras_dock], [420], Qt.Orientation.Horizontal)

        self.totals = QLabel("no cameras yet")
        self.statusBar().addPermanentWidget(self.totals)
        self.painter.totals_changed.connect(self.totals.setText)
        self.painter.camera_event.connect(self._on_camera_event)

        view = self.menuBar().addMenu("&View")
        for dock in (self.cameras_dock, self.alerts_dock):
            view.addAction(dock.toggleViewAction())
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.menuBar().addMenu("&Station").addAction(quit_action)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _on_camera_event(self, event: CameraEvent) -> None:
        if event.state == "offline":
            self.alerts.add(Alert("camera", event.camera, f"offline ({event.reason or 'silent'})", event.at))
        self.statusBar().showMessage(f"camera {event.camera} {event.state}", 5000)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.painter.stop()
        self.decoder.stop()
        super().closeEvent(event)
