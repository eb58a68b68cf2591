"""The one writer thread: every change to the gallery goes through it, and sighting batches are coalesced
into one transaction each.

Jobs wait in a queue bounded by weight (one per sighting, one per other job). A producer that finds it full
waits briefly, then gets a QueueFullError naming what was not recorded: nothing is dropped silently.
A failing job is logged and reported (``errors()``, and the optional callback); the thread goes on. A sighting
batch that does not fit a full disk (or the file's page limit) is stored without its evidence snapshots, then
without its crops too, before any sighting is given up: the rows are what an investigation needs first.

Listeners hear, on the writer thread and only after the commit, of each sighting batch recorded (with the
rows' ids: an event names the sighting, an API serves its crop) and of each audit entry written (a gallery
change, as events). They must be quick (hand off and return); one that raises is logged and skipped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from storage import sql
from storage.errors import GalleryError, QueueFullError
from storage.prepare import PreparedSighting
from storage.records import AuditEntry, Inserted, RecordedSighting, WriterError

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[sqlite3.Connection], Any]
# Each sighting's new id (None: dropped, its person erased meanwhile), and whether stored data of an erased
# person was rewritten: a WAL checkpoint then follows the commit.
SightingInserter = Callable[[sqlite3.Connection, Sequence[PreparedSighting]], Inserted]
RecordedListener = Callable[[Sequence[RecordedSighting]], None]
AuditListener = Callable[[AuditEntry], None]
ErrorListener = Callable[[WriterError], None]
ErrorTranslator = Callable[[sql.Error], GalleryError]


@dataclass(frozen=True)
class _SightingJob:
    items: tuple[PreparedSighting, ...]


@dataclass(frozen=True)
class _CallJob:
    fn: WriteFn
    label: str
    transaction: bool
    future: Future[Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class _StopJob:
    pass


_Job = _SightingJob | _CallJob | _StopJob


class CommitHooks:
    """Who hears what the writer did, on its thread: failures, and after each commit the sightings recorded
    (with their ids) and the audit entries written. Listeners must be quick; one that raises is logged."""

    def __init__(self) -> None:
        self.error: tuple[ErrorListener, ...] = ()
        self.recorded: tuple[RecordedListener, ...] = ()
        self.audit: tuple[AuditListener, ...] = ()

    def on_error(self, listener: ErrorListener) -> None:
        self.error = (*self.error, listener)

    def on_recorded(self, listener: RecordedListener) -> None:
        """``listener(sightings)`` after each committed batch: camera, track and row id of each sighting."""
        self.recorded = (*self.recorded, listener)

    def on_audited(self, listener: AuditListener) -> None:
        """``listener(entry)`` for each audit entry (a gallery change) once its transaction committed."""
        self.audit = (*self.audit, listener)

    @staticmethod
    def announce(listeners: Sequence[Callable[[Any], None]], value: object, what: str) -> None:
        for listener in listeners:
            try:
                listener(value)
            except Exception:
                log.exception("gallery writer: a %s listener failed", what)


class WriterThread:
    """Owns the write connection; runs queued jobs one at a time, oldest first."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        insert_sightings: SightingInserter,
        translate: ErrorTranslator,
        *,
        capacity: int = 20_000,
        max_batch: int = 2_000,
        put_wait_s: float = 2.0,
        on_error: Callable[[WriterError], None] | None = None,
    ) -> None:
        self._conn = conn
        self._insert = insert_sightings
        self._translate = translate
        self._capacity = capacity
        self._max_batch = max_batch
        self._put_wait_s = put_wait_s
        self._on_error = on_error
        self._cond = threading.Condition()
        self._jobs: deque[tuple[int, int, _Job]] = deque()  # (seq, weight, job)
        self._weight = 0
        self._seq = 0
        self._done_seq = 0
        self._errors: deque[WriterError] = deque(maxlen=200)
        self._error_count = 0
        self._dropped = (0, 0)  # (snapshots, crops) left out to keep sightings in a full gallery
        self._stopping = False
        self.hooks = CommitHooks()
        self._audited: list[AuditEntry] = []  # written by the running job, announced once it commits
        self._thread = threading.Thread(target=self._run, name="gallery-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ producers

    def _put(self, job: _Job, weight: int, what: str) -> int:
        deadline = time.monotonic() + self._put_wait_s
        with self._cond:
            if self._stopping:
                raise GalleryError("the gallery is closed")
            while self._weight > 0 and self._weight + weight > self._capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise QueueFullError(
                        f"the gallery writer is {self._weight} items behind (capacity {self._capacity}): "
                        f"{what} not recorded"
                    )
                self._cond.wait(left)
                if self._stopping:
                    raise GalleryError("the gallery is closed")
            self._seq += 1
            self._jobs.append((self._seq, weight, job))
            self._weight += weight
            self._cond.notify_all()
            return self._seq

    def put_sightings(self, items: Sequence[PreparedSighting]) -> None:
        for start in range(0, len(items), self._max_batch):
            chunk = tuple(items[start : start + self._max_batch])
            self._put(_SightingJob(chunk), len(chunk), f"{len(items) - start} sightings were")

    def call(self, fn: Callable[[sqlite3.Connection], T], label: str, *, transaction: bool = True) -> T:
        """Run ``fn`` on the writer thread inside one transaction, and return its result (or raise its error)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("gallery write called from the writer thread itself")
        future: Future[Any] = Future()
        self._put(_CallJob(fn, label, transaction, future), 1, f"the {label}")
        while True:
            try:
                return future.result(timeout=1.0)  # type: ignore[no-any-return]
            except TimeoutError:
                if not self._thread.is_alive():
                    raise GalleryError("the gallery writer has stopped") from None

    def post(self, fn: WriteFn, label: str) -> None:
        """Queue ``fn`` without waiting for it; a failure is reported like a failed sighting batch."""
        self._put(_CallJob(fn, label, True, None), 1, f"the {label}")

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job queued before this call is committed (or has failed and been reported)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._seq
            while self._done_seq < target:
                if not self._thread.is_alive():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.5 if left is None else min(left, 0.5))
            return True

    def pending(self) -> int:
        with self._cond:
            return self._weight

    def errors(self) -> list[WriterError]:
        with self._cond:
            return list(self._errors)

    def error_count(self) -> int:
        with self._cond:
            return self._error_count

    def stop(self, timeout: float = 30.0) -> bool:
        """Finish what is queued, then end the thread. True when it ended in time."""
        with self._cond:
            if not self._stopping:
                self._seq += 1
                self._jobs.append((self._seq, 0, _StopJob()))
                self._stopping = True
                self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------ listeners

    def audited(self, entry: AuditEntry) -> AuditEntry:
        """Called by a job on the writer thread for each audit entry it wrote: announced after its commit."""
        self._audited.append(entry)
        return entry

    def _committed(self) -> None:
        entries, self._audited = self._audited, []
        for entry in entries:
            self.hooks.announce(self.hooks.audit, entry, "audit")

    def _recorded(self, items: Sequence[PreparedSighting], ids: Sequence[int | None]) -> None:
        if self.hooks.recorded:
            done = [
                RecordedSighting(str(it.row[0]), str(it.row[10]), sid, it.crop is not None, it.snapshot is not None)
                for it, sid in zip(items, ids, strict=True)
            ]
            self.hooks.announce(self.hooks.recorded, done, "recorded-sightings")

    # --------------------------------------------------------------- thread

    def _take(self) -> list[tuple[int, int, _Job]]:
        with self._cond:
            while not self._jobs:
                self._cond.wait()
            first = self._jobs.popleft()
            batch = [first]
            if isinstance(first[2], _SightingJob):
                count = len(first[2].items)
                while self._jobs and isinstance(self._jobs[0][2], _SightingJob):
                    nxt = self._jobs[0][2]
                    assert isinstance(nxt, _SightingJob)
                    if count + len(nxt.items) > self._max_batch:
                        break
                    batch.append(self._jobs.popleft())
                    count += len(nxt.items)
            return batch

    def _finish(self, batch: list[tuple[int, int, _Job]]) -> None:
        with self._cond:
            self._weight -= sum(w for _, w, _ in batch)
            self._done_seq = batch[-1][0]
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            batch = self._take()
            job = batch[0][2]
            try:
                if isinstance(job, _StopJob):
                    return
                if isinstance(job, _CallJob):
                    self._run_call(job)
                else:
                    items = [it for _, _, j in batch if isinstance(j, _SightingJob) for it in j.items]
                    self._run_sightings(items)
            except BaseException as exc:  # the writer never dies of one job
                log.exception("gallery writer: unexpected failure")
                self._report("writer", f"{type(exc).__name__}: {exc}", 0)
            finally:
                self._finish(batch)

    def _report(self, what: str, message: str, count: int) -> None:
        err = WriterError(time=time.time(), what=what, message=message, count=count)
        with self._cond:
            self._errors.append(err)
            self._error_count += 1
        log.error("gallery writer: %s failed (%d items): %s", what, count, message)
        callbacks = self.hooks.error if self._on_error is None else (self._on_error, *self.hooks.error)
        self.hooks.announce(callbacks, err, "error")

    def _transaction(self, fn: WriteFn) -> Any:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            self._audited.clear()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._committed()
        return result

    def _run_call(self, job: _CallJob) -> None:
        try:
            result = self._transaction(job.fn) if job.transaction else job.fn(self._conn)
        except sql.Error as exc:
            error: BaseException = self._translate(exc)
            if job.future is None:
                self._report(job.label, str(error), 1)
            else:
                job.future.set_exception(error)
        except Exception as exc:
            if job.future is None:
                self._report(job.label, str(exc), 1)
            else:
                job.future.set_exception(exc)
        else:
            if job.future is not None:
                job.future.set_result(result)

    def _checkpoint(self) -> None:
        """Fold the WAL into the file and empty it, so the old page versions of what was just rewritten (an
        erased face blurred out of a snapshot) leave the disk now; a reader in the way only delays that."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sql.Error as exc:
            log.warning("gallery writer: WAL checkpoint after an erasure failed: %s", exc)

    def _insert_form(self, items: Sequence[PreparedSighting]) -> Inserted | Exception:
        """Insert ``items`` in one transaction: their ids (None: dropped, the person erased), or the error
        (untranslated). A WAL checkpoint follows an insert that rewrote an erased person's snapshots."""
        try:
            done: Inserted = self._transaction(lambda conn: self._insert(conn, items))
        except Exception as exc:
            return exc
        if done.rewrote:
            self._checkpoint()
        return done

    def _insert_fitting(
        self, items: Sequence[PreparedSighting]
    ) -> tuple[Sequence[PreparedSighting], Inserted | Exception]:
        """Insert ``items`` as they are or, when the gallery is full, lighter: (what was stored, ids or error)."""
        result = self._insert_form(items)
        if isinstance(result, Exception) and _is_full(result):
            return self._insert_lighter(items)
        return items, result

    def _insert_lighter(
        self, items: Sequence[PreparedSighting]
    ) -> tuple[Sequence[PreparedSighting], Inserted | Exception]:
        """The gallery is full: keep the sightings and drop their evidence snapshots first, then their crops too.
        Counted (``dropped()``)."""
        snapshots = sum(1 for it in items if it.snapshot is not None)
        no_snapshot = [replace(it, snapshot=None) for it in items]
        result = self._insert_form(no_snapshot)
        if not isinstance(result, Exception):
            self._count_dropped(snapshots, 0)
            return no_snapshot, result
        bare = [replace(it, crop=None) for it in no_snapshot]
        result = self._insert_form(bare)
        if not isinstance(result, Exception):
            self._count_dropped(snapshots, sum(1 for it in items if it.crop is not None))
        return bare, result

    def _count_dropped(self, snapshots: int, crops: int) -> None:
        with self._cond:
            self._dropped = (self._dropped[0] + snapshots, self._dropped[1] + crops)
        log.warning(
            "gallery writer: the gallery is full; %d sightings kept without %s",
            snapshots if not crops else max(snapshots, crops),
            "their snapshots" if not crops else "their snapshots and crops",
        )

    def dropped(self) -> tuple[int, int]:
        """(snapshots, crops) left out of sightings to keep the sightings themselves when the gallery was full."""
        with self._cond:
            return self._dropped

    def _message(self, exc: BaseException) -> str:
        return str(self._translate(exc)) if isinstance(exc, sql.Error) else str(exc)

    def _run_sightings(self, items: list[PreparedSighting]) -> None:
        stored, result = self._insert_fitting(items)
        if not isinstance(result, Exception):
            self._recorded(stored, result.ids)
            return
        if len(items) == 1:
            self._report("sighting", self._message(result), 1)
            self._recorded(items, [None])
            return
        # One bad sighting must not cost its batch: retry one by one and report only the ones that fail.
        outcomes = [self._insert_fitting([item]) for item in items]
        failed = [self._message(r) for _, r in outcomes if isinstance(r, Exception)]
        if failed:
            message = f"{len(failed)} of {len(items)} sightings not recorded: {failed[-1]}"
            self._report("sighting batch", message, len(failed))
        kept = [form[0] for form, _ in outcomes]
        self._recorded(kept, [None if isinstance(r, Exception) else r.ids[0] for _, r in outcomes])


def _is_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full" (the disk, or the file's page limit)."""
    return isinstance(exc, sql.Error) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL
