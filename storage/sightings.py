"""Sightings and the history: who was seen where and when. The stored columns and how a row becomes a
``Sighting``, the filter every history reader shares (the page, the CLI, the exports), and the batch insert
the writer thread runs.

Crops and embeddings live in tables of their own beside ``sightings`` (see schema.py), so a history scan
reads small rows; they are fetched one sighting or one chunk at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from storage import people
from storage.codec import check_number, check_text, is_int
from storage.errors import GalleryError
from storage.people import PersonRef
from storage.prepare import PreparedSighting
from storage.records import Sighting, Snapshot
from storage.timeutil import TimeLike, iso, to_epoch

MAX_PAGE = 10_000
_CHUNK = 500

SIGHTING_COLUMNS = (
    "s.id, s.camera, s.started, s.ended, s.person_id, p.name, s.score, s.box_x, s.box_y, s.box_w, s.box_h, "
    "EXISTS (SELECT 1 FROM sighting_crops c WHERE c.sighting_id = s.id), s.model, s.track, "
    "EXISTS (SELECT 1 FROM sighting_snapshots v WHERE v.sighting_id = s.id)"
)
SIGHTING_FROM = "sightings s LEFT JOIN persons p ON p.id = s.person_id"


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
        has_snapshot=bool(row[14]),
    )


@dataclass(frozen=True)
class SightingFilter:
    """A history filter; None (or False) means "any". ``since`` is inclusive, ``until`` exclusive (start)."""

    person: PersonRef | None = None
    camera: str | None = None
    since: TimeLike | None = None
    until: TimeLike | None = None
    unknown_only: bool = False
    min_score: float | None = None


@dataclass(frozen=True)
class HistoryQuery:
    """A history filter as SQL: ``where`` (with ``?`` placeholders) and its ``params``; ``details`` for the audit."""

    where: str
    params: tuple[Any, ...]
    details: dict[str, Any]


def build_query(conn: sqlite3.Connection, f: SightingFilter) -> HistoryQuery:
    """Check ``f`` (a named person must exist) and turn it into a WHERE clause."""
    where: list[str] = []
    params: list[Any] = []
    details: dict[str, Any] = {}
    if f.person is not None and f.unknown_only:
        raise GalleryError("choose a person or unknown faces, not both")
    if f.person is not None:
        where.append("s.person_id = ?")
        params.append(people.person_id(conn, f.person))
        details["person"] = f.person if isinstance(f.person, str) else int(f.person)
    if f.unknown_only:
        where.append("s.person_id IS NULL")
        details["unknown_only"] = True
    if f.camera is not None:
        where.append("s.camera = ?")
        params.append(check_text(f.camera, "camera"))
        details["camera"] = f.camera
    if f.since is not None:
        t0 = to_epoch(f.since, "since")
        where.append("s.started >= ?")
        params.append(t0)
        details["since"] = iso(t0)
    if f.until is not None:
        t1 = to_epoch(f.until, "until")
        where.append("s.started < ?")
        params.append(t1)
        details["until"] = iso(t1)
    if f.min_score is not None:
        where.append("s.score >= ?")
        params.append(check_number(f.min_score, "min_score"))
        details["min_score"] = float(f.min_score)
    return HistoryQuery(" AND ".join(where) or "1", tuple(params), details)


def check_page(limit: int, offset: int) -> None:
    if not is_int(limit) or not 1 <= limit <= MAX_PAGE:
        raise GalleryError(f"limit must be 1..{MAX_PAGE}")
    if not is_int(offset) or offset < 0:
        raise GalleryError("offset must be zero or more")


def select(
    conn: sqlite3.Connection, q: HistoryQuery, *, newest_first: bool, limit: int | None = None, offset: int = 0
) -> Iterator[Sighting]:
    """The sightings matching ``q``, newest or oldest first, streamed (an export reads them all)."""
    order = "DESC" if newest_first else "ASC"
    sql = f"SELECT {SIGHTING_COLUMNS} FROM {SIGHTING_FROM} WHERE {q.where} ORDER BY s.started {order}, s.id {order}"
    params: tuple[Any, ...] = q.params
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = (*params, int(limit), int(offset))
    for row in conn.execute(sql, params):
        yield sighting_from_row(row)


def by_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> list[Sighting]:
    """The sightings with these ids that still exist, in the order given."""
    wanted = [int(i) for i in ids]
    found: dict[int, Sighting] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for r in conn.execute(f"SELECT {SIGHTING_COLUMNS} FROM {SIGHTING_FROM} WHERE s.id IN ({marks})", chunk):
            s = sighting_from_row(r)
            found[s.id] = s
    return [found[i] for i in wanted if i in found]


def of_track(conn: sqlite3.Connection, camera: str, track: str, since: float) -> Sighting | None:
    """The sighting recorded for ``camera``'s track ``track`` (started at or after ``since``), if any yet."""
    row = conn.execute(
        f"SELECT {SIGHTING_COLUMNS} FROM {SIGHTING_FROM} WHERE s.camera = ? AND s.started >= ? AND s.track = ? "
        "ORDER BY s.started DESC LIMIT 1",
        (camera, since, track),
    ).fetchone()
    return None if row is None else sighting_from_row(row)


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM sightings").fetchone()[0])


