"""The SQL of relabelling past sightings (storage/relabel.py is the facade)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from storage.errors import GalleryError
from storage.relabel_records import RelabelBatch


def apply(
    conn: sqlite3.Connection, pid: int, items: Sequence[tuple[int, float]], actor: str, reason: str
) -> tuple[int, list[int], list[int]]:
    """Name the still-unknown sightings of ``items`` (id, score) as person ``pid``, as one batch. Returns the
    batch id, the sightings relabelled, and those skipped (gone, or no longer unknown)."""
    cur = conn.execute(
        "INSERT INTO relabels (time, actor, person_id, reason) VALUES (?, ?, ?, ?)", (time.time(), actor, pid, reason)
    )
    batch = int(cur.lastrowid or 0)
    done: list[int] = []
    skipped: list[int] = []
    for sid, score in items:
        changed = conn.execute(
            "UPDATE sightings SET person_id = ? WHERE id = ? AND person_id IS NULL", (pid, int(sid))
        ).rowcount
        if not changed:
            skipped.append(int(sid))
            continue
        conn.execute(
            "INSERT INTO relabel_sightings (relabel_id, sighting_id, from_person_id, score) VALUES (?, ?, NULL, ?)",
            (batch, int(sid), float(score)),
        )
        done.append(int(sid))
    return batch, done, skipped


def undo(conn: sqlite3.Connection, batch: int, actor: str) -> tuple[int, list[int]]:
    """Put a batch's sightings back as they were (those still named as the batch's person); returns the
    batch's person and the sightings put back."""
    row = conn.execute("SELECT person_id, undone FROM relabels WHERE id = ?", (int(batch),)).fetchone()
    if row is None:
        raise GalleryError(f"no relabelling with id {int(batch)}")
    if row[1] is not None:
        raise GalleryError(f"relabelling {int(batch)} was already undone")
    pid = int(row[0])
    back: list[int] = []
    for sid, before in conn.execute(
        "SELECT sighting_id, from_person_id FROM relabel_sightings WHERE relabel_id = ?", (int(batch),)
    ).fetchall():
        changed = conn.execute(
            "UPDATE sightings SET person_id = ? WHERE id = ? AND person_id = ?", (before, int(sid), pid)
        ).rowcount
        if changed:
            back.append(int(sid))
    conn.execute("UPDATE relabels SET undone = ?, undone_by = ? WHERE id = ?", (time.time(), actor, int(batch)))
    return pid, back


def batches(conn: sqlite3.Connection, pid: int | None, limit: int) -> list[RelabelBatch]:
    where, params = ("WHERE r.person_id = ?", (pid,)) if pid is not None else ("", ())
    rows = conn.execute(
        "SELECT r.id, r.time, r.actor, r.person_id, r.reason, r.undone, r.undone_by, "
        "(SELECT group_concat(s.sighting_id) FROM relabel_sightings s WHERE s.relabel_id = r.id) "
        f"FROM relabels r {where} ORDER BY r.id DESC LIMIT ?",
        (*params, int(limit)),
    ).fetchall()
    return [
        RelabelBatch(
            id=int(r[0]),
            time=float(r[1]),
            actor=str(r[2]),
            person_id=None if r[3] is None else int(r[3]),
            reason=str(r[4]),
            undone=None if r[5] is None else float(r[5]),
            undone_by=None if r[6] is None else str(r[6]),
            sighting_ids=tuple(sorted(int(x) for x in str(r[7]).split(","))) if r[7] else (),
        )
        for r in rows
    ]
