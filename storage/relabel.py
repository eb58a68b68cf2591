"""A history that corrects itself, on the gallery's side: past unknown sightings named as a person in one
batch (the station finds which: station/relabel_offer.py), audited, and reversible. ``Gallery.relabels`` is
this facade; the SQL is in storage/relabel_sql.py.

Relabelling runs on the gallery's one writer thread, between sighting batches, and changes only the rows it
names (and only while they are still unknown): sightings being written meanwhile are all kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from storage import people
from storage import relabel_sql as sql
from storage.codec import check_number, check_text
from storage.core import GalleryCore
from storage.errors import GalleryError
from storage.people import PersonRef
from storage.relabel_records import RelabelBatch

MAX_BATCH = 10_000


class Relabels:
    """See the module docstring."""

    def __init__(self, core: GalleryCore) -> None:
        self._core = core

    def apply(self, person: PersonRef, items: Sequence[tuple[int, float]], *, reason: str = "") -> RelabelBatch:
        """Name these past sightings (id, the score they now match with) as ``person``, in one step: those still
        unknown are relabelled, any other is skipped. Audited; undo with :meth:`undo`."""
        if not items:
            raise GalleryError("no sightings to relabel")
        if len(items) > MAX_BATCH:
            raise GalleryError(f"at most {MAX_BATCH} sightings in one relabelling")
        checked = [(int(sid), check_number(score, "score")) for sid, score in items]
        why = check_text(reason, "reason", max_len=500, allow_empty=True)

        def run(conn: sqlite3.Connection) -> RelabelBatch:
            pid = people.person_id(conn, person)
            batch, done, skipped = sql.apply(conn, pid, checked, self._core.actor, why)
            details = {"person": people.name_of(conn, pid), "person_id": pid, "relabel_id": batch}
            self._core._audit(conn, "relabel", {**details, "sightings": done, "skipped": skipped, "reason": why})
            return sql.batches(conn, None, 1)[0]

        return self._core._write(run, "relabelling")

    def undo(self, batch: int) -> list[int]:
        """Put a relabelling's sightings back as they were (those still named as its person); audited."""

        def run(conn: sqlite3.Connection) -> list[int]:
            pid, back = sql.undo(conn, batch, self._core.actor)
            self._core._audit(conn, "relabel_undone", {"relabel_id": int(batch), "person_id": pid, "sightings": back})
            return back

        return self._core._write(run, "undoing a relabelling")

    def batches(self, person: PersonRef | None = None, *, limit: int = 100) -> list[RelabelBatch]:
        """The relabellings, newest first (of one person, or all)."""

        def run(conn: sqlite3.Connection) -> list[RelabelBatch]:
            pid = None if person is None else people.person_id(conn, person)
            return sql.batches(conn, pid, limit)

        return self._core.read(run)
