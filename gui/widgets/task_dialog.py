"""A long job with a progress bar: a roster import, a scan of recorded footage.

The job runs on the window's job pool (gui/jobs.py) and reports through a :class:`Progress` it is
handed: the worker only stores a fraction and a line of text (cheap, under a lock), and the dialog
paints them on a timer, friture-style, so the GUI thread never waits for the worker. Cancel asks the
job to stop at its next step (it keeps what it did); the result or the error ends in the dialog's
summary, which stays until the operator closes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QProgressBar, QVBoxLayout, QWidget

from gui.jobs import Jobs
from gui.widgets.thumbnails import one_line


class Progress:
    """What a running job tells its dialog, and how the dialog asks it to stop (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fraction = 0.0
        self._text = ""
        self.cancelled = threading.Event()

    def update(self, fraction: float, text: str | None = None) -> None:
        with self._lock:
            self._fraction = min(1.0, max(0.0, float(fraction)))
            if text is not None:
                self._text = text

    def read(self) -> tuple[float, str]:
        with self._lock:
            return self._fraction, self._text


class TaskDialog(QDialog):
    """Runs ``work(progress)`` in the background; ``summarise(result)`` gives the closing text."""

    finished_with = Signal(object)  # the job's result, once it is done (not on failure)

    def __init__(
        self,
        title: str,
        jobs: Jobs,
        work: Callable[[Progress], Any],
        summarise: Callable[[Any], str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(520)
        self.progress = Progress()
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.status = QLabel("starting…")
        self.status.setWordWrap(True)
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self._cancel_or_close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.summary, 1)
        layout.addWidget(self.buttons)
        self.running = True
        self.result: Any = None
        self.error: Exception | None = None
        self._summarise = summarise
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._paint)
        self._timer.start(100)
        jobs.run(lambda: work(self.progress), self._done, self._failed)

    def _paint(self, *, status: bool = True) -> None:
        fraction, text = self.progress.read()
        self.bar.setValue(round(fraction * 1000))
        if text and status:
            self.status.setText(text)

    def _finish(self, text: str) -> None:
        self.running = False
        self._timer.stop()
        self._paint(status=False)  # the closing status line stays
        self.summary.setPlainText(text)
        self.summary.show()
        self.buttons.setStandardButtons(QDialogButtonBox.StandardButton.Close)

    def _done(self, result: Any) -> None:
        self.result = result
        self.bar.setValue(1000)
        self.status.setText(
            "stopped at your request: what was done is kept" if self.progress.cancelled.is_set() else "done"
        )
        self._finish(self._summarise(result))
        self.finished_with.emit(result)

    def _failed(self, exc: Exception) -> None:
        self.error = exc
        self.status.setText("failed")
        self._finish(f"It stopped: {one_line(exc)}")

    def _cancel_or_close(self) -> None:
        if self.running:
            self.progress.cancelled.set()
            self.status.setText("stopping after the current step…")
            self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setEnabled(False)
        else:
            self.accept()

    def reject(self) -> None:  # Escape or the window's close button: ask the job to stop first
        if self.running:
            self._cancel_or_close()
        else:
            super().reject()


def open_task(dialog: TaskDialog) -> TaskDialog:
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
