"""The one writer thread: every change to the gallery goes through it, and sighting batches are coalesced
into one transaction each.

Jobs wait in a queue bounded by weight (one per sighting, one per other job). A producer that finds it full
waits briefly, then gets a QueueFullError naming what was not recorded: nothing is dropped silently.
A failing job is logged and reported (``errors()``, and the optional callback); the thread goes on. A sighting
batch that does not fit a full disk (or the file's page limit) is stored without its evidence snapshots, then
without its crops too, before any sighting is given up: the rows are what an investigation needs first.
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

from storage.errors import GalleryError, QueueFullError
from storage.prepare import PreparedSighting
from storage.records import WriterError

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[sqlite3.Connection], Any]
SightingInserter = Callable[[sqlite3.Connection, Sequence[PreparedSighting]], None]
ErrorTranslator = Callable[[sqlite3.Error], GalleryError]


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
        if self._on_error is not None:
            try:
                self._on_error(err)
            except Exception:
                log.exception("gallery writer: the error callback failed")

    def _transaction(self, fn: WriteFn) -> Any:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _run_call(self, job: _CallJob) -> None:
        try:
            result = self._transaction(job.fn) if job.transaction else job.fn(self._conn)
        except sqlite3.Error as exc:
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

    def _insert_one_form(self, items: Sequence[PreparedSighting]) -> BaseException | None:
        """Insert ``items`` in one transaction; the error (untranslated) or None."""
        try:
            self._transaction(lambda conn: self._insert(conn, items))
        except Exception as exc:
            return exc
        return None

    def _insert_lighter(self, items: Sequence[PreparedSighting]) -> BaseException | None:
        """The gallery is full: keep the sightings and drop their evidence snapshots first, then their crops too.
        Counted (``dropped()``); the error of the lightest form when even that does not fit, else None."""
        no_snapshot = [replace(it, snapshot=None) for it in items]
        error = self._insert_one_form(no_snapshot)
        snapshots = sum(1 for it in items if it.snapshot is not None)
        if error is None:
            self._count_dropped(snapshots, 0)
            return None
        bare = [replace(it, crop=None) for it in no_snapshot]
        error = self._insert_one_form(bare)
        if error is None:
            self._count_dropped(snapshots, sum(1 for it in items if it.crop is not None))
        return error

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
        return str(self._translate(exc)) if isinstance(exc, sqlite3.Error) else str(exc)

    def _run_sightings(self, items: list[PreparedSighting]) -> None:
        error = self._insert_one_form(items)
        if error is not None and _is_full(error):
            error = self._insert_lighter(items)
        if error is None:
            return
        if len(items) == 1:
            self._report("sighting", self._message(error), 1)
            return
        # One bad sighting must not cost its batch: retry one by one and report only the ones that fail.
        failed = 0
        last = self._message(error)
        for item in items:
            one = self._insert_one_form([item])
            if one is not None and _is_full(one):
                one = self._insert_lighter([item])
            if one is not None:
                failed += 1
                last = self._message(one)
        if failed:
            self._report("sighting batch", f"{failed} of {len(items)} sightings not recorded: {last}", failed)


def _is_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full" (the disk, or the file's page limit)."""
    return isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL
