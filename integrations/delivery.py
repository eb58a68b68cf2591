"""The outbox's delivery side: one thread per destination (MQTT, each webhook) that takes the oldest
entries owed to it, hands them to its sender, marks what was delivered, and backs off exponentially
while the destination fails. A slow or dead destination only ever delays its own thread: recognition
and the other destinations never wait for it. Entries stay in the outbox (storage/outbox.py) until
delivered, so an outage or a restart loses nothing within the outbox's bound.

An outage is said in one log line when it starts and one when it ends (with how long and how much
was waiting), not once per retry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storage.errors import GalleryError
from storage.outbox import Outbox, OutboxEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a sender did with a batch: ``done`` (delivered, or refused for good and logged: never retried)
    is a prefix of the batch's ids; ``error`` says why the next one failed (it is retried), or None."""

    done: tuple[int, ...]
    error: str | None = None


Sender = Callable[[Sequence[OutboxEntry]], Outcome]


@dataclass
class Backoff:
    """Exponential backoff with jitter: ``first`` s, doubling up to ``cap`` s."""

    first: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    _next: float = 0.0

    def delay(self) -> float:
        self._next = self.first if self._next <= 0 else min(self.cap, self._next * self.factor)
        return self._next * random.uniform(0.9, 1.1)

    def reset(self) -> None:
        self._next = 0.0


class Deliverer:
    """Delivers ``destination``'s outbox entries with ``send``; see the module docstring.

    ``ready`` says whether the destination can be tried now (an MQTT link that is connected); while
    it says no the thread waits, without counting attempts.
    """

    def __init__(
        self,
        outbox: Outbox,
        destination: str,
        send: Sender,
        *,
        label: str,
        batch: int = 50,
        backoff: Backoff | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.outbox = outbox
        self.destination = destination
        self.label = label
        self._send = send
        self._batch = batch
        self._backoff = backoff or Backoff()
        self._ready = ready
        self._stop = threading.Event()
        self._failing_since: float | None = None
        self.delivered = 0
        self.failures = 0
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name=f"deliver-{destination}", daemon=True)

    def start(self) -> Deliverer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.outbox.wake()
        self._thread.join(timeout)

    @property
    def failing(self) -> bool:
        return self._failing_since is not None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except GalleryError as exc:  # the gallery closing under us, a disk error: say so, try again
                if self._stop.is_set():
                    return
                log.warning("%s: the outbox cannot be read or updated: %s", self.label, exc)
                self._stop.wait(1.0)
            except Exception:
                log.exception("%s: delivery failed unexpectedly", self.label)
                self._stop.wait(1.0)

    def _step(self) -> None:
        if self._ready is not None and not self._ready():
            self._stop.wait(0.2)
            return
        seen = self.outbox.version()
        entries = self.outbox.take(self.destination, self._batch)
        if not entries:
            self.outbox.wait(seen, 1.0)
            return
        outcome = self._send(entries)
        if outcome.done:
            self.outbox.delivered(list(outcome.done))
            self.delivered += len(outcome.done)
        if outcome.error is None:
            self._recovered()
            return
        failed = [e.id for e in entries if e.id not in set(outcome.done)][:1]
        self.outbox.attempted(failed)
        self._failed(outcome.error)
        self._stop.wait(self._backoff.delay())

    def _failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            pending = self.outbox.counts().get(self.destination)
            waiting = 0 if pending is None else pending.pending
            log.warning("%s: %s; %d events wait in the outbox, retried with backoff", self.label, error, waiting)

    def _recovered(self) -> None:
        if self._failing_since is not None:
            down = time.monotonic() - self._failing_since
            self._failing_since = None
            log.info("%s: delivering again after %.0f s", self.label, down)
        self._backoff.reset()
