"""One camera's tile: the newest picture, face boxes, the name, a badge, and an offline state.

The tile only stores what it is given and paints it when Qt asks; it never decodes, waits or
queries. A hidden tile is never asked to paint, so it costs nothing.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QContextMenuEvent, QDrag, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.overlay import FaceOverlay, FaceState, TileBadge

MIME_CAMERA = "application/x-facestation-camera"

STATE_COLOURS = {
    FaceState.KNOWN: QColor(60, 200, 90),
    FaceState.UNKNOWN: QColor(240, 190, 40),
    FaceState.WATCHLIST: QColor(235, 60, 60),
    FaceState.UNDECIDED: QColor(170, 170, 180),
}


class CameraTile(QWidget):
    """Paints one camera. Signals carry the camera name."""

    double_clicked = Signal(str)
    drag_started = Signal(str)
    menu_requested = Signal(str, QPoint)  # camera, global position (right click)

    def __init__(self, camera: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.camera = camera
        self.image: QImage | None = None
        self.source_size: tuple[int, int] = (0, 0)  # (width, height) of the camera's full picture
        self.overlays: tuple[FaceOverlay, ...] = ()
        self.badge: TileBadge | None = None
        self.online = True
        self.offline_reason = ""
        self.serial = -1  # the receiver serial of the picture shown
        self.frames_painted = 0
        self._press: QPoint | None = None
        self.setMinimumSize(160, 90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setToolTip(camera)
        self.setAccessibleName(f"camera {camera}")

    # --------------------------------------------------------------- state

    def set_picture(self, image: QImage, source_size: tuple[int, int], serial: int) -> None:
        self.image = image
        self.source_size = source_size
        self.serial = serial
        self.update()

    def set_overlays(self, overlays: tuple[FaceOverlay, ...]) -> None:
        if overlays != self.overlays:
            self.overlays = overlays
            self.update()

    def set_badge(self, badge: TileBadge | None) -> None:
        if badge != self.badge:
            self.badge = badge
            self.update()

    def set_online(self, online: bool, reason: str = "") -> None:
        if online != self.online or reason != self.offline_reason:
            self.online = online
            self.offline_reason = reason
            self.update()

    # ------------------------------------------------------------ painting

    def picture_rect(self) -> QRectF:
        """Where the picture lands inside the tile (aspect kept, centred)."""
        w, h = self.width(), self.height()
        if self.image is None or self.image.isNull():
            return QRectF(0, 0, w, h)
        iw, ih = self.image.width(), self.image.height()
        scale = min(w / iw, h / ih)
        dw, dh = iw * scale, ih * scale
        return QRectF((w - dw) / 2, (h - dh) / 2, dw, dh)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(18, 18, 20))
        target = self.picture_rect()
        if self.image is not None and not self.image.isNull():
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.width() < self.image.width())
            p.drawImage(target, self.image)
            self.frames_painted += 1
            self._paint_faces(p, target)
        else:
            p.setPen(QColor(150, 150, 150))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "waiting for frames…")
        self._paint_name(p)
        self._paint_badge(p)
        if not self.online:
            p.fillRect(self.rect(), QColor(0, 0, 0, 150))
            p.setPen(QColor(255, 90, 90))
            font = QFont(p.font())
            font.setBold(True)
            font.setPointSizeF(font.pointSizeF() * 1.4)
            p.setFont(font)
            text = "OFFLINE" + (f"\n{self.offline_reason}" if self.offline_reason else "")
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, text)
        p.end()

    def _paint_faces(self, p: QPainter, target: QRectF) -> None:
        sw, sh = self.source_size
        if not self.overlays or sw <= 0 or sh <= 0:
            return
        sx, sy = target.width() / sw, target.height() / sh
        for face in self.overlays:
            colour = STATE_COLOURS[face.state]
            x, y, w, h = face.box
            rect = QRectF(target.x() + x * sx, target.y() + y * sy, w * sx, h * sy)
            p.setPen(QPen(colour, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(rect)
            text = face.label if face.score is None else f"{face.label} {face.score:.2f}"
            metrics = p.fontMetrics()
            tw, th = metrics.horizontalAdvance(text) + 6, metrics.height() + 2
            ty = rect.top() - th if rect.top() - th >= target.top() else rect.bottom()
            label_rect = QRectF(rect.left(), ty, tw, th)
            p.fillRect(label_rect, colour)
            p.setPen(QColor(0, 0, 0))
            p.drawText(label_rect, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_name(self, p: QPainter) -> None:
        metrics = p.fontMetrics()
        rect = QRectF(4, 4, metrics.horizontalAdvance(self.camera) + 10, metrics.height() + 4)
        p.fillRect(rect, QColor(0, 0, 0, 160))
        p.setPen(QColor(235, 235, 235))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.camera)

    def _paint_badge(self, p: QPainter) -> None:
        if self.badge is None:
            return
        b = self.badge
        parts = [f"{b.fps:.0f} fps"]
        if b.latency_ms is not None:
            parts.append(f"{b.latency_ms:.0f} ms")
        parts.append(f"loss {b.loss * 100:.0f}%")
        if b.recognition_fps is not None:
            parts.append(f"rec {b.recognition_fps:.1f}/s")
        text = " · ".join(parts)
        metrics = p.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 10, metrics.height() + 4
        rect = QRectF(self.width() - w - 4, 4, w, h)
        p.fillRect(rect, QColor(0, 0, 0, 160))
        p.setPen(QColor(255, 120, 120) if b.loss > 0.05 else QColor(200, 230, 200))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    # -------------------------------------------------------------- mouse

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        self.menu_requested.emit(self.camera, event.globalPos())

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.double_clicked.emit(self.camera)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._press is None or not event.buttons() & Qt.MouseButton.LeftButton:
            return
        if (event.position().toPoint() - self._press).manhattanLength() < 12:
            return
        self._press = None
        self.drag_started.emit(self.camera)
        drag = QDrag(self)
        mime = QMimeData()
        mime.setData(MIME_CAMERA, self.camera.encode("utf-8"))
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.MoveAction)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._press = None
