"""Background jobs for the GUI: database and vision work never runs on the GUI thread.

A job is a plain callable run on a QThreadPool worker; its result or its exception comes back
to the GUI thread through a queued signal, so a slow disk or a locked database never freezes a
window, and an error becomes a message instead of a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)


class _Relay(QObject):
    """Lives on the GUI thread; its signals, emitted on a worker, are queued to its own slots."""

    done = Signal(object)
    failed = Signal(object)

    def __init__(self, on_done: Callable[[Any], None], on_error: Callable[[Exception], None]) -> None:
        super().__init__()
        self._on_done = on_done
        self._on_error = on_error
        self.done.connect(self._deliver)
        self.failed.connect(self._deliver_error)

    @Slot(object)
    def _deliver(self, result: Any) -> None:
        self._on_done(result)

    @Slot(object)
    def _deliver_error(self, exc: Exception) -> None:
        self._on_error(exc)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn = fn
        self.relay = relay

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # reported to the GUI, never lost
            log.warning("background job failed: %s", exc)
            self.relay.failed.emit(exc)
        else:
            self.relay.done.emit(result)


class Jobs(QObject):
    """Runs callables off the GUI thread; callbacks run on the GUI thread."""

    def __init__(self, parent: QObject | None = None, *, threads: int = 2) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._relays: set[_Relay] = set()

    def run(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], object] | None = None,
        on_error: Callable[[Exception], object] | None = None,
    ) -> None:
        def finished(result: Any) -> None:
            self._relays.discard(relay)
            if on_done is not None:
                on_done(result)

        def failed(exc: Exception) -> None:
            self._relays.discard(relay)
            if on_error is not None:
                on_error(exc)

        relay = _Relay(finished, failed)
        self._relays.add(relay)
        self.pool.start(_Job(fn, relay))

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self.pool.waitForDone(timeout_ms)
