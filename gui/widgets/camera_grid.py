"""The camera grid: lays tiles out for any count, maximises one on double-click, reorders by drag."""

from __future__ import annotations

import math

from PySide6.QtCore import QPoint, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDragMoveEvent, QDropEvent, QPalette, QResizeEvent
from PySide6.QtWidgets import QGridLayout, QWidget

from gui.widgets.camera_tile import MIME_CAMERA, CameraTile


def grid_shape(count: int, aspect: float = 16 / 9) -> tuple[int, int]:
    """(rows, columns) for ``count`` tiles in a widget of the given width/height ratio."""
    if count <= 0:
        return 0, 0
    best: tuple[float, int, int] | None = None
    for cols in range(1, count + 1):
        rows = math.ceil(count / cols)
        # tile aspect if the widget is split this way; cameras are ~16:9 or 4:3
        tile_aspect = aspect * rows / cols
        waste = abs(math.log(tile_aspect / (4 / 3))) + 0.05 * (rows * cols - count)
        if best is None or waste < best[0]:
            best = (waste, rows, cols)
    assert best is not None
    return best[1], best[2]


class CameraGrid(QWidget):
    """Holds one :class:`CameraTile` per camera, in the operator's order."""

    order_changed = Signal(list)
    tile_menu_requested = Signal(str, QPoint)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles: dict[str, CameraTile] = {}
        self.order: list[str] = []
        self.maximised: str | None = None
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.setSpacing(3)
        self.setAcceptDrops(True)
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(10, 10, 12))
        self.setPalette(palette)

    def tile(self, camera: str) -> CameraTile:
        """The camera's tile, created (and laid out) on first use."""
        tile = self.tiles.get(camera)
        if tile is None:
            tile = CameraTile(camera, self)
            tile.double_clicked.connect(self.toggle_maximise)
            tile.menu_requested.connect(self.tile_menu_requested)
            self.tiles[camera] = tile
            self.order.append(camera)
            self.relayout()
        return tile

    def remove(self, camera: str) -> None:
        tile = self.tiles.pop(camera, None)
        if tile is None:
            return
        self.order.remove(camera)
        if self.maximised == camera:
            self.maximised = None
        self._layout.removeWidget(tile)
        tile.deleteLater()
        self.relayout()

    def toggle_maximise(self, camera: str) -> None:
        self.maximised = None if self.maximised == camera else camera
        self.relayout()

    def move_tile(self, camera: str, onto: str | None) -> None:
        """Give ``camera`` the place of the tile ``onto`` (the others shift), or the last place."""
        if camera not in self.tiles or camera == onto:
            return
        index = self.order.index(onto) if onto in self.order else len(self.order) - 1
        self.order.remove(camera)
        self.order.insert(index, camera)
        self.relayout()
        self.order_changed.emit(list(self.order))

    def set_order(self, order: list[str]) -> None:
        known = [c for c in order if c in self.tiles]
        self.order = known + [c for c in self.order if c not in known]
        self.relayout()

    def relayout(self) -> None:
        for tile in self.tiles.values():
            self._layout.removeWidget(tile)
        if self.maximised is not None:
            for name, tile in self.tiles.items():
                tile.setVisible(name == self.maximised)
            self._layout.addWidget(self.tiles[self.maximised], 0, 0)
            return
        aspect = self.width() / self.height() if self.height() > 0 else 16 / 9
        rows, cols = grid_shape(len(self.order), aspect)
        for i, name in enumerate(self.order):
            tile = self.tiles[name]
            self._layout.addWidget(tile, i // cols, i % cols)
            tile.setVisible(True)
        for r in range(rows + 1):
            self._layout.setRowStretch(r, 1 if r < rows else 0)
        for c in range(cols + 1):
            self._layout.setColumnStretch(c, 1 if c < cols else 0)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.maximised is None and self.order:
            old, new = event.oldSize(), event.size()
            if old.height() <= 0 or old.width() <= 0 or new.height() <= 0:
                self.relayout()
                return
            n = len(self.order)
            if grid_shape(n, old.width() / old.height()) != grid_shape(n, new.width() / new.height()):
                self.relayout()

    def visible_tiles(self) -> list[CameraTile]:
        """Tiles the operator can see now: a hidden or minimised tile is not painted or decoded."""
        window = self.window()
        if not self.isVisible() or window.isMinimized():
            return []
        return [t for t in self.tiles.values() if t.isVisible() and not t.visibleRegion().isEmpty()]

    def tile_at(self, x: int, y: int) -> CameraTile | None:
        for tile in self.tiles.values():
            if tile.isVisible() and tile.geometry().contains(x, y):
                return tile
        return None

    # ------------------------------------------------------------ drag & drop

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasFormat(MIME_CAMERA):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasFormat(MIME_CAMERA):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if not event.mimeData().hasFormat(MIME_CAMERA):
            return
        camera = bytes(event.mimeData().data(MIME_CAMERA).data()).decode("utf-8", "replace")
        pos = event.position().toPoint()
        target = self.tile_at(pos.x(), pos.y())
        self.move_tile(camera, target.camera if target is not None else None)
        event.acceptProposedAction()
