"""The console's main window: the live grid, the cameras and alerts docks, and the status bar.

The window is handed its services (receiver, discovery, and optionally the gallery and the
recogniser) and only paints and reacts; the services run on their own threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QMouseEvent
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
    QWidget,
)

from gui.display_decoder import DisplayDecoder
from gui.investigation import (
    VIDEO_FILTER,
    ScanOptionsDialog,
    choose_roster,
    history_button,
    import_roster_dialog,
    scan_dialog,
)
from gui.jobs import Jobs
from gui.live_painter import LivePainter, OverlaySource, RecognitionRates
from gui.recognition_feed import RecognitionFeed
from gui.recorded import RecordedSightings
from gui.services import ConsoleServices
from gui.widgets.alarm_dialog import AlarmDialog
from gui.widgets.alerts_panel import AlarmQueue, Notice
from gui.widgets.camera_grid import CameraGrid
from gui.widgets.cameras_panel import CamerasPanel
from gui.widgets.enrol_dialog import EnrolDialog
from gui.widgets.gallery_view import GalleryView, read_image_file
from gui.widgets.history_view import HistoryFilter, HistoryView
from gui.widgets.relabel_dialog import Offer, RelabelDialog, load_offer
from gui.widgets.settings_dialog import SettingsDialog
from gui.widgets.task_dialog import TaskDialog
from gui.widgets.unknown_view import UnknownView
from gui.widgets.watchlist_dialog import WatchlistDialog
from network.frames import CameraEvent
from station import settings as table
from station.recent_frames import RecentFrame, RecentFrames
from station.relabel_offer import find_candidates
from station.runtime import RecognitionSettings
from storage.alarm_records import Alarm
from storage.locations import describe
from vision.embedders import DEFAULT_MODEL

log = logging.getLogger(__name__)


class _ClickableLabel(QLabel):
    clicked = Signal()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.clicked.emit()
        super().mousePressEvent(event)


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

        recent = services.recent_frames
        if recent is None:  # the last seconds of each camera, to step back from a frozen frame
            recent = RecentFrames()
            services.receiver.add_listener(recent)
            if services.recogniser is not None:
                services.recogniser.service.add_listener(recent.note_result)
        self.recent: RecentFrames = recent
        self.feed = RecognitionFeed(services.recogniser) if services.recogniser is not None else None
        if self.feed is not None:
            overlays = overlays or self.feed.overlays
            recognition_rates = recognition_rates or self.feed.rates
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

        # The cameras get a page of their own: the table needs the width (state, source, address, rates)
        # and is visited to add, pair or diagnose a camera, while each tile and the status bar already
        # show whether a camera is live. Only the alerts stay docked beside every page.
        self.cameras = CamerasPanel(
            services.receiver,
            services.discovered,
            services.key_hex,
            services.key_file,
            services.advertised_address,
        )
        self.tabs.addTab(self.cameras, "Cameras")
        self.cameras.show_requested.connect(self.show_camera)
        self.jobs = Jobs(self)
        self.alerts = AlarmQueue(services.gallery, self.jobs, operator=services.operator)
        self.alerts.open_requested.connect(self.open_alarm)
        self.alerts_dock = self._dock("Alarms", self.alerts, Qt.DockWidgetArea.RightDockWidgetArea)
        self.alerts.focus_requested.connect(self._show_alarms)
        self.resizeDocks([self.alerts_dock], [470], Qt.Orientation.Horizontal)
        self.alarm_dialog: AlarmDialog | None = None
        self.relabel_dialog: RelabelDialog | None = None
        self.sightings = RecordedSightings(services.events)  # which track became which sighting (the bus)
        self._opening: tuple[str, str, float] | None = None  # (camera, track) whose sighting is awaited, until

        self.storage_warning = QLabel("")
        self.storage_warning.setStyleSheet("QLabel { color: #e04040; font-weight: bold; }")
        self.storage_warning.hide()
        self.statusBar().addWidget(self.storage_warning)

        self.totals = _ClickableLabel("no cameras yet")
        self.totals.setToolTip("Click for the Cameras page")
        self.totals.setCursor(Qt.CursorShape.PointingHandCursor)
        self.totals.clicked.connect(lambda: self.tabs.setCurrentWidget(self.cameras))
        self.statusBar().addPermanentWidget(self.totals)
        self.painter.totals_changed.connect(self.totals.setText)
        self.painter.camera_event.connect(self._on_camera_event)
        self.painter.stats_timer.timeout.connect(self._poll)

        self.enrol_dialog: EnrolDialog | None = None
        self.grid.tile_menu_requested.connect(self._tile_menu)
        faces_menu = self.menuBar().addMenu("&Faces")
        enrol_file = QAction("&Enrol from an image file…", self)
        enrol_file.setShortcut(QKeySequence("Ctrl+E"))
        enrol_file.triggered.connect(self._choose_enrol_file)
        faces_menu.addAction(enrol_file)
        faces_menu.setEnabled(services.gallery is not None and services.faces is not None)

        self.gallery_view: GalleryView | None = None
        self.history_view: HistoryView | None = None
        self.unknown_view: UnknownView | None = None
        if services.gallery is not None:
            g = services.gallery
            self.gallery_view = GalleryView(g, self.jobs, services.faces, companions=services.companions)
            self.history_view = HistoryView(g, self.jobs, services.faces)
            self.unknown_view = UnknownView(g, self.jobs, services.faces)
            self.tabs.addTab(self.gallery_view, "Gallery")
            self.tabs.addTab(self.history_view, "History")
            self.tabs.addTab(self.unknown_view, "Unknown faces")
            for page in (self.gallery_view, self.history_view, self.unknown_view):
                page.gallery_changed.connect(self._gallery_changed)
            self.gallery_view.sighting_requested.connect(self.show_sighting)
            self.gallery_view.person_enrolled.connect(self.offer_relabel)
            self.unknown_view.person_named.connect(self.offer_relabel)
            self.tabs.currentChanged.connect(self._tab_shown)
            roster = QAction("&Import a roster…", self)
            roster.setToolTip("A folder with one folder of photos per person, or a CSV of name,path")
            roster.triggered.connect(self._choose_roster)
            faces_menu.addAction(roster)
            settings = QAction("&Settings…", self)
            settings.setShortcut(QKeySequence("Ctrl+,"))
            settings.triggered.connect(self.open_settings)
            faces_menu.addAction(settings)
            faces_menu.setEnabled(True)
            footage = self.menuBar().addMenu("F&ootage")
            scan = QAction("&Scan a video file…", self)
            scan.setToolTip("Recorded footage through the recognition engine; its sightings go into History")
            scan.triggered.connect(self._choose_scan)
            footage.addAction(scan)
            footage.setEnabled(services.faces is not None)
            lists = QAction("&Watchlists…", self)
            lists.setToolTip("Named lists with their own strictness, cameras, priority, sound and actions")
            lists.triggered.connect(self.open_watchlists)
            faces_menu.addAction(lists)

        view = self.menuBar().addMenu("&View")
        view.addAction(self.alerts_dock.toggleViewAction())
        cameras_page = QAction("&Cameras", self)
        cameras_page.setShortcut(QKeySequence("Ctrl+K"))
        cameras_page.triggered.connect(lambda: self.tabs.setCurrentWidget(self.cameras))
        view.addAction(cameras_page)
        station_menu = self.menuBar().addMenu("&Station")
        where = QAction("&Where files live…", self)
        where.triggered.connect(self.show_paths)
        station_menu.addAction(where)
        backup = QAction("&Back up the gallery…", self)
        backup.triggered.connect(self._choose_backup)
        backup.setEnabled(services.gallery is not None)
        station_menu.addAction(backup)
        station_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        station_menu.addAction(quit_action)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def show_camera(self, camera: str) -> None:
        """The Live page with ``camera``'s tile maximised (from the Cameras page)."""
        self.tabs.setCurrentWidget(self.grid)
        if camera in self.grid.tiles and self.grid.maximised != camera:
            self.grid.toggle_maximise(camera)

    # ------------------------------------------------------------- enrol

    def model(self) -> str:
        """The embedding model the station recognises with (the settings' defaults depend on it)."""
        if self.services.recogniser is not None:
            return self.services.recogniser.model
        if self.services.faces is not None:
            return self.services.faces.model
        return DEFAULT_MODEL

    def threshold(self) -> float | None:
        """The running recogniser's threshold; None without one (the enrol dialog then reads the stored
        setting in its own background job, never here on the GUI thread)."""
        recogniser = self.services.recogniser
        return recogniser.settings.threshold if recogniser is not None else None

    def _tile_menu(self, camera: str, at: QPoint) -> None:
        menu = QMenu(self)
        freeze = menu.addAction("Freeze and enrol a face…")
        freeze.setEnabled(self.services.gallery is not None and self.services.faces is not None)
        freeze.triggered.connect(lambda: self.freeze_and_enrol(camera))
        size = menu.addAction("Restore grid" if self.grid.maximised == camera else "Maximise")
        size.triggered.connect(lambda: self.grid.toggle_maximise(camera))
        menu.popup(at)

    def freeze_and_enrol(self, camera: str) -> None:
        """Enrol from the newest frame of ``camera``, with its last seconds of frames to step back through."""
        frames = self.recent.frames(camera)
        if not frames:
            frame = self.services.receiver.latest(camera)
            if frame is None:
                QMessageBox.information(self, "Enrol", f"No picture from {camera} yet.")
                return
            frames = [RecentFrame(frame.camera, frame.frame_id, frame.serial, frame.captured_at, frame.jpeg)]
        newest = frames[-1]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(newest.captured_at))
        self.jobs.run(
            newest.image,
            lambda image: self.open_enrol(image, f"camera {camera} at {when}", frames),
            lambda exc: QMessageBox.warning(self, "Enrol", f"The frame from {camera} cannot be shown: {exc}"),
        )

    def _choose_enrol_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Enrol from an image", "", "Images (*.jpg *.jpeg *.png *.bmp *.webp);;All files (*)"
        )
        if path:
            self.enrol_from_file(Path(path))

    def enrol_from_file(self, path: Path) -> None:
        self.jobs.run(
            lambda: read_image_file(path),
            lambda image: self.open_enrol(image, str(path)),
            lambda exc: QMessageBox.warning(self, "Enrol", str(exc)),
        )

    def open_enrol(self, image: np.ndarray, source: str, frames: Sequence[RecentFrame] = ()) -> EnrolDialog | None:
        gallery, faces = self.services.gallery, self.services.faces
        if gallery is None or faces is None:
            return None
        dialog = EnrolDialog(
            image,
            gallery,
            self.jobs,
            faces,
            threshold=self.threshold(),
            source=source,
            frames=frames,
            recent=self.recent,
            companions=self.services.companions,
            parent=self,
        )
        dialog.enrolled.connect(lambda ids: self.statusBar().showMessage(f"enrolled {len(ids)} face(s)", 5000))
        dialog.enrolled.connect(self._enrolled_from_dialog)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.enrol_dialog = dialog
        dialog.open()
        return dialog

    def _enrolled_from_dialog(self, sample_ids: list[int]) -> None:
        gallery = self.services.gallery
        if gallery is None or not sample_ids:
            return

        def offer(pids: set[int]) -> None:
            for pid in sorted(pids):
                self.offer_relabel(pid, "just enrolled")

        self.jobs.run(lambda: {p for p in map(gallery.person_of_sample, sample_ids) if p is not None}, offer)

    # ------------------------------------------- a history that corrects itself

    def recognition_settings(self) -> RecognitionSettings | None:
        """The running recogniser's decision (None without one: the stored settings are read in a job)."""
        recogniser = self.services.recogniser
        return recogniser.settings if recogniser is not None else None

    def offer_relabel(self, person_id: int, why: str) -> None:
        """Search the stored sightings for past unknown ones that now match the person (in a job) and, if any
        do, offer them (gui/widgets/relabel_dialog.py)."""
        gallery = self.services.gallery
        if gallery is None:
            return
        model, settings = self.model(), self.recognition_settings()

        def find() -> Offer | None:
            decision = settings or RecognitionSettings.from_gallery(gallery, model)
            found = find_candidates(gallery, person_id, model, decision)
            return load_offer(gallery, person_id, why, found) if found else None

        self.jobs.run(find, self._offer_found, lambda exc: log.warning("no relabelling offer: %s", exc))

    def _offer_found(self, offer: Offer | None) -> None:
        gallery = self.services.gallery
        if offer is None or gallery is None:
            return
        dialog = RelabelDialog(gallery, self.jobs, offer, self)
        dialog.relabelled.connect(lambda _b: self._gallery_changed())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.relabel_dialog = dialog
        dialog.open()

    # ------------------------------------------------ roster, footage

    def _choose_roster(self) -> None:
        path = choose_roster(self)
        if path is not None:
            self.import_roster(path)

    def import_roster(self, path: Path) -> TaskDialog | None:
        """Enrol a roster folder or CSV in the background, with a progress bar and a summary of refusals."""
        gallery, faces = self.services.gallery, self.services.faces
        if gallery is None or faces is None:
            return None
        dialog = import_roster_dialog(path, gallery, faces, self.jobs, self, companions=self.services.companions)
        if dialog is not None:
            dialog.finished_with.connect(lambda _r: self._gallery_changed())
        return dialog

    def _choose_scan(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Scan a video file", "", VIDEO_FILTER)
        if not path:
            return
        options = ScanOptionsDialog(Path(path), self)
        if options.exec() == QDialog.DialogCode.Accepted:
            camera, start = options.values()
            self.scan(Path(path), camera, start)

    def scan(self, path: Path, camera: str, start: float) -> TaskDialog | None:
        """Scan recorded footage in the background; when done, History can show its sightings."""
        gallery, faces = self.services.gallery, self.services.faces
        if gallery is None or faces is None:
            return None
        recogniser = self.services.recogniser
        model = recogniser.model if recogniser is not None else faces.model
        settings = recogniser.settings if recogniser is not None else None
        if settings is None:
            settings = RecognitionSettings(threshold=table.calibrated_threshold(model))
        dialog = scan_dialog(path, camera, start, gallery, faces, settings, self.jobs, self)
        history_button(dialog, lambda: self._show_camera_history(camera or path.stem))
        return dialog

    def _show_camera_history(self, camera: str) -> None:
        if self.history_view is None:
            return
        self.tabs.setCurrentWidget(self.history_view)
        self.history_view.set_filter(HistoryFilter(camera=camera))

    # ----------------------------------------------------- files, backup

    def paths(self) -> dict[str, str]:
        gallery = self.services.gallery
        return describe(gallery.path if gallery is not None else None, self.services.key_file)

    def show_paths(self) -> None:
        text = "\n".join(f"{k}: {v}" for k, v in self.paths().items())
        QMessageBox.information(self, "Where FaceStation keeps its files", text)

    def _choose_backup(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path, _ = QFileDialog.getSaveFileName(self, "Back up the gallery", f"gallery-{stamp}.db", "SQLite (*.db)")
        if path:
            self.backup_to(Path(path))

    def backup_to(self, target: Path) -> None:
        """Copy the live gallery (SQLite online backup) in a background job; the station keeps running."""
        gallery = self.services.gallery
        if gallery is None:
            return
        self.statusBar().showMessage(f"backing up to {target}…")
        self.jobs.run(
            lambda: gallery.backup(target),
            lambda done: self.statusBar().showMessage(f"gallery backed up to {done}", 10_000),
            lambda exc: QMessageBox.warning(self, "Backup", f"The backup failed: {exc}"),
        )

    # ---------------------------------------------------- gallery views

    def _tab_shown(self, index: int) -> None:
        widget = self.tabs.widget(index)
        refresh = getattr(widget, "refresh", None)
        if widget is not self.grid and callable(refresh):
            refresh()

    def _gallery_changed(self) -> None:
        # The other pages reload when shown; the recogniser picks the change up within 0.5 s.
        self.statusBar().showMessage("gallery updated", 3000)

    def open_settings(self) -> SettingsDialog | None:
        gallery = self.services.gallery
        if gallery is None:
            return None
        dialog = SettingsDialog(
            gallery,
            self.jobs,
            model=self.model(),
            key_file=self.services.key_file,
            key_hex=self.services.key_hex,
            parent=self,
        )
        dialog.settings_changed.connect(self.apply_settings)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def apply_settings(self, values: dict[str, object]) -> None:
        """Saved settings take effect at once: the matcher, the face size, the rate cap, alerts."""
        recogniser = self.services.recogniser
        try:
            checked = table.SettingValues.checked(values)
            if recogniser is not None:
                recogniser.apply(RecognitionSettings.from_values(checked, recogniser.settings))
        except ValueError as exc:
            QMessageBox.warning(self, "Settings", f"Not applied: {exc}")
            return
        self.statusBar().showMessage("settings applied", 5000)
        self.apply_retention()

    def apply_retention(self) -> None:
        """Run the station's retention job now, in a background job (after a settings change)."""
        retention = self.services.retention
        if retention is None:
            return
        self.jobs.run(retention, None, lambda exc: log.warning("retention failed: %s", exc))

    def _poll(self) -> None:
        """The window's timer: the alarm queue, the sightings recorded since, the storage warning."""
        self.alerts.poll()
        self.sightings.drain()
        if self._opening is not None:
            self._try_open()
        storage = self.services.storage
        warning = storage().warning() if storage is not None else ""
        if warning != self.storage_warning.text():
            self.storage_warning.setText(warning)
            self.storage_warning.setToolTip(warning)
        self.storage_warning.setVisible(bool(warning))

    def _show_alarms(self) -> None:
        self.alerts_dock.show()
        self.alerts_dock.raise_()

    def live_crop(self, alarm: Alarm) -> np.ndarray | None:
        """The alarm's face cut from the frame it was seen in, while the console still keeps it (in a job)."""
        if alarm.frame_id is None or alarm.box is None:
            return None
        frame = self.recent.get(alarm.camera, alarm.frame_id)
        return None if frame is None else frame.crop(alarm.box)

    def open_alarm(self, alarm: Alarm) -> AlarmDialog | None:
        """The alarm's face, evidence snapshot, enrolled photo and score side by side, and its workflow."""
        gallery = self.services.gallery
        if gallery is None:
            return None
        dialog = AlarmDialog(gallery, self.jobs, self.alerts, alarm, live_crop=self.live_crop, parent=self)
        dialog.history_requested.connect(self.open_alarm_sighting)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.alarm_dialog = dialog
        dialog.open()
        return dialog

    def open_alarm_sighting(self, alarm: Alarm) -> None:
        """Open the alarm's sighting in History: at once when it is recorded, else as soon as the station says
        its track was recorded (the event bus), saying so in the status bar meanwhile (up to a minute)."""
        if alarm.sighting_id is not None:
            self.show_sighting(alarm.sighting_id)
            return
        self.open_track(alarm.camera, alarm.track)

    def open_track(self, camera: str, track: str) -> None:
        if self.history_view is None or not track:
            return
        self._opening = (camera, track, time.monotonic() + 60.0)
        self._try_open()

    def _try_open(self) -> None:
        if self._opening is None:
            return
        camera, track, deadline = self._opening
        sighting = self.sightings.of(camera, track)
        if sighting is not None:
            self._opening = None
            self.show_sighting(sighting)
        elif time.monotonic() > deadline:
            self._opening = None
            self.statusBar().showMessage(f"No sighting was recorded for {camera} track {track}.", 10_000)
        else:
            self.statusBar().showMessage(f"{camera}: that face is still in view; it opens once it is recorded…", 3000)

    def show_sighting(self, sighting_id: int) -> None:
        """The History page showing one sighting and its detail."""
        if self.history_view is None:
            return
        self.tabs.blockSignals(True)  # no reload of the page's filter, which could land after the sighting
        self.tabs.setCurrentWidget(self.history_view)
        self.tabs.blockSignals(False)
        self.history_view.show_sighting(sighting_id)

    def _on_camera_event(self, event: CameraEvent) -> None:
        text = f"offline ({event.reason or 'silent'})" if event.state == "offline" else str(event.state)
        self.alerts.add_notice(Notice(event.camera, text, event.at))
        self.statusBar().showMessage(f"camera {event.camera} {event.state}", 5000)

    def open_watchlists(self) -> WatchlistDialog | None:
        """Set up the lists: strictness in words, cameras, priority, sound, actions."""
        gallery = self.services.gallery
        if gallery is None:
            return None
        dialog = WatchlistDialog(gallery, self.jobs, model=self.model(), threshold=self.threshold(), parent=self)
        dialog.lists_changed.connect(self._gallery_changed)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def closeEvent(self, event: QCloseEvent) -> None:
        self.painter.stop()
        self.decoder.stop()
        self.sightings.close()
        super().closeEvent(event)
