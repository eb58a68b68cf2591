"""The gallery's read side: one query-only connection per calling thread, so a GUI thread never waits for
the writer or for another reader (WAL mode), and each read sees one consistent snapshot."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from storage import counters, sql
from storage.connection import connect
from storage.errors import GalleryError
from storage.gallerykey import GalleryKey

T = TypeVar("T")


class Readers:
    """Opens a reader connection per thread on first use; ``close`` closes them all."""

    def __init__(
        self,
        path: Path,
        busy_timeout_s: float,
        translate: Callable[[sql.Error], GalleryError],
        key: GalleryKey | None = None,
    ) -> None:
        self._path = path
        self._key = key
        self._busy = busy_timeout_s
        self._translate = translate
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (outside a transaction: wrap a multi-statement read in :meth:`read`)."""
        if self._closed:
            raise GalleryError("the gallery is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = connect(self._path, self._busy, reader=True, key=self._key)
            except sql.Error as exc:
                raise self._translate(exc) from None
            with self._lock:
                self._conns.append(conn)
            self._local.conn = conn
            self._local.data_version = -1
            self._local.counters = {}
        return conn

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on this thread's connection in one snapshot, translating SQLite errors."""
        conn = self.conn()
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sql.Error as exc:
            raise self._translate(exc) from None

    def counter(self, key: str) -> int:
        """A ``meta`` counter, re-read only when SQLite's ``data_version`` says another connection committed
        (cheap enough to poll at display rate)."""
        conn = self.conn()
        try:
            version = counters.data_version(conn)
            cache: dict[str, int] = self._local.counters
            if version != self._local.data_version:
                cache.clear()
                self._local.data_version = version
            if key not in cache:
                cache[key] = counters.value(conn, key)
        except sql.Error as exc:
            raise self._translate(exc) from None
        return cache[key]

    def close(self) -> None:
        self._closed = True
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
