"""A picture on which the operator draws face boxes with the mouse, or clicks a detected face.

Boxes are kept in the picture's own pixel coordinates, whatever the widget's size.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

Box = tuple[float, float, float, float]
MIN_BOX_PX = 12.0  # in picture pixels; a smaller drag is a click


class BoxEditor(QWidget):
    """Shows a picture, the detector's faces (dashed) and the chosen boxes (numbered)."""

    box_drawn = Signal(object)  # Box, in picture coordinates
    detection_clicked = Signal(int)  # index into ``detections``
    box_selected = Signal(int)  # index into ``boxes``

    def __init__(self, image: QImage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image = image
        self.detections: list[Box] = []
        self.boxes: list[Box] = []
        self.labels: list[str] = []  # the number drawn on each box (default: its position, from 1)
        self.selected = -1
        self._drag_from: QPointF | None = None
        self._drag_to: QPointF | None = None
        self.setMouseTracking(False)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)

    # ---------------------------------------------------------- geometry

    def picture_rect(self) -> QRectF:
        iw, ih = max(1, self.image.width()), max(1, self.image.height())
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def to_picture(self, p: QPointF) -> QPointF:
        r = self.picture_rect()
        sx = self.image.width() / r.width()
        sy = self.image.height() / r.height()
        x = min(max((p.x() - r.x()) * sx, 0.0), float(self.image.width()))
        y = min(max((p.y() - r.y()) * sy, 0.0), float(self.image.height()))
        return QPointF(x, y)

    def to_widget(self, box: Box) -> QRectF:
        r = self.picture_rect()
        sx = r.width() / max(1, self.image.width())
        sy = r.height() / max(1, self.image.height())
        x, y, w, h = box
        return QRectF(r.x() + x * sx, r.y() + y * sy, w * sx, h * sy)

    # ------------------------------------------------------------- state

    def set_image(self, image: QImage, boxes: list[Box], selected: int = -1) -> None:
        """Show another picture (another frame of the same camera) with its own chosen boxes."""
        self.image = image
        self.boxes = list(boxes)
        self.detections = []
        self.selected = selected
        self.update()

    def set_detections(self, boxes: list[Box]) -> None:
        self.detections = list(boxes)
        self.update()

    def add_box(self, box: Box) -> int:
        self.boxes.append(box)
        self.selected = len(self.boxes) - 1
        self.update()
        return self.selected

    def remove_box(self, index: int) -> None:
        if 0 <= index < len(self.boxes):
            del self.boxes[index]
            self.selected = min(self.selected, len(self.boxes) - 1)
            self.update()

    def select(self, index: int) -> None:
        self.selected = index
        self.update()

    # ------------------------------------------------------------ mouse

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag_from = self._drag_to = event.position()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_from is not None:
            self._drag_to = event.position()
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._drag_from is None:
            return
        a, b = self.to_picture(self._drag_from), self.to_picture(event.position())
        self._drag_from = self._drag_to = None
        x, y = min(a.x(), b.x()), min(a.y(), b.y())
        w, h = abs(a.x() - b.x()), abs(a.y() - b.y())
        if w >= MIN_BOX_PX and h >= MIN_BOX_PX:
            self.box_drawn.emit((x, y, w, h))
        else:
            self._click(b)
        self.update()

    def _click(self, at: QPointF) -> None:
        """A click picks a chosen box, else a detected face under the pointer."""
        for i, (x, y, w, h) in enumerate(self.boxes):
            if x <= at.x() <= x + w and y <= at.y() <= y + h:
                self.select(i)
                self.box_selected.emit(i)
                return
        for i, (x, y, w, h) in enumerate(self.detections):
            if x <= at.x() <= x + w and y <= at.y() <= y + h:
                self.detection_clicked.emit(i)
                return

    # ---------------------------------------------------------- painting

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(25, 25, 28))
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(self.picture_rect(), self.image)
        dashed = QPen(QColor(120, 200, 255), 1.5, Qt.PenStyle.DashLine)
        for box in self.detections:
            p.setPen(dashed)
            p.drawRect(self.to_widget(box))
        for i, box in enumerate(self.boxes):
            rect = self.to_widget(box)
            colour = QColor(255, 210, 40) if i == self.selected else QColor(60, 220, 90)
            p.setPen(QPen(colour, 2.5))
            p.drawRect(rect)
            label = QRectF(rect.left(), rect.top() - 18, 22, 18)
            p.fillRect(label, colour)
            p.setPen(QColor(0, 0, 0))
            p.drawText(label, Qt.AlignmentFlag.AlignCenter, self.labels[i] if i < len(self.labels) else str(i + 1))
        if self._drag_from is not None and self._drag_to is not None:
            p.setPen(QPen(QColor(255, 255, 255), 1.5, Qt.PenStyle.DotLine))
            p.drawRect(QRectF(self._drag_from, self._drag_to).normalized())
        p.end()
