"""Enrolled people and their faces: persons, samples ("this is X"), negatives ("this is not X"), the
embedding models, and the per-model matrices the matcher is built from.

Plain functions on a connection. ``Gallery`` runs them on the writer thread or in a reader snapshot and
wraps each change with the revision bump and the audit entry.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from storage import redaction
from storage.codec import blobs_to_matrix, check_text, is_int
from storage.errors import GalleryError
from storage.records import EnrolledImage, Person, Sample, SampleMatrix

PersonRef = str | int
FaceTable = Literal["samples", "negatives"]

_PERSON = (
    "SELECT p.id, p.name, p.notes, p.watchlist, p.created, "
    "(SELECT count(*) FROM samples s WHERE s.person_id = p.id), "
    "(SELECT count(*) FROM negatives n WHERE n.person_id = p.id), "
    "(SELECT count(DISTINCT coalesce(s.image_id, s.id)) FROM samples s WHERE s.person_id = p.id) FROM persons p"
)


def _person(r: Sequence[Any]) -> Person:
    return Person(int(r[0]), str(r[1]), str(r[2]), bool(r[3]), float(r[4]), int(r[5]), int(r[6]), int(r[7]))


def person_id(conn: sqlite3.Connection, person: PersonRef) -> int:
    """The id of a person given by id or by name (case-insensitive); GalleryError when there is none."""
    if is_int(person):
        row = conn.execute("SELECT id FROM persons WHERE id = ?", (int(person),)).fetchone()
        if row is None:
            raise GalleryError(f"no person with id {int(person)}")
        return int(row[0])
    name = check_text(person, "person name")
    found = find(conn, name)
    if found is None:
        raise GalleryError(f"no person named {name!r}")
    return found


def find(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT id FROM persons WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
    return None if row is None else int(row[0])


def name_of(conn: sqlite3.Connection, pid: int) -> str:
    return str(conn.execute("SELECT name FROM persons WHERE id = ?", (pid,)).fetchone()[0])


def create(conn: sqlite3.Connection, name: str) -> int:
    """A new person; never with the id of one erased or merged away (sightings still queued may name it)."""
    cur = conn.execute(
        "INSERT INTO persons (id, name, created) VALUES (1 + max(coalesce((SELECT max(id) FROM persons), 0), "
        "coalesce((SELECT max(old_id) FROM person_redirects), 0)), ?, ?)",
        (name, time.time()),
    )
    return int(cur.lastrowid or 0)


def all_persons(conn: sqlite3.Connection) -> list[Person]:
    """Every person with their sample and negative counts, by name."""
    return [_person(r) for r in conn.execute(f"{_PERSON} ORDER BY p.name COLLATE NOCASE")]


def by_id(conn: sqlite3.Connection, pid: int) -> Person:
    return _person(conn.execute(f"{_PERSON} WHERE p.id = ?", (pid,)).fetchone())


def samples_of(conn: sqlite3.Connection, pid: int) -> list[Sample]:
    rows = conn.execute(
        "SELECT id, person_id, model, source, quality, created, coalesce(image_id, id) FROM samples "
        "WHERE person_id = ? ORDER BY id",
        (pid,),
    ).fetchall()
    return [Sample(int(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4]), float(r[5]), int(r[6])) for r in rows]


def images_of(conn: sqlite3.Connection, pid: int) -> list[EnrolledImage]:
    """The photos enrolled for a person, oldest first: each one's samples (one per model) behind one entry."""
    by_image: dict[int, list[Sample]] = {}
    for sample in samples_of(conn, pid):
        by_image.setdefault(sample.image_id, []).append(sample)
    return [
        EnrolledImage(
            id=image,
            person_id=pid,
            source=group[0].source,
            quality=group[0].quality,  # measured on the photo by the first model (the live one)
            created=group[0].created,
            sample_ids=tuple(x.id for x in group),
            models=tuple(x.model for x in group),
        )
        for image, group in by_image.items()
    ]


def image_person(conn: sqlite3.Connection, image_id: int) -> int | None:
    """The person whose photo ``image_id`` is, or None when no sample has it."""
    row = conn.execute(
        "SELECT person_id FROM samples WHERE coalesce(image_id, id) = ? LIMIT 1", (int(image_id),)
    ).fetchone()
    return None if row is None else int(row[0])


def ensure_model(conn: sqlite3.Connection, model: str, dim: int) -> None:
    """Register ``model`` with ``dim`` values, or refuse a dimension that differs from the stored one."""
    row = conn.execute("SELECT dim FROM models WHERE name = ?", (model,)).fetchone()
    if row is None:
        conn.execute("INSERT INTO models (name, dim) VALUES (?, ?)", (model, dim))
    elif int(row[0]) != dim:
        raise GalleryError(f"model {model!r} embeddings have {int(row[0])} values; this one has {dim}")