def crop(conn: sqlite3.Connection, sighting_id: int) -> bytes | None:
    row = conn.execute("SELECT jpeg FROM sighting_crops WHERE sighting_id = ?", (int(sighting_id),)).fetchone()
    return None if row is None else bytes(row[0])


def crops(conn: sqlite3.Connection, ids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
    """(sighting id, JPEG) for those of ``ids`` that have a crop, a chunk of ids per query."""
    for start in range(0, len(ids), _CHUNK):
        chunk = [int(i) for i in ids[start : start + _CHUNK]]
        marks = ",".join("?" * len(chunk))
        for sid, jpeg in conn.execute(
            f"SELECT sighting_id, jpeg FROM sighting_crops WHERE sighting_id IN ({marks})", chunk
        ):
            yield int(sid), bytes(jpeg)


def snapshot(conn: sqlite3.Connection, sighting_id: int) -> Snapshot | None:
    """The evidence snapshot of a sighting (the full frame of its best moment, the face's box in it), or None."""
    row = conn.execute(
        "SELECT jpeg, box_x, box_y, box_w, box_h FROM sighting_snapshots WHERE sighting_id = ?", (int(sighting_id),)
    ).fetchone()
    if row is None:
        return None
    return Snapshot(bytes(row[0]), (float(row[1]), float(row[2]), float(row[3]), float(row[4])))


def snapshots(conn: sqlite3.Connection, ids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
    """(sighting id, snapshot JPEG) for those of ``ids`` that have one, a chunk of ids per query."""
    for start in range(0, len(ids), _CHUNK):
        chunk = [int(i) for i in ids[start : start + _CHUNK]]
        marks = ",".join("?" * len(chunk))
        yield from (
            (int(r[0]), bytes(r[1]))
            for r in conn.execute(
                f"SELECT sighting_id, jpeg FROM sighting_snapshots WHERE sighting_id IN ({marks})", chunk
            )
        )


def embedding(conn: sqlite3.Connection, sighting_id: int) -> tuple[str, bytes] | None:
    """The stored (model, embedding blob) of a sighting, or None."""
    row = conn.execute(
        "SELECT model, embedding FROM sighting_embeddings WHERE sighting_id = ?", (int(sighting_id),)
    ).fetchone()
    return None if row is None else (str(row[0]), bytes(row[1]))


def insert(conn: sqlite3.Connection, items: Sequence[PreparedSighting]) -> list[int]:
    """Runs on the writer thread, inside its transaction: the whole batch with four executemany calls.
    Returns the new rows' ids, in the order of ``items``."""
    base = int(conn.execute("SELECT coalesce(max(id), 0) FROM sightings").fetchone()[0])
    dims: dict[str, int] = {}
    crop_rows: list[tuple[int, bytes]] = []
    embeddings: list[tuple[int, str, bytes]] = []
    snapshot_rows: list[tuple[int, bytes, float, float, float, float]] = []
    for sid, it in enumerate(items, start=base + 1):
        if it.crop is not None:
            crop_rows.append((sid, it.crop))
        if it.snapshot is not None:
            snapshot_rows.append((sid, it.snapshot[0], *it.snapshot[1]))
        if it.embedding is not None:
            if it.model not in dims:
                people.ensure_model(conn, it.model, it.dim)
                dims[it.model] = it.dim
            if dims[it.model] != it.dim:
                raise GalleryError(f"model {it.model!r} embeddings have {dims[it.model]} values, not {it.dim}")
            embeddings.append((sid, it.model, it.embedding))
    conn.executemany(
        "INSERT INTO sightings (id, camera, started, ended, person_id, score, box_x, box_y, box_w, box_h, model, "
        "track, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(sid, *it.row) for sid, it in enumerate(items, start=base + 1)],
    )
    conn.executemany("INSERT INTO sighting_crops (sighting_id, jpeg) VALUES (?, ?)", crop_rows)
    conn.executemany("INSERT INTO sighting_embeddings (sighting_id, model, embedding) VALUES (?, ?, ?)", embeddings)
    conn.executemany(
        "INSERT INTO sighting_snapshots (sighting_id, jpeg, box_x, box_y, box_w, box_h) VALUES (?, ?, ?, ?, ?, ?)",
        snapshot_rows,
    )
    return list(range(base + 1, base + 1 + len(items)))
