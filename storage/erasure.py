"""Erasure and retention: deleting a person, a sample, or sightings past their retention period, with every
copy of the face data storage holds for them (sample and negative crops and embeddings, sighting crops,
embeddings and evidence snapshots, and what the integrations' outbox has not yet sent about them).

Deleted rows must not linger as bytes on disk either. The write connection runs with ``secure_delete`` on
(connection.py), so SQLite overwrites deleted content and freed pages with zeros; the old page versions in
the WAL go when it is checkpointed and truncated (:func:`truncate_wal`, after every erasure). ``VACUUM``
(:func:`vacuum`) also rebuilds the file, for a delete that must leave no trace even of the free-page layout.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from storage import counters, outbox_rows, redaction
from storage.errors import GalleryError

RETENTION_CHUNK = 20_000


def erase_person(conn: sqlite3.Connection, pid: int, *, erase_sightings: bool) -> dict[str, int]:
    """Delete a person, their samples and negatives, and the crops and embeddings of their sightings; the
    sightings themselves are deleted (``erase_sightings``) or kept as unknown. Their face is blurred in the
    other sightings' snapshots that recorded it (storage.redaction). Returns the counts."""
    windows = redaction.windows_of(conn, pid)
    mine = "(SELECT id FROM sightings WHERE person_id = ?)"
    crops = conn.execute(f"DELETE FROM sighting_crops WHERE sighting_id IN {mine}", (pid,)).rowcount
    embeddings = conn.execute(f"DELETE FROM sighting_embeddings WHERE sighting_id IN {mine}", (pid,)).rowcount
    snapshots = conn.execute(f"DELETE FROM sighting_snapshots WHERE sighting_id IN {mine}", (pid,)).rowcount
    if erase_sightings:
        sightings = conn.execute("DELETE FROM sightings WHERE person_id = ?", (pid,)).rowcount
    else:
        sightings = conn.execute("UPDATE sightings SET person_id = NULL WHERE person_id = ?", (pid,)).rowcount
    samples = conn.execute("DELETE FROM samples WHERE person_id = ?", (pid,)).rowcount
    negatives = conn.execute("DELETE FROM negatives WHERE person_id = ?", (pid,)).rowcount
    name = conn.execute("SELECT name FROM persons WHERE id = ?", (pid,)).fetchone()
    owed = 0 if name is None else outbox_rows.forget_person(conn, str(name[0]), "person_deleted")  # not yet sent
    conn.execute("DELETE FROM persons WHERE id = ?", (pid,))
    blurred = redaction.redact_stored(conn, windows)
    redaction.remember_erased(conn, windows)
    redaction.redirect(conn, pid, None)
    return {
        "snapshots_blurred": blurred,
        "outbox": owed,
        "samples": int(samples),
        "negatives": int(negatives),
        "sightings": int(sightings),
        "sighting_crops": int(crops),
        "sighting_embeddings": int(embeddings),
        "sighting_snapshots": int(snapshots),
    }


def delete_sample(conn: sqlite3.Connection, sample_id: int) -> int:
    """Delete one sample (embedding and crop); returns the id of the person it belonged to."""
    row = conn.execute("SELECT person_id FROM samples WHERE id = ?", (int(sample_id),)).fetchone()
    if row is None:
        raise GalleryError(f"no sample with id {int(sample_id)}")
    conn.execute("DELETE FROM samples WHERE id = ?", (int(sample_id),))
    return int(row[0])


def delete_image(conn: sqlite3.Connection, image_id: int) -> tuple[int, list[int]]:
    """Delete one enrolled photo: its sample of every model. Returns (person id, the sample ids deleted)."""
    rows = conn.execute(
        "SELECT id, person_id FROM samples WHERE coalesce(image_id, id) = ? ORDER BY id", (int(image_id),)
    ).fetchall()
    if not rows:
        raise GalleryError(f"no enrolled image with id {int(image_id)}")
    conn.execute("DELETE FROM samples WHERE coalesce(image_id, id) = ?", (int(image_id),))
    return int(rows[0][1]), [int(r[0]) for r in rows]


def _expired(keep_watchlist: bool) -> str:
    keep = "AND (person_id IS NULL OR person_id NOT IN (SELECT id FROM persons WHERE watchlist = 1))"
    return f"started < ? {keep if keep_watchlist else ''}"


def delete_expired(conn: sqlite3.Connection, cutoff: float, *, keep_watchlist: bool, limit: int) -> int:
    """Delete up to ``limit`` sightings that started before ``cutoff``; their crops, embeddings and snapshots
    go with them (ON DELETE CASCADE, foreign keys are on). Returns how many were deleted."""
    n = conn.execute(
        f"DELETE FROM sightings WHERE id IN (SELECT id FROM sightings WHERE {_expired(keep_watchlist)} LIMIT ?)",
        (cutoff, int(limit)),
    ).rowcount
    return int(n)


def delete_expired_in_chunks(
    write: Callable[[Callable[[sqlite3.Connection], int]], int], cutoff: float, *, keep_watchlist: bool
) -> int:
    """Delete every sighting that started before ``cutoff``, RETENTION_CHUNK per write transaction (through
    the writer, so live inserts interleave), bumping the sightings epoch; returns how many were deleted."""
    deleted = 0
    for _ in range(100_000):

        def chunk(conn: sqlite3.Connection) -> int:
            n = delete_expired(conn, cutoff, keep_watchlist=keep_watchlist, limit=RETENTION_CHUNK)
            if n:
                counters.bump(conn, counters.SIGHTINGS_EPOCH)
            return n

        n = write(chunk)
        deleted += n
        if n < RETENTION_CHUNK:
            break
    return deleted


def watchlist_kept(conn: sqlite3.Connection, cutoff: float) -> int:
    """Sightings older than ``cutoff`` kept because their person is on the watchlist."""
    return int(
        conn.execute(
            "SELECT count(*) FROM sightings WHERE started < ? AND person_id IN "
            "(SELECT id FROM persons WHERE watchlist = 1)",
            (cutoff,),
        ).fetchone()[0]
    )


def truncate_wal(conn: sqlite3.Connection) -> bool:
    """Checkpoint the WAL into the file and truncate it to zero bytes (outside a transaction). False when a
    reader kept it from completing: the old page versions then stay in the WAL until a later checkpoint."""
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy


def vacuum(conn: sqlite3.Connection) -> None:
    """Rebuild the file (so freed pages keep no old bytes) and truncate the WAL (outside a transaction)."""
    conn.execute("VACUUM")
    if not truncate_wal(conn):
        raise GalleryError("VACUUM done, but a reader kept the WAL from being emptied: try again")