def model_dims(conn: sqlite3.Connection) -> dict[str, int]:
    return {str(n): int(d) for n, d in conn.execute("SELECT name, dim FROM models")}


def model_dim(conn: sqlite3.Connection, model: str) -> int | None:
    row = conn.execute("SELECT dim FROM models WHERE name = ?", (model,)).fetchone()
    return None if row is None else int(row[0])


def add_sample(
    conn: sqlite3.Connection,
    pid: int,
    model: str,
    blob: bytes,
    crop: bytes | None,
    source: str,
    quality: float,
    image_id: int | None = None,
) -> int:
    """A sample of photo ``image_id`` (another model's sample of the same photo), or of a new photo (None)."""
    cur = conn.execute(
        "INSERT INTO samples (person_id, model, embedding, crop, source, quality, created, image_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (pid, model, blob, crop, source, quality, time.time(), image_id),
    )
    sample_id = int(cur.lastrowid or 0)
    if image_id is None:
        conn.execute("UPDATE samples SET image_id = id WHERE id = ?", (sample_id,))
    return sample_id


def add_negative(conn: sqlite3.Connection, pid: int, model: str, blob: bytes, crop: bytes | None, source: str) -> int:
    cur = conn.execute(
        "INSERT INTO negatives (person_id, model, embedding, crop, source, created) VALUES (?, ?, ?, ?, ?, ?)",
        (pid, model, blob, crop, source, time.time()),
    )
    return int(cur.lastrowid or 0)


def person_of_sample(conn: sqlite3.Connection, sample_id: int) -> int | None:
    row = conn.execute("SELECT person_id FROM samples WHERE id = ?", (int(sample_id),)).fetchone()
    return None if row is None else int(row[0])


def sample_crop(conn: sqlite3.Connection, sample_id: int) -> bytes | None:
    row = conn.execute("SELECT crop FROM samples WHERE id = ?", (int(sample_id),)).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


def rename(conn: sqlite3.Connection, pid: int, name: str) -> None:
    """Refuses a name another person already has."""
    clash = conn.execute("SELECT id FROM persons WHERE name = ? COLLATE NOCASE AND id != ?", (name, pid)).fetchone()
    if clash is not None:
        raise GalleryError(f"a person named {name!r} already exists: merge them instead")
    conn.execute("UPDATE persons SET name = ? WHERE id = ?", (name, pid))


def set_notes(conn: sqlite3.Connection, pid: int, text: str) -> None:
    conn.execute("UPDATE persons SET notes = ? WHERE id = ?", (text, pid))


def merge(conn: sqlite3.Connection, src: int, dst: int) -> dict[str, int]:
    """Move every sample, negative and sighting of ``src`` to ``dst`` and delete ``src``; the watchlist flag
    (kept by triggers from the lists, which the caller moved first) is kept if either had it, the notes are
    joined. Returns the rows moved per table."""
    moved = {
        table: int(conn.execute(f"UPDATE {table} SET person_id = ? WHERE person_id = ?", (dst, src)).rowcount)
        for table in ("samples", "negatives", "sightings")
    }
    conn.execute(
        "UPDATE persons SET watchlist = max(watchlist, (SELECT watchlist FROM persons WHERE id = ?)), "
        "notes = trim(notes || char(10) || (SELECT notes FROM persons WHERE id = ?)) WHERE id = ?",
        (src, src, dst),
    )
    conn.execute("DELETE FROM persons WHERE id = ?", (src,))
    redaction.redirect(conn, src, dst)  # sightings still queued for ``src`` go to ``dst``
    return moved


def matrix(conn: sqlite3.Connection, model: str, table: FaceTable, revision: int) -> SampleMatrix:
    """Every row of ``table`` for ``model``, one embedding per row (raw, not normalised), in id order."""
    dim = model_dim(conn, model) or 0
    rows = conn.execute(
        f"SELECT t.person_id, p.name, p.watchlist, t.embedding FROM {table} t "
        "JOIN persons p ON p.id = t.person_id WHERE t.model = ? ORDER BY t.id",
        (model,),
    ).fetchall()
    return SampleMatrix(
        person_ids=np.array([r[0] for r in rows], dtype=np.int64),
        names=tuple(str(r[1]) for r in rows),
        embeddings=blobs_to_matrix([r[3] for r in rows], dim),
        watchlist=np.array([bool(r[2]) for r in rows], dtype=np.bool_),
        revision=revision,
    )
