"""The durable outbox: what the station owes MQTT and each webhook, in the gallery, so a broker or
endpoint outage or a restart (even a SIGKILL) loses nothing that was committed.

Entries are kept per destination ("mqtt", "webhook:NAME") in the order they were put, which keeps each
camera's events in order; a destination's deliverer takes the oldest, delivers them and marks them
delivered (deleted), or counts an attempt and tries again later. Each destination is bounded: past
``max_per_destination`` the oldest entries are dropped, counted (kept in the gallery) and logged.
Writes go through the gallery's one writer thread; reads through the calling thread's reader.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from storage import outbox_rows
from storage.errors import GalleryError
from storage.gallery import Gallery

log = logging.getLogger(__name__)

DEFAULT_MAX_PER_DESTINATION = 10_000
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024  # a face crop or an event's JSON is far smaller


@dataclass(frozen=True)
class OutboxItem:
    """Something to deliver: ``payload`` to ``destination`` (``topic``: the MQTT topic, where it has one)."""

    destination: str
    kind: str
    payload: bytes = field(repr=False)
    camera: str = ""
    topic: str = ""
    person: str = ""  # whom it is about, if anyone (erased with them)


@dataclass(frozen=True)
class OutboxEntry:
    """A pending delivery as stored: its id orders it; ``attempts`` counts the failed tries so far."""

    id: int
    destination: str
    camera: str
    kind: str
    topic: str
    payload: bytes = field(repr=False)
    created: float
    attempts: int


@dataclass(frozen=True)
class OutboxCounts:
    pending: int
    dropped: int


def _check(item: OutboxItem) -> tuple[str, str, str, str, str, bytes, float]:
    if not isinstance(item, OutboxItem):
        raise GalleryError(f"an outbox item must be an OutboxItem, not {type(item).__name__}")
    if not item.destination or not item.kind:
        raise GalleryError("an outbox item needs a destination and a kind")
    if not isinstance(item.payload, bytes) or len(item.payload) > MAX_PAYLOAD_BYTES:
        raise GalleryError(f"an outbox payload must be bytes, at most {MAX_PAYLOAD_BYTES}")
    return (item.destination, item.camera, item.person, item.kind, item.topic, item.payload, time.time())


class Outbox:
    """The outbox of one gallery; thread-safe. See the module docstring."""

    def __init__(self, gallery: Gallery, *, max_per_destination: int = DEFAULT_MAX_PER_DESTINATION) -> None:
        if max_per_destination < 1:
            raise ValueError("the outbox must hold at least one entry per destination")
        self.gallery = gallery
        self.limit = max_per_destination
        self._cond = threading.Condition()
        self._version = 0

    def put(self, items: Sequence[OutboxItem]) -> None:
        """Store ``items`` (committed when this returns); a full destination drops its oldest, logged."""
        rows = [_check(it) for it in items]
        if not rows:
            return
        destinations = sorted({r[0] for r in rows})
        limit = self.limit

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            outbox_rows.insert(conn, rows)
            return {d: outbox_rows.trim(conn, d, limit) for d in destinations}

        dropped = self.gallery.write(run, "outbox") or {}
        for destination, n in dropped.items():
            if n:
                log.warning(
                    "the outbox for %s is full (%d entries): dropped the oldest %d undelivered", destination, limit, n
                )
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def version(self) -> int:
        """Grows with every put: read it before :meth:`take`, then :meth:`wait` for a newer one."""
        with self._cond:
            return self._version

    def wait(self, seen: int, timeout: float) -> bool:
        """Wait until something was put after version ``seen`` (True), or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._version == seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wake(self) -> None:
        """Wake every waiter now (a deliverer stopping)."""
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def take(self, destination: str, limit: int = 100) -> list[OutboxEntry]:
        """The oldest ``limit`` entries owed to ``destination`` (they stay until :meth:`delivered`)."""
        rows = self.gallery.read(lambda conn: outbox_rows.oldest(conn, destination, limit))
        return [
            OutboxEntry(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), bytes(r[5]), float(r[6]), int(r[7]))
            for r in rows
        ]

    def delivered(self, ids: Sequence[int]) -> None:
        if ids:
            self.gallery.write(lambda conn: outbox_rows.delete(conn, ids), "outbox delivered")

    def attempted(self, ids: Sequence[int]) -> None:
        """Count a failed try of each of ``ids`` (they stay, in order)."""
        if ids:
            self.gallery.write(lambda conn: outbox_rows.attempted(conn, ids), "outbox attempt")

    def forget_person(self, person: str, keep_kind: str = "person_deleted") -> int:
        """Erase what is still owed about ``person`` (a deleted person), but the news of the deletion itself."""
        return (
            self.gallery.write(lambda conn: outbox_rows.forget_person(conn, person, keep_kind), "outbox erasure") or 0
        )

    def purge(self, destination: str) -> int:
        """Forget everything owed to ``destination``; returns how many entries."""
        return self.gallery.write(lambda conn: outbox_rows.purge(conn, destination), "outbox purge") or 0

    def counts(self) -> dict[str, OutboxCounts]:
        """Per destination: entries pending and entries dropped by the bound (ever)."""
        found = self.gallery.read(outbox_rows.counts)
        return {d: OutboxCounts(p, dropped) for d, (p, dropped) in sorted(found.items())}
