"""Thumbnails for the gallery-side views, and the job runner those views share.

JPEG decoding and scaling run on a worker (:func:`decode_thumbnail`); only the cheap wrap of the
decoded pixels into a QPixmap happens on the GUI thread (:func:`to_pixmap`). :class:`ViewJobs`
runs a view's gallery and vision calls through :class:`gui.jobs.Jobs`, counts what is in flight,
and turns a failure into a one-line warning box, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import QMessageBox, QWidget
from shiboken6 import Shiboken

from gui.jobs import Jobs

THUMB_PX = 64


def decode_thumbnail(jpeg: bytes | None, size: int = THUMB_PX) -> np.ndarray | None:
    """JPEG bytes to a BGR image whose longer side is at most ``size`` (None for no or broken bytes).

    Runs on a worker: decoding a hundred crops takes tens of ms, too long for the GUI thread.
    """
    if not jpeg:
        return None
    image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    h, w = image.shape[:2]
    scale = size / max(h, w)
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def snapshot_with_box(jpeg: bytes | None, box: tuple[float, float, float, float], width: int) -> np.ndarray | None:
    """An evidence snapshot decoded, scaled to ``width`` at most, with the face's box drawn (worker side)."""
    image = decode_thumbnail(jpeg, 10_000)
    if image is None:
        return None
    h, w = image.shape[:2]
    scale = min(1.0, width / float(w))
    if scale < 1.0:
        image = cv2.resize(image, (width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    x, y, bw, bh = (v * scale for v in box)
    thick = max(2, round(image.shape[1] / 320))
    cv2.rectangle(image, (round(x), round(y)), (round(x + bw), round(y + bh)), (0, 200, 255), thick)
    return image


def to_pixmap(image: np.ndarray | None, size: int = THUMB_PX) -> QPixmap:
    """A decoded BGR image as a QPixmap (GUI thread); a grey placeholder of ``size`` when there is none."""
    if image is None:
        blank = QPixmap(size, size)
        blank.fill(QColor(70, 70, 70))
        return blank
    h, w = image.shape[:2]
    data = np.ascontiguousarray(image)
    qimage = QImage(data.data, w, h, data.strides[0], QImage.Format.Format_BGR888).copy()
    return QPixmap.fromImage(qimage)


def scaled(pixmap: QPixmap, size: int) -> QPixmap:
    return pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ViewJobs(QObject):
    """Runs a view's work off the GUI thread; a failure shows ``title``: one line in a warning box.

    ``busy`` counts the jobs in flight (tests wait for it to reach 0); ``last_error`` keeps the last
    message shown.
    """

    idle = Signal()

    def __init__(self, jobs: Jobs, owner: QWidget, title: str) -> None:
        super().__init__(owner)
        self.jobs = jobs
        self.owner = owner
        self.title = title
        self.busy = 0
        self.last_error: str | None = None

    def run(
        self,
        fn: Callable[[], Any],
        done: Callable[[Any], object] | None = None,
        *,
        failed: Callable[[str], object] | None = None,
    ) -> None:
        self.busy += 1

        def ok(result: Any) -> None:
            self.busy -= 1
            if not Shiboken.isValid(self.owner):  # the view was closed while the job ran
                return
            try:
                if done is not None:
                    done(result)
            finally:
                if self.busy == 0:
                    self.idle.emit()

        def error(exc: Exception) -> None:
            self.busy -= 1
            message = one_line(exc)
            self.last_error = message
            if not Shiboken.isValid(self.owner):
                return
            try:
                if failed is not None:
                    failed(message)
                QMessageBox.warning(self.owner, self.title, message)
            finally:
                if self.busy == 0:
                    self.idle.emit()

        self.jobs.run(fn, ok, error)
