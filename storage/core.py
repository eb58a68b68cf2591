"""The gallery's core: the connections, the one writer thread, the revision counter, and the helpers every
part of the facade wraps its SQL with (a read in one snapshot, a write on the writer thread, an audit entry).

``storage.gallery.Gallery`` builds on it (persons, sightings, unknown faces, cameras, settings), and so do the
facades it hands out for watchlists, alarms and relabelling (storage/watchlists.py, alarms.py, relabel.py):
each is handed this core and puts its SQL through the same writer and readers.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from storage import audit as audit_log
from storage import counters, space, sql
from storage import sightings as history_rows
from storage.codec import check_text
from storage.connection import open_writer, translate
from storage.errors import GalleryError
from storage.faceindex import FaceIndex
from storage.gallerykey import GalleryKey, KeyLike
from storage.prepare import PreparedSighting
from storage.readers import Readers
from storage.records import WriterError
from storage.writer import WriterThread

log = logging.getLogger("storage.gallery")

T = TypeVar("T")


class GalleryCore:
    """The gallery database's plumbing. Open with ``Gallery.open(path)``; use as a context manager or call
    ``close()``."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        *,
        actor: str,
        busy_timeout_s: float,
        queue_capacity: int = 20_000,
        queue_wait_s: float = 2.0,
        key: GalleryKey | None = None,
    ) -> None:
        self.path = path
        self.actor = actor
        self.key = key  # None: a plain gallery; else the raw key a worker process opens it with
        self._busy = busy_timeout_s
        self._write_conn = conn
        self._readers = Readers(path, busy_timeout_s, self._translate, key)
        self._closed = False
        self._faces = FaceIndex()
        self._keep_snapshots = True
        self._snapshots_left_out = 0  # by record_sightings while snapshots are not kept
        self._space_lock = threading.Lock()
        self._writer = WriterThread(
            conn, history_rows.insert, self._translate, capacity=queue_capacity, put_wait_s=queue_wait_s
        )
        self.commits = self._writer.hooks  # on_recorded (sighting ids), on_audited (gallery changes): storage.writer

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        actor: str = "operator",
        busy_timeout_s: float = 5.0,
        create: bool = True,
        queue_capacity: int = 20_000,
        queue_wait_s: float = 2.0,
        key: KeyLike = None,
    ) -> Self:
        """Open (or, with ``create``, create) the gallery at ``path`` and bring its schema up to date. ``key``:
        storage.gallerykey (by default the key file beside it); a new gallery is encrypted unless it says plain.

        Raises GalleryError with one readable line for a directory, a file that is not SQLite, a corrupt or
        read-only file, one locked by another writer past ``busy_timeout_s``, or one from a newer FaceStation.
        The writer queue holds at most ``queue_capacity`` sightings; a producer finding it full waits up to
        ``queue_wait_s`` and then gets a QueueFullError. A new gallery is created owner-only; an existing one
        readable by others is tightened (storage.private), and an INFO line says what was changed.
        """
        p = Path(path)
        if not busy_timeout_s >= 0:
            raise GalleryError("the busy timeout must be zero or more seconds")
        check_text(actor, "actor")
        opened = open_writer(p, busy_timeout_s, create=create, key=key)
        return cls(
            p,
            opened.conn,
            key=opened.key,
            actor=actor,
            busy_timeout_s=busy_timeout_s,
            queue_capacity=queue_capacity,
            queue_wait_s=queue_wait_s,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self, timeout: float = 30.0) -> None:
        """Commit everything queued, stop the writer and close every connection."""
        if self._closed:
            return
        self._closed = True
        if not self._writer.stop(timeout):
            log.error("gallery writer did not finish within %.0f s; %d items left", timeout, self._writer.pending())
        self._readers.close()
        self._write_conn.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -------------------------------------------------------------- helpers

    def _translate(self, exc: sql.Error) -> GalleryError:
        return translate(exc, self.path, self._busy)

    def _reader(self) -> sqlite3.Connection:
        return self._readers.conn()

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on this thread's (query-only) connection in one snapshot, translating SQLite errors."""
        return self._readers.read(fn)

    def _write(self, fn: Callable[[sqlite3.Connection], T], label: str, *, transaction: bool = True) -> T:
        if self._closed:
            raise GalleryError("the gallery is closed")
        return self._writer.call(fn, label, transaction=transaction)

    def write(self, fn: Callable[[sqlite3.Connection], T], label: str, *, wait: bool = True) -> T | None:
        """``fn`` in one transaction on the writer thread, for storage's other facades (outbox, API tokens);
        ``wait`` False queues it and returns None (a failure is reported as a writer error)."""
        if wait:
            return self._write(fn, label)
        self._writer.post(fn, label)
        return None

    def _audit(self, conn: sqlite3.Connection, action: str, details: dict[str, Any]) -> None:
        self._writer.audited(audit_log.record(conn, self.actor, action, details))

    def _changed(
        self, conn: sqlite3.Connection, action: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        """Inside a write: the enrolled gallery changed (bump the revision), and audit ``action``."""
        counters.bump(conn, counters.REVISION)
        if action is not None:
            self._audit(conn, action, details or {})

    def _post_audit(self, action: str, details: dict[str, Any]) -> None:
        if self._closed:
            raise GalleryError("the gallery is closed")
        self._writer.post(lambda conn: self._audit(conn, action, details), f"audit of {action}")

    def counter(self, key: str) -> int:
        """A ``meta`` counter (storage.counters), cheap to poll: re-read only after another connection commits."""
        return self._readers.counter(key)

    def revision(self) -> int:
        """Grows on every gallery change (enrol, negative, rename, merge, delete, watchlist). Cheap to poll:
        the counter row is re-read only when SQLite's ``data_version`` says another connection committed."""
        return self._readers.counter(counters.REVISION)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until everything queued so far is committed (or failed and reported). False on timeout."""
        return self._writer.flush(timeout)

    def pending_writes(self) -> int:
        return self._writer.pending()

    def writer_errors(self) -> list[WriterError]:
        """The most recent writer failures (bounded), oldest first."""
        return self._writer.errors()

    def on_writer_error(self, callback: Callable[[WriterError], None]) -> None:
        """Call ``callback`` (on the writer thread) for each writer failure."""
        self._writer.hooks.on_error(callback)

    # ---------------------------------------------------------------- space

    def room(self) -> int:
        """Bytes the gallery can still grow by: its disk's free space, or what its size limit leaves."""
        return int(self._write(lambda conn: space.room(conn, self.path.parent), "free-space check", transaction=False))

    def set_size_limit(self, max_bytes: int | None) -> int:
        """Cap the gallery file at ``max_bytes`` for this session (None: no cap but the disk's); returns the cap
        in force in bytes (never below the file's current size). A full gallery keeps sightings without their
        snapshots, then without their crops (storage.writer)."""
        pages = int(self._write(lambda conn: space.limit(conn, max_bytes), "size limit", transaction=False))
        return pages * int(self.read(lambda conn: conn.execute("PRAGMA page_size").fetchone()[0]))

    def keep_snapshots(self, on: bool) -> None:
        """Store (on) or leave out (off: the disk is nearly full) the evidence snapshots of new sightings."""
        self._keep_snapshots = bool(on)

    @property
    def keeping_snapshots(self) -> bool:
        return self._keep_snapshots

    def dropped(self) -> tuple[int, int]:
        """(snapshots, crops) left out of stored sightings to save space, since the gallery was opened."""
        snapshots, crops = self._writer.dropped()
        return snapshots + self._snapshots_left_out, crops

    def _lighten(self, prepared: list[PreparedSighting]) -> list[PreparedSighting]:
        """``prepared`` without evidence snapshots while they are not kept (counted)."""
        if self._keep_snapshots:
            return prepared
        with self._space_lock:
            self._snapshots_left_out += sum(1 for p in prepared if p.snapshot is not None)
        return [replace(p, snapshot=None) if p.snapshot is not None else p for p in prepared]
