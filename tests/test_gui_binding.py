"""The Qt binding itself: the console makes millions of void calls (setPen, fillRect, update) a day.

PySide6 6.12.0 on Python 3.11 (where None is an ordinary refcounted object) drops one reference to
None on every void call, so a console painting 16 tiles at full rate dies with "Fatal Python error:
none_dealloc" within minutes (seen in bench/load.py --console). pyproject.toml keeps that release
out; this test keeps it out for good, whatever the binding's version.
"""

from __future__ import annotations

import gc
import sys

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot


def test_void_calls_leave_none_s_reference_count_alone(qtbot: QtBot) -> None:
    widget = QWidget()
    qtbot.addWidget(widget)
    target = QImage(200, 120, QImage.Format.Format_RGB32)
    picture = QImage(64, 36, QImage.Format.Format_RGB888)
    picture.fill(0x336699)
    rect = QRectF(4, 4, 100, 20)
    painter = QPainter(target)
    calls = 300  # few enough that a leaking binding fails the assertion instead of crashing the run
    try:
        gc.collect()
        before = sys.getrefcount(None)
        for _ in range(calls):
            painter.setPen(QPen(QColor(200, 230, 200), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.fillRect(rect, QColor(0, 0, 0, 160))
            painter.drawRect(rect)
            painter.drawImage(QRectF(0, 0, 200, 120), picture)
            widget.update()
        gc.collect()
        after = sys.getrefcount(None)
    finally:
        painter.end()
    # 1,800 void calls: a binding that drops None's reference on each loses about that many.
    assert after - before > -calls // 10, f"None lost {before - after} references in {6 * calls} void calls"
