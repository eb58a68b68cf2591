"""Feeds the camera grid on timers: pictures at display rate, figures and states once a second.

Everything here runs on the GUI thread and only takes what background threads left in their
slots (the display decoder's pictures, the recogniser's latest results, the receiver's stats),
so a tick costs a few array-to-QImage wraps and some paints, never a wait.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from gui.display_decoder import DisplayDecoder
from gui.overlay import FaceOverlay, TileBadge
from gui.widgets.camera_grid import CameraGrid
from network.frames import CameraEvent, CameraStats

OverlaySource = Callable[[], dict[str, tuple[FaceOverlay, ...]]]
RecognitionRates = Callable[[], dict[str, float]]


def qimage_from_bgr(image: np.ndarray) -> QImage:
    """Wrap a BGR array without copying; the caller keeps the array alive as long as the QImage."""
    h, w = image.shape[:2]
    if not image.flags["C_CONTIGUOUS"]:
        image = np.ascontiguousarray(image)
    return QImage(image.data, w, h, image.strides[0], QImage.Format.Format_BGR888)


class LivePainter(QObject):
    """Moves pictures, boxes, badges and online states from the services to the tiles."""

    camera_event = Signal(object)  # CameraEvent, for the alert list and the log
    totals_changed = Signal(str)

    def __init__(
        self,
        grid: CameraGrid,
        decoder: DisplayDecoder,
        stats: Callable[[], list[CameraStats]],
        events: Callable[[], list[CameraEvent]],
        overlays: OverlaySource | None = None,
        recognition_rates: RecognitionRates | None = None,
        *,
        display_fps: float = 25.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.grid = grid
        self.decoder = decoder
        self._stats = stats
        self._events = events
        self._overlays = overlays
        self._rates = recognition_rates
        self._arrays: dict[str, np.ndarray] = {}  # keeps each shown picture's buffer alive
        self.ticks = 0
        self.frame_timer = QTimer(self)
        self.frame_timer.timeout.connect(self.paint_tick)
        self.frame_timer.start(max(1, round(1000 / display_fps)))
        self.stats_timer = QTimer(self)
        self.stats_timer.timeout.connect(self.stats_tick)
        self.stats_timer.start(1000)

    def stop(self) -> None:
        self.frame_timer.stop()
        self.stats_timer.stop()

    def paint_tick(self) -> None:
        self.ticks += 1
        visible = self.grid.visible_tiles()
        self.decoder.want({t.camera: max(1, t.width()) for t in visible})
        for camera, shown in self.decoder.take().items():
            tile = self.grid.tiles.get(camera)
            if tile is None or shown.serial <= tile.serial:
                continue
            self._arrays[camera] = shown.image
            tile.set_picture(qimage_from_bgr(shown.image), shown.source_size, shown.serial)
        if self._overlays is not None:
            latest = self._overlays()
            for tile in visible:
                tile.set_overlays(latest.get(tile.camera, ()))

    def stats_tick(self) -> None:
        stats = self._stats()
        rates = self._rates() if self._rates is not None else {}
        for st in stats:
            tile = self.grid.tile(st.camera)  # a camera's first stats create its tile
            tile.set_badge(TileBadge(st.fps, st.latency_ms_p50, st.loss, rates.get(st.camera)))
            tile.set_online(st.online, "" if st.online else (tile.offline_reason or "no frames"))
        for ev in self._events():
            tile = self.grid.tile(ev.camera)
            tile.set_online(ev.state == "online", ev.reason)
            self.camera_event.emit(ev)
        online = sum(1 for s in stats if s.online)
        fps = sum(s.fps for s in stats if s.online)
        kbps = sum(s.kbps for s in stats if s.online)
        self.totals_changed.emit(
            f"{online}/{len(stats)} cameras online · {fps:.0f} frames/s · {kbps / 1000:.1f} Mbit/s"
            + (f" · recognising {sum(rates.values()):.1f}/s" if rates else "")
        )
