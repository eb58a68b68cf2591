"""The gallery: who is enrolled, and who was seen where and when, in one SQLite file.

Every change goes through one writer thread (``storage.writer``), which batches sighting inserts;
reads run on a connection per calling thread, so a GUI thread never waits for the writer (WAL mode).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import sqlite_utils

from storage import clusters as clustering
from storage.codec import as_embedding, blobs_to_matrix, check_text, normalise_rows, to_blob
from storage.connection import check_path, connect, translate
from storage.errors import GalleryError
from storage.faceindex import FaceIndex
from storage.prepare import PreparedSighting, prepare_sightings
from storage.records import (
    AuditEntry,
    Cluster,
    NewSighting,
    Person,
    RetentionResult,
    Sample,
    SampleMatrix,
    Sighting,
    WriterError,
)
from storage.schema import migrate
from storage.timeutil import TimeLike, iso, to_epoch
from storage.writer import WriterThread

log = logging.getLogger(__name__)

T = TypeVar("T")
PersonRef = str | int

SIGHTING_COLUMNS = (
    "s.id, s.camera, s.started, s.ended, s.person_id, p.name, s.score, s.box_x, s.box_y, s.box_w, s.box_h, "
    "EXISTS (SELECT 1 FROM sighting_crops c WHERE c.sighting_id = s.id), s.model, s.track"
)
SIGHTING_FROM = "sightings s LEFT JOIN persons p ON p.id = s.person_id"
MAX_PAGE = 10_000
RETENTION_CHUNK = 20_000


def sighting_from_row(row: Sequence[Any]) -> Sighting:
    return Sighting(
        id=int(row[0]),
        camera=str(row[1]),
        start=float(row[2]),
        end=float(row[3]),
        person_id=None if row[4] is None else int(row[4]),
        person=None if row[5] is None else str(row[5]),
        score=float(row[6]),
        box=(float(row[7]), float(row[8]), float(row[9]), float(row[10])),
        has_crop=bool(row[11]),
        model=str(row[12]),
        track=str(row[13]),
    )


@dataclass(frozen=True)
class HistoryQuery:
    """A history filter as SQL: ``where`` (with ``?`` placeholders) and its ``params``; ``details`` for the audit."""

    where: str
    params: tuple[Any, ...]
    details: dict[str, Any]


@dataclass(frozen=True)
class Camera:
    name: str
    address: str
    first_seen: float
    last_seen: float


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _crop_bytes(value: object, what: str) -> bytes | None:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise GalleryError(f"{what} must be JPEG bytes, got {type(value).__name__}")
    data = bytes(value)
    if not data:
        return None
    if not data.startswith(b"\xff\xd8"):
        raise GalleryError(f"{what} is not a JPEG (it does not start with FF D8)")
    return data


def _finite(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise GalleryError(f"{what} must be a number, got {type(value).__name__}")
    f = float(value)
    if not math.isfinite(f):
        raise GalleryError(f"{what} is not finite")
    return f


class Gallery:
    """The gallery database. Open with ``Gallery.open(path)``; use as a context manager or call ``close()``."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        *,
        actor: str,
        busy_timeout_s: float,
        queue_capacity: int = 20_000,
        queue_wait_s: float = 2.0,
    ) -> None:
        self.path = path
        self.actor = actor
        self._busy = busy_timeout_s
        self._write_conn = conn
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._faces = FaceIndex()
        self._error_listeners: list[Callable[[WriterError], None]] = []
        self._writer = WriterThread(
            conn,
            self._insert_sightings,
            self._translate,
            capacity=queue_capacity,
            put_wait_s=queue_wait_s,
            on_error=self._on_writer_error,
        )

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
    ) -> Gallery:
        """Open (or, with ``create``, create) the gallery at ``path`` and bring its schema up to date.

        Raises GalleryError with one readable line for a directory, a file that is not SQLite, a corrupt or
        read-only file, one locked by another writer past ``busy_timeout_s``, or one from a newer FaceStation.
        The writer queue holds at most ``queue_capacity`` sightings; a producer finding it full waits up to
        ``queue_wait_s`` and then gets a QueueFullError.
        """
        p = Path(path)
        if not busy_timeout_s >= 0:
            raise GalleryError("the busy timeout must be zero or more seconds")
        check_text(actor, "actor")
        check_path(p, create=create)
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(p, busy_timeout_s, reader=False)
            migrate(conn, str(p))
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise translate(exc, p, busy_timeout_s) from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return cls(
            p,
            conn,
            actor=actor,
            busy_timeout_s=busy_timeout_s,
            queue_capacity=queue_capacity,
            queue_wait_s=queue_wait_s,
        )

    def __enter__(self) -> Gallery:
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
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._write_conn.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -------------------------------------------------------------- helpers

    def _translate(self, exc: sqlite3.Error) -> GalleryError:
        return translate(exc, self.path, self._busy)

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise GalleryError("the gallery is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = connect(self.path, self._busy, reader=True)
            except sqlite3.Error as exc:
                raise self._translate(exc) from None
            with self._readers_lock:
                self._readers.append(conn)
            self._local.conn = conn
            self._local.data_version = -1
            self._local.revision = 0
        return conn

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on this thread's (query-only) connection in one snapshot, translating SQLite errors."""
        conn = self._reader()
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def _write(self, fn: Callable[[sqlite3.Connection], T], label: str, *, transaction: bool = True) -> T:
        if self._closed:
            raise GalleryError("the gallery is closed")
        return self._writer.call(fn, label, transaction=transaction)

    def _audit(self, conn: sqlite3.Connection, action: str, details: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO audit (time, actor, action, details) VALUES (?, ?, ?, ?)",
            (time.time(), self.actor, action, json.dumps(details, sort_keys=True, default=str)),
        )

    @staticmethod
    def _bump(conn: sqlite3.Connection, key: str) -> None:
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = ?", (key,))

    @staticmethod
    def _person_id(conn: sqlite3.Connection, person: PersonRef) -> int:
        if _is_int(person):
            row = conn.execute("SELECT id FROM persons WHERE id = ?", (int(person),)).fetchone()
            if row is None:
                raise GalleryError(f"no person with id {int(person)}")
            return int(row[0])
        name = check_text(person, "person name")
        row = conn.execute("SELECT id FROM persons WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
        if row is None:
            raise GalleryError(f"no person named {name!r}")
        return int(row[0])

    @staticmethod
    def _person_name(conn: sqlite3.Connection, person_id: int) -> str:
        return str(conn.execute("SELECT name FROM persons WHERE id = ?", (person_id,)).fetchone()[0])

    @staticmethod
    def _ensure_model(conn: sqlite3.Connection, model: str, dim: int) -> None:
        """Register ``model`` with ``dim`` values, or refuse a dimension that differs from the stored one."""
        row = conn.execute("SELECT dim FROM models WHERE name = ?", (model,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO models (name, dim) VALUES (?, ?)", (model, dim))
        elif int(row[0]) != dim:
            raise GalleryError(f"model {model!r} embeddings have {int(row[0])} values; this one has {dim}")

    # ------------------------------------------------------------- revision

    def revision(self) -> int:
        """Grows on every gallery change (enrol, negative, rename, merge, delete, watchlist). Cheap to poll:
        the counter row is re-read only when SQLite's ``data_version`` says another connection committed."""
        conn = self._reader()
        try:
            version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            if version != self._local.data_version:
                rev = int(conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])
                self._local.revision = rev
                self._local.data_version = version
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        return int(self._local.revision)

    # -------------------------------------------------------------- persons

    def enrol_sample(
        self,
        person: str,
        *,
        model: str,
        embedding: npt.NDArray[np.float32],
        crop_jpeg: bytes,
        source: str,
        quality: float,
    ) -> int:
        """Store one face sample of ``person`` (created if new); returns the sample id. Audited."""
        name = check_text(person, "person name")
        model_name = check_text(model, "model name", max_len=100)
        emb = as_embedding(embedding)
        crop = _crop_bytes(crop_jpeg, "the crop")
        src = check_text(source, "source", max_len=1000, allow_empty=True)
        q = _finite(quality, "quality")

        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT id FROM persons WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
            created = row is None
            if row is None:
                pid = int(
                    conn.execute("INSERT INTO persons (name, created) VALUES (?, ?)", (name, time.time())).lastrowid
                    or 0
                )
            else:
                pid = int(row[0])
            self._ensure_model(conn, model_name, emb.shape[0])
            cur = conn.execute(
                "INSERT INTO samples (person_id, model, embedding, crop, source, quality, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (pid, model_name, to_blob(emb), crop, src, q, time.time()),
            )
            sample_id = int(cur.lastrowid or 0)
            self._bump(conn, "revision")
            self._audit(
                conn,
                "enrol",
                {
                    "person": name,
                    "person_id": pid,
                    "new_person": created,
                    "sample_id": sample_id,
                    "model": model_name,
                    "source": src,
                },
            )
            return sample_id

        return self._write(run, "enrolment")

    def add_negative(
        self,
        person: PersonRef,
        *,
        model: str,
        embedding: npt.NDArray[np.float32],
        crop_jpeg: bytes = b"",
        source: str = "",
    ) -> int:
        """Record that this face is NOT ``person`` (an existing person); returns the negative sample id."""
        model_name = check_text(model, "model name", max_len=100)
        emb = as_embedding(embedding)
        crop = _crop_bytes(crop_jpeg, "the crop")
        src = check_text(source, "source", max_len=1000, allow_empty=True)

        def run(conn: sqlite3.Connection) -> int:
            pid = self._person_id(conn, person)
            self._ensure_model(conn, model_name, emb.shape[0])
            cur = conn.execute(
                "INSERT INTO negatives (person_id, model, embedding, crop, source, created) VALUES (?, ?, ?, ?, ?, ?)",
                (pid, model_name, to_blob(emb), crop, src, time.time()),
            )
            nid = int(cur.lastrowid or 0)
            self._bump(conn, "revision")
            self._audit(
                conn, "negative", {"person": self._person_name(conn, pid), "person_id": pid, "negative_id": nid}
            )
            return nid

        return self._write(run, "negative sample")

    def persons(self) -> list[Person]:
        """Every person with their sample and negative counts, by name."""

        def run(conn: sqlite3.Connection) -> list[Person]:
            rows = conn.execute(
                "SELECT p.id, p.name, p.notes, p.watchlist, p.created, "
                "(SELECT count(*) FROM samples s WHERE s.person_id = p.id), "
                "(SELECT count(*) FROM negatives n WHERE n.person_id = p.id) "
                "FROM persons p ORDER BY p.name COLLATE NOCASE"
            ).fetchall()
            return [
                Person(int(r[0]), str(r[1]), str(r[2]), bool(r[3]), float(r[4]), int(r[5]), int(r[6])) for r in rows
            ]

        return self.read(run)

    def person(self, person: PersonRef) -> Person:
        """One person by name (case-insensitive) or id."""

        def run(conn: sqlite3.Connection) -> Person:
            pid = self._person_id(conn, person)
            return next(p for p in self._persons_by_id(conn, [pid]))

        return self.read(run)

    @staticmethod
    def _persons_by_id(conn: sqlite3.Connection, ids: list[int]) -> Iterator[Person]:
        for pid in ids:
            r = conn.execute(
                "SELECT p.id, p.name, p.notes, p.watchlist, p.created, "
                "(SELECT count(*) FROM samples s WHERE s.person_id = p.id), "
                "(SELECT count(*) FROM negatives n WHERE n.person_id = p.id) FROM persons p WHERE p.id = ?",
                (pid,),
            ).fetchone()
            yield Person(int(r[0]), str(r[1]), str(r[2]), bool(r[3]), float(r[4]), int(r[5]), int(r[6]))

    def samples(self, person: PersonRef) -> list[Sample]:
        """The samples of one person, oldest first (without embeddings or crops)."""

        def run(conn: sqlite3.Connection) -> list[Sample]:
            pid = self._person_id(conn, person)
            rows = conn.execute(
                "SELECT id, person_id, model, source, quality, created FROM samples WHERE person_id = ? ORDER BY id",
                (pid,),
            ).fetchall()
            return [Sample(int(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4]), float(r[5])) for r in rows]

        return self.read(run)

    def rename(self, person: PersonRef, new_name: str) -> None:
        """Rename a person; refuses a name another person already has. Audited."""
        name = check_text(new_name, "new name")

        def run(conn: sqlite3.Connection) -> None:
            pid = self._person_id(conn, person)
            old = self._person_name(conn, pid)
            clash = conn.execute(
                "SELECT id FROM persons WHERE name = ? COLLATE NOCASE AND id != ?", (name, pid)
            ).fetchone()
            if clash is not None:
                raise GalleryError(f"a person named {name!r} already exists: merge them instead")
            conn.execute("UPDATE persons SET name = ? WHERE id = ?", (name, pid))
            self._bump(conn, "revision")
            self._audit(conn, "rename", {"person_id": pid, "from": old, "to": name})

        self._write(run, "rename")

    def set_notes(self, person: PersonRef, notes: str) -> None:
        text = check_text(notes, "notes", max_len=10_000, allow_empty=True)

        def run(conn: sqlite3.Connection) -> None:
            pid = self._person_id(conn, person)
            conn.execute("UPDATE persons SET notes = ? WHERE id = ?", (text, pid))
            self._bump(conn, "revision")

        self._write(run, "notes")

    def set_watchlist(self, person: PersonRef, on: bool) -> None:
        """Set or clear the watchlist flag. Audited."""

        def run(conn: sqlite3.Connection) -> None:
            pid = self._person_id(conn, person)
            conn.execute("UPDATE persons SET watchlist = ? WHERE id = ?", (1 if on else 0, pid))
            self._bump(conn, "revision")
            self._audit(conn, "watchlist", {"person_id": pid, "person": self._person_name(conn, pid), "on": bool(on)})

        self._write(run, "watchlist change")

    def merge(self, source: PersonRef, into: PersonRef) -> int:
        """Move every sample, negative and sighting of ``source`` to ``into`` and delete ``source``, in one
        transaction; the watchlist flag is kept if either had it. Returns the surviving id. Audited."""

        def run(conn: sqlite3.Connection) -> int:
            src = self._person_id(conn, source)
            dst = self._person_id(conn, into)
            if src == dst:
                raise GalleryError("cannot merge a person into themself")
            src_name, dst_name = self._person_name(conn, src), self._person_name(conn, dst)
            moved = {
                table: conn.execute(f"UPDATE {table} SET person_id = ? WHERE person_id = ?", (dst, src)).rowcount
                for table in ("samples", "negatives", "sightings")
            }
            conn.execute(
                "UPDATE persons SET watchlist = max(watchlist, (SELECT watchlist FROM persons WHERE id = ?)), "
                "notes = trim(notes || char(10) || (SELECT notes FROM persons WHERE id = ?)) WHERE id = ?",
                (src, src, dst),
            )
            conn.execute("DELETE FROM persons WHERE id = ?", (src,))
            self._bump(conn, "revision")
            self._audit(conn, "merge", {"from": src_name, "from_id": src, "into": dst_name, "into_id": dst, **moved})
            return dst

        return self._write(run, "merge")

    def delete_person(self, person: PersonRef, *, erase_sightings: bool = True, vacuum: bool = False) -> None:
        """Delete a person with their samples, negatives and crops, in one transaction. Their sightings are
        erased (``erase_sightings``) or kept as unknown without crop or embedding. ``vacuum`` then rebuilds
        the file and empties the WAL, so that no byte of the deleted crops remains on disk. Audited."""

        def run(conn: sqlite3.Connection) -> None:
            pid = self._person_id(conn, person)
            name = self._person_name(conn, pid)
            mine = "(SELECT id FROM sightings WHERE person_id = ?)"
            crops = conn.execute(f"DELETE FROM sighting_crops WHERE sighting_id IN {mine}", (pid,)).rowcount
            conn.execute(f"DELETE FROM sighting_embeddings WHERE sighting_id IN {mine}", (pid,))
            if erase_sightings:
                sightings = conn.execute("DELETE FROM sightings WHERE person_id = ?", (pid,)).rowcount
            else:
                sightings = conn.execute("UPDATE sightings SET person_id = NULL WHERE person_id = ?", (pid,)).rowcount
            samples = conn.execute("DELETE FROM samples WHERE person_id = ?", (pid,)).rowcount
            negatives = conn.execute("DELETE FROM negatives WHERE person_id = ?", (pid,)).rowcount
            conn.execute("DELETE FROM persons WHERE id = ?", (pid,))
            self._bump(conn, "revision")
            self._bump(conn, "sightings_epoch")
            self._audit(
                conn,
                "delete",
                {
                    "person": name,
                    "person_id": pid,
                    "samples": samples,
                    "negatives": negatives,
                    "sightings": sightings,
                    "sighting_crops": crops,
                    "sightings_action": "erased" if erase_sightings else "unlinked",
                    "vacuum": vacuum,
                },
            )

        self._write(run, "delete person")
        if vacuum:
            self.vacuum()

    def delete_sample(self, sample_id: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT person_id FROM samples WHERE id = ?", (int(sample_id),)).fetchone()
            if row is None:
                raise GalleryError(f"no sample with id {int(sample_id)}")
            conn.execute("DELETE FROM samples WHERE id = ?", (int(sample_id),))
            self._bump(conn, "revision")
            self._audit(conn, "delete_sample", {"sample_id": int(sample_id), "person_id": int(row[0])})

        self._write(run, "delete sample")

    def vacuum(self) -> None:
        """Rebuild the file (so freed pages keep no old bytes) and truncate the WAL."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("VACUUM")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                raise GalleryError("VACUUM done, but a reader kept the WAL from being emptied: try again")

        self._write(run, "vacuum", transaction=False)

    # -------------------------------------------------------------- matrices

    def _matrix(self, model: str, table: str) -> SampleMatrix:
        model_name = check_text(model, "model name", max_len=100)

        def run(conn: sqlite3.Connection) -> SampleMatrix:
            rev = int(conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])
            row = conn.execute("SELECT dim FROM models WHERE name = ?", (model_name,)).fetchone()
            dim = 0 if row is None else int(row[0])
            rows = conn.execute(
                f"SELECT t.person_id, p.name, p.watchlist, t.embedding FROM {table} t "
                "JOIN persons p ON p.id = t.person_id WHERE t.model = ? ORDER BY t.id",
                (model_name,),
            ).fetchall()
            return SampleMatrix(
                person_ids=np.array([r[0] for r in rows], dtype=np.int64),
                names=tuple(str(r[1]) for r in rows),
                embeddings=blobs_to_matrix([r[3] for r in rows], dim),
                watchlist=np.array([bool(r[2]) for r in rows], dtype=np.bool_),
                revision=rev,
            )

        return self.read(run)

    def sample_matrix(self, model: str) -> SampleMatrix:
        """Every sample of ``model``, one row each (raw, not normalised), with the revision it was read at."""
        return self._matrix(model, "samples")

    def negative_matrix(self, model: str) -> SampleMatrix:
        """Every negative sample of ``model``: ``person_ids`` says which person each face is NOT."""
        return self._matrix(model, "negatives")

    def models(self) -> dict[str, int]:
        """Model name to embedding dimension, for every model the gallery has seen."""
        return self.read(lambda conn: {str(n): int(d) for n, d in conn.execute("SELECT name, dim FROM models")})

    # ------------------------------------------------------------- sightings

    def record_sightings(self, items: Sequence[NewSighting]) -> None:
        """Queue sightings for the writer thread. Checks them here, so a bad one is refused at once
        (GalleryError naming it, nothing of the call queued); a full queue blocks briefly and then raises
        QueueFullError."""
        if self._closed:
            raise GalleryError("the gallery is closed")
        prepared = prepare_sightings(items)
        if prepared:
            self._writer.put_sightings(prepared)

    def _insert_sightings(self, conn: sqlite3.Connection, items: Sequence[PreparedSighting]) -> None:
        """Runs on the writer thread, inside its transaction: the whole batch with three executemany calls."""
        base = int(conn.execute("SELECT coalesce(max(id), 0) FROM sightings").fetchone()[0])
        dims: dict[str, int] = {}
        crops: list[tuple[int, bytes]] = []
        embeddings: list[tuple[int, str, bytes]] = []
        for sid, it in enumerate(items, start=base + 1):
            if it.crop is not None:
                crops.append((sid, it.crop))
            if it.embedding is not None:
                if it.model not in dims:
                    self._ensure_model(conn, it.model, it.dim)
                    dims[it.model] = it.dim
                if dims[it.model] != it.dim:
                    raise GalleryError(f"model {it.model!r} embeddings have {dims[it.model]} values, not {it.dim}")
                embeddings.append((sid, it.model, it.embedding))
        conn.executemany(
            "INSERT INTO sightings (id, camera, started, ended, person_id, score, box_x, box_y, box_w, box_h, model, "
            "track) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(sid, *it.row) for sid, it in enumerate(items, start=base + 1)],
        )
        conn.executemany("INSERT INTO sighting_crops (sighting_id, jpeg) VALUES (?, ?)", crops)
        conn.executemany("INSERT INTO sighting_embeddings (sighting_id, model, embedding) VALUES (?, ?, ?)", embeddings)

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
        self._error_listeners.append(callback)

    def _on_writer_error(self, err: WriterError) -> None:
        for cb in list(self._error_listeners):
            cb(err)

    def history_query(
        self,
        *,
        person: PersonRef | None = None,
        camera: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        unknown_only: bool = False,
        min_score: float | None = None,
        conn: sqlite3.Connection | None = None,
    ) -> HistoryQuery:
        """The WHERE clause for a history filter. ``since`` is inclusive, ``until`` exclusive (sighting start)."""
        where: list[str] = []
        params: list[Any] = []
        details: dict[str, Any] = {}
        if person is not None and unknown_only:
            raise GalleryError("choose a person or unknown faces, not both")
        if person is not None:
            c = conn if conn is not None else self._reader()
            try:
                pid = self._person_id(c, person)
            except sqlite3.Error as exc:
                raise self._translate(exc) from None
            where.append("s.person_id = ?")
            params.append(pid)
            details["person"] = person if isinstance(person, str) else int(person)
        if unknown_only:
            where.append("s.person_id IS NULL")
            details["unknown_only"] = True
        if camera is not None:
            where.append("s.camera = ?")
            params.append(check_text(camera, "camera"))
            details["camera"] = camera
        if since is not None:
            t0 = to_epoch(since, "since")
            where.append("s.started >= ?")
            params.append(t0)
            details["since"] = iso(t0)
        if until is not None:
            t1 = to_epoch(until, "until")
            where.append("s.started < ?")
            params.append(t1)
            details["until"] = iso(t1)
        if min_score is not None:
            where.append("s.score >= ?")
            params.append(_finite(min_score, "min_score"))
            details["min_score"] = float(min_score)
        return HistoryQuery(" AND ".join(where) or "1", tuple(params), details)

    def history(
        self,
        *,
        person: PersonRef | None = None,
        camera: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        unknown_only: bool = False,
        min_score: float | None = None,
        limit: int = 100,
        offset: int = 0,
        audit: bool = True,
    ) -> list[Sighting]:
        """Sightings matching every filter given, newest first, one page. The search is audited (queued
        to the writer, so the query does not wait for a commit)."""
        if not _is_int(limit) or not 1 <= limit <= MAX_PAGE:
            raise GalleryError(f"limit must be 1..{MAX_PAGE}")
        if not _is_int(offset) or offset < 0:
            raise GalleryError("offset must be zero or more")
        q = self.history_query(
            person=person, camera=camera, since=since, until=until, unknown_only=unknown_only, min_score=min_score
        )
        sql = (
            f"SELECT {SIGHTING_COLUMNS} FROM {SIGHTING_FROM} WHERE {q.where} "
            "ORDER BY s.started DESC, s.id DESC LIMIT ? OFFSET ?"
        )
        rows = self.read(lambda conn: conn.execute(sql, (*q.params, int(limit), int(offset))).fetchall())
        if audit:
            details = {**q.details, "limit": int(limit), "offset": int(offset), "results": len(rows)}
            self._post_audit("history_search", details)
        return [sighting_from_row(r) for r in rows]

    def _post_audit(self, action: str, details: dict[str, Any]) -> None:
        if self._closed:
            raise GalleryError("the gallery is closed")
        self._writer.post(lambda conn: self._audit(conn, action, details), f"audit of {action}")

    def sightings_by_id(self, ids: Sequence[int]) -> list[Sighting]:
        """The sightings with these ids that still exist, in the order given."""
        wanted = [int(i) for i in ids]
        if not wanted:
            return []

        def run(conn: sqlite3.Connection) -> list[Sighting]:
            found: dict[int, Sighting] = {}
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for r in conn.execute(f"SELECT {SIGHTING_COLUMNS} FROM {SIGHTING_FROM} WHERE s.id IN ({marks})", chunk):
                    s = sighting_from_row(r)
                    found[s.id] = s
            return [found[i] for i in wanted if i in found]

        return self.read(run)

    def count_sightings(self) -> int:
        return self.read(lambda conn: int(conn.execute("SELECT count(*) FROM sightings").fetchone()[0]))

    def crop(self, sighting_id: int) -> bytes | None:
        """The best crop (JPEG) of a sighting, or None."""
        row = self.read(
            lambda conn: conn.execute(
                "SELECT jpeg FROM sighting_crops WHERE sighting_id = ?", (int(sighting_id),)
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    def sample_crop(self, sample_id: int) -> bytes | None:
        """The aligned crop (JPEG) of an enrolled sample, or None."""
        row = self.read(
            lambda conn: conn.execute("SELECT crop FROM samples WHERE id = ?", (int(sample_id),)).fetchone()
        )
        return None if row is None or row[0] is None else bytes(row[0])

    def search_by_face(
        self, embedding: npt.NDArray[np.float32], model: str, limit: int = 20, *, audit: bool = True
    ) -> list[tuple[Sighting, float]]:
        """The stored sightings (known or unknown) most similar to ``embedding``, best first, with their cosine
        similarity. Served from an in-memory matrix that only loads rows it has not seen. Audited."""
        emb = as_embedding(embedding)
        model_name = check_text(model, "model name", max_len=100)
        if not _is_int(limit) or not 1 <= limit <= MAX_PAGE:
            raise GalleryError(f"limit must be 1..{MAX_PAGE}")
        dims = self.models()
        if model_name not in dims:
            return []
        if dims[model_name] != emb.shape[0]:
            raise GalleryError(
                f"model {model_name!r} embeddings have {dims[model_name]} values; this one has {emb.shape[0]}"
            )
        conn = self._reader()
        try:
            hits = self._faces.top(conn, model_name, dims[model_name], emb, int(limit))
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        by_id = {s.id: s for s in self.sightings_by_id([h[0] for h in hits])}
        if audit:
            self._post_audit("face_search", {"model": model_name, "limit": int(limit), "results": len(hits)})
        return [(by_id[i], score) for i, score in hits if i in by_id]

    # --------------------------------------------------------- unknown faces

    def unknown_clusters(
        self,
        model: str,
        *,
        threshold: float = 0.7,
        since: TimeLike | None = None,
        min_size: int = 2,
        max_faces: int = 3000,
    ) -> list[Cluster]:
        """Group the newest ``max_faces`` unknown sightings of ``model`` that carry an embedding into clusters of
        the same face (single linkage at cosine >= ``threshold``), largest first."""
        model_name = check_text(model, "model name", max_len=100)
        thr = _finite(threshold, "threshold")
        if not 1 <= max_faces <= 20_000:
            raise GalleryError("max_faces must be 1..20000")
        t0 = None if since is None else to_epoch(since, "since")

        def run(conn: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], int]:
            row = conn.execute("SELECT dim FROM models WHERE name = ?", (model_name,)).fetchone()
            if row is None:
                return [], 0
            rows = conn.execute(
                "SELECT s.id, s.started, s.camera, e.embedding FROM sightings s "
                "JOIN sighting_embeddings e ON e.sighting_id = s.id "
                "WHERE s.person_id IS NULL AND e.model = ? AND s.started >= ? ORDER BY s.started DESC LIMIT ?",
                (model_name, -math.inf if t0 is None else t0, int(max_faces)),
            ).fetchall()
            return rows, int(row[0])

        rows, dim = self.read(run)
        if not rows:
            return []
        unit = normalise_rows(blobs_to_matrix([r[3] for r in rows], dim))
        out = []
        for members in clustering.cluster_rows(unit, thr, max(1, int(min_size))):
            rep, cohesion = clustering.representative(unit, members)
            starts = [float(rows[m][1]) for m in members]
            out.append(
                Cluster(
                    sighting_ids=tuple(sorted(int(rows[m][0]) for m in members)),
                    representative=int(rows[rep][0]),
                    cohesion=cohesion,
                    first_seen=min(starts),
                    last_seen=max(starts),
                    cameras=tuple(sorted({str(rows[m][2]) for m in members})),
                )
            )
        return out

    def promote_cluster(self, cluster: Cluster | Sequence[int], name: str, *, samples: int = 5) -> int:
        """Make a new person ``name`` from unknown sightings in one step: the sightings become theirs, and up to
        ``samples`` of them (those with an embedding, newest first) are enrolled. Returns the person id. Audited."""
        ids = list(cluster.sighting_ids) if isinstance(cluster, Cluster) else [int(i) for i in cluster]
        if not ids:
            raise GalleryError("the cluster is empty")
        person_name = check_text(name, "person name")

        def run(conn: sqlite3.Connection) -> int:
            if conn.execute("SELECT 1 FROM persons WHERE name = ? COLLATE NOCASE", (person_name,)).fetchone():
                raise GalleryError(f"a person named {person_name!r} already exists")
            found = {}
            for sid in ids:
                r = conn.execute(
                    "SELECT s.person_id, s.camera, s.started, s.score, e.model, e.embedding, c.jpeg FROM sightings s "
                    "LEFT JOIN sighting_embeddings e ON e.sighting_id = s.id "
                    "LEFT JOIN sighting_crops c ON c.sighting_id = s.id WHERE s.id = ?",
                    (sid,),
                ).fetchone()
                if r is None:
                    raise GalleryError(f"sighting {sid} no longer exists")
                if r[0] is not None:
                    raise GalleryError(f"sighting {sid} is no longer unknown")
                found[sid] = r
            pid = int(
                conn.execute("INSERT INTO persons (name, created) VALUES (?, ?)", (person_name, time.time())).lastrowid
                or 0
            )
            conn.executemany("UPDATE sightings SET person_id = ? WHERE id = ?", [(pid, sid) for sid in ids])
            enrolled = 0
            for sid in sorted(found, reverse=True):
                _, camera, started, _score, model, emb, crop = found[sid]
                if enrolled >= samples or emb is None:
                    continue
                conn.execute(
                    "INSERT INTO samples (person_id, model, embedding, crop, source, quality, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (pid, model, emb, crop, f"sighting {sid} ({camera}, {iso(float(started))})", 0.0, time.time()),
                )
                enrolled += 1
            self._bump(conn, "revision")
            self._audit(
                conn, "promote", {"person": person_name, "person_id": pid, "sightings": len(ids), "samples": enrolled}
            )
            return pid

        return self._write(run, "promotion")

    # ------------------------------------------------------------- retention

    def apply_retention(self, days: float, *, keep_watchlist: bool = True, now: float | None = None) -> RetentionResult:
        """Delete sightings that started more than ``days`` ago (with their crops and embeddings), in chunks so
        live inserts interleave. With ``keep_watchlist`` the sightings of watchlist persons, crops included,
        are kept. Enrolments are never touched. Audited."""
        d = _finite(days, "days")
        if d < 0:
            raise GalleryError("days must be zero or more")
        cutoff = (time.time() if now is None else float(now)) - d * 86400.0
        keep = "AND (person_id IS NULL OR person_id NOT IN (SELECT id FROM persons WHERE watchlist = 1))"
        cond = f"started < ? {keep if keep_watchlist else ''}"
        deleted = 0
        for _ in range(100_000):

            def chunk(conn: sqlite3.Connection) -> int:
                n = conn.execute(
                    f"DELETE FROM sightings WHERE id IN (SELECT id FROM sightings WHERE {cond} LIMIT ?)",
                    (cutoff, RETENTION_CHUNK),
                ).rowcount
                if n:
                    self._bump(conn, "sightings_epoch")
                return int(n)

            n = self._write(chunk, "retention")
            deleted += n
            if n < RETENTION_CHUNK:
                break

        def finish(conn: sqlite3.Connection) -> int:
            kept = 0
            if keep_watchlist:
                kept = int(
                    conn.execute(
                        "SELECT count(*) FROM sightings WHERE started < ? AND person_id IN "
                        "(SELECT id FROM persons WHERE watchlist = 1)",
                        (cutoff,),
                    ).fetchone()[0]
                )
            self._audit(
                conn, "retention", {"days": d, "cutoff": iso(cutoff), "deleted": deleted, "watchlist_kept": kept}
            )
            return kept

        kept = self._write(finish, "retention")
        return RetentionResult(sightings_deleted=deleted, watchlist_kept=kept)

    # ------------------------------------------------------ cameras, settings

    def note_camera(self, name: str, address: str) -> None:
        """Remember a camera (upsert: the first time seen is kept). Queued; does not wait for the commit."""
        cam = check_text(name, "camera name")
        addr = check_text(address, "camera address", allow_empty=True)
        now = time.time()

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO cameras (name, address, first_seen, last_seen) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET address = excluded.address, last_seen = excluded.last_seen",
                (cam, addr, now, now),
            )

        if self._closed:
            raise GalleryError("the gallery is closed")
        self._writer.post(run, "camera note")

    def cameras(self) -> list[Camera]:
        rows = self.read(
            lambda conn: conn.execute(
                "SELECT name, address, first_seen, last_seen FROM cameras ORDER BY name"
            ).fetchall()
        )
        return [Camera(str(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in rows]

    def get_setting(self, key: str, default: Any = None) -> Any:
        """A JSON setting, or ``default`` when unset."""
        k = check_text(key, "setting key")
        row = self.read(lambda conn: conn.execute("SELECT value FROM settings WHERE key = ?", (k,)).fetchone())
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable setting."""
        k = check_text(key, "setting key")
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise GalleryError(f"setting {k!r} is not JSON: {exc}") from None

        def run(conn: sqlite3.Connection) -> None:
            sqlite_utils.Database(conn, execute_plugins=False).table("settings").upsert(
                {"key": k, "value": text}, pk="key"
            )

        self._write(run, "setting")

    # ------------------------------------------------------------- audit, backup

    def audit_log(self, *, action: str | None = None, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
        """Audit entries, newest first."""
        where, params = ("WHERE action = ?", (action,)) if action else ("", ())
        rows = self.read(
            lambda conn: conn.execute(
                f"SELECT id, time, actor, action, details FROM audit {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                (*params, int(limit), int(offset)),
            ).fetchall()
        )
        return [AuditEntry(int(r[0]), float(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]

    def audit(self, action: str, details: dict[str, Any]) -> None:
        """Record an operator action the gallery does not perform itself (e.g. an export made elsewhere)."""
        act = check_text(action, "action", max_len=100)
        self._write(lambda conn: self._audit(conn, act, details), "audit")

    def backup(self, dest: str | Path, *, overwrite: bool = False, pages: int = 1024) -> Path:
        """Copy the live gallery to ``dest`` with SQLite's online backup API, a few pages at a time so the
        writer keeps going. The copy is checked before it is put in place. Audited."""
        target = Path(dest)
        if target.is_dir():
            raise GalleryError(f"backup target {target} is a directory")
        if target.exists() and not overwrite:
            raise GalleryError(f"backup target {target} exists (pass overwrite to replace it)")
        if not target.parent.is_dir():
            raise GalleryError(f"backup folder {target.parent} does not exist")
        tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
        src = self._reader()
        try:
            out = sqlite3.connect(str(tmp), isolation_level=None)
            try:
                src.backup(out, pages=pages, sleep=0.002)
                check = out.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise GalleryError(f"the backup copy failed its check: {check}")
            finally:
                out.close()
            os.replace(tmp, target)
        except sqlite3.Error as exc:
            tmp.unlink(missing_ok=True)
            raise GalleryError(f"backup to {target} failed: {exc}") from None
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise GalleryError(f"backup to {target} failed: {exc.strerror}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._post_audit("backup", {"to": str(target)})
        return target

    def integrity_check(self) -> str:
        """``ok``, or SQLite's description of what is damaged."""
        rows = self.read(lambda conn: conn.execute("PRAGMA integrity_check").fetchall())
        return "\n".join(str(r[0]) for r in rows)

    def stats(self) -> dict[str, int]:
        """Row counts per table and the file size, for status displays."""

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            out = {
                t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                for t in ("persons", "samples", "negatives", "sightings", "sighting_crops", "audit")
            }
            out["bytes"] = self.path.stat().st_size
            return out

        return self.read(run)

    def sighting_embedding(self, sighting_id: int) -> tuple[str, npt.NDArray[np.float32]] | None:
        """The stored (model, embedding) of a sighting, or None when it has none (or no longer exists),
        for a search by face or a negative sample from a sighting."""
        row = self.read(
            lambda conn: conn.execute(
                "SELECT model, embedding FROM sighting_embeddings WHERE sighting_id = ?", (int(sighting_id),)
            ).fetchone()
        )
        if row is None:
            return None
        blob = bytes(row[1])
        return str(row[0]), blobs_to_matrix([blob], len(blob) // 4)[0].copy()
