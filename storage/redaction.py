"""Erasure that reaches the snapshots: an erased person's face blurred in the evidence snapshots of OTHER
sightings, and sightings still on their way to the gallery when a person is erased or merged.

The station records, with each snapshot, every face in that frame and the track it belonged to
(``snapshot_faces``) and when the frame was taken. A person's face is in another sighting's snapshot where
that snapshot, on the same camera, names one of the person's tracks and was taken inside that track's
sighting (start..end): track ids are unique only within one station run, so the time pins the run. Their
box there is pixelated and blurred past recognition and the JPEG re-encoded, in the erasure's transaction.

What cannot be found is not blurred: a face in a snapshot that the detector never found, a face whose
track was never recorded with the frame (galleries from before this, a remote worker that sends no frame),
and a person whose track was recorded as unknown (it was never theirs in the gallery).

Sightings queued while a person is erased or merged are checked as they are written: one naming an erased
person is dropped (their face is not stored again), and blurred out of other snapshots like the rest; one
naming a merged person goes to the person they were merged into (``person_redirects``). The erased tracks'
windows (camera, track, start, end: no name, no face) are kept for a day (``erased_tracks``), so that a
snapshot written after the erasure that shows them is blurred too.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import time
from collections.abc import Iterable, Sequence

import numpy as np

from storage.errors import GalleryError
from storage.prepare import PreparedSighting, PreparedSnapshot

ERASED_TRACKS_KEEP_S = 86_400.0
_BLOCKS = 5  # the blurred box is at most 5 blocks across before it is blurred again
_JPEG_QUALITY = 90
_MAX_REDIRECTS = 32

Window = tuple[str, str, float, float]  # camera, track, start, end
Box = tuple[float, float, float, float]


def blur_boxes(jpeg: bytes, boxes: Iterable[Box]) -> bytes:
    """``jpeg`` with each box (grown by a quarter on every side: hair and ears identify too) pixelated to a
    few blocks and blurred, re-encoded. Irreversible: the pixels of the face are not in the result."""
    import cv2

    img = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise GalleryError("a stored snapshot is not a readable JPEG")
    height, width = img.shape[:2]
    for x, y, w, h in boxes:
        x0, y0 = max(0, math.floor(x - w / 4)), max(0, math.floor(y - h / 4))
        x1, y1 = min(width, math.ceil(x + w * 1.25)), min(height, math.ceil(y + h * 1.25))
        if x1 <= x0 or y1 <= y0:
            continue
        region = img[y0:y1, x0:x1]
        rw, rh = x1 - x0, y1 - y0
        blocks = (min(_BLOCKS, rw), max(1, min(rh, round(_BLOCKS * rh / rw))))
        small = cv2.resize(region, blocks, interpolation=cv2.INTER_AREA)
        mosaic = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)
        img[y0:y1, x0:x1] = cv2.GaussianBlur(mosaic, (0, 0), sigmaX=max(1.0, rw / 8))
    ok, out = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise GalleryError("a blurred snapshot could not be encoded")
    return bytes(out.tobytes())


def windows_of(conn: sqlite3.Connection, pid: int) -> list[Window]:
    """The (camera, track, start, end) of every sighting of person ``pid``."""
    rows = conn.execute("SELECT camera, track, started, ended FROM sightings WHERE person_id = ?", (pid,))
    return [(str(c), str(t), float(s), float(e)) for c, t, s, e in rows]


_FACES_IN_WINDOW = (
    "SELECT f.rowid, f.sighting_id, f.box_x, f.box_y, f.box_w, f.box_h FROM snapshot_faces f "
    "JOIN sighting_snapshots v ON v.sighting_id = f.sighting_id JOIN sightings o ON o.id = f.sighting_id "
    "WHERE f.camera = ? AND f.track = ? AND CASE WHEN v.taken IS NOT NULL THEN v.taken BETWEEN ? AND ? "
    "ELSE o.started <= ? AND o.ended >= ? END"
)


def redact_stored(conn: sqlite3.Connection, windows: Sequence[Window]) -> int:
    """Blur the faces of ``windows``' tracks in the stored snapshots that show them, and forget those
    faces' rows; returns how many snapshots were rewritten."""
    boxes: dict[int, list[Box]] = {}
    face_rows: list[int] = []
    for camera, track, start, end in windows:
        for rowid, sid, x, y, w, h in conn.execute(_FACES_IN_WINDOW, (camera, track, start, end, end, start)):
            boxes.setdefault(int(sid), []).append((float(x), float(y), float(w), float(h)))
            face_rows.append(int(rowid))
    for sid, found in boxes.items():
        (jpeg,) = conn.execute("SELECT jpeg FROM sighting_snapshots WHERE sighting_id = ?", (sid,)).fetchone()
        conn.execute(
            "UPDATE sighting_snapshots SET jpeg = ? WHERE sighting_id = ?", (blur_boxes(bytes(jpeg), found), sid)
        )
    conn.executemany("DELETE FROM snapshot_faces WHERE rowid = ?", [(r,) for r in face_rows])
    return len(boxes)


def remember_erased(conn: sqlite3.Connection, windows: Sequence[Window], now: float | None = None) -> None:
    """Keep the erased tracks' windows for a day (for snapshots still on their way), and drop older ones."""
    t = time.time() if now is None else now
    conn.execute("DELETE FROM erased_tracks WHERE erased < ?", (t - ERASED_TRACKS_KEEP_S,))
    conn.executemany(
        "INSERT INTO erased_tracks (camera, track, started, ended, erased) VALUES (?, ?, ?, ?, ?)",
        [(*w, t) for w in windows],
    )


def redirect(conn: sqlite3.Connection, old_id: int, new_id: int | None) -> None:
    """Person ``old_id`` is gone: erased (``new_id`` None) or merged into ``new_id``. Its id is never reused."""
    conn.execute(
        "INSERT OR REPLACE INTO person_redirects (old_id, new_id, time) VALUES (?, ?, ?)", (old_id, new_id, time.time())
    )


def screen(conn: sqlite3.Connection, items: Sequence[PreparedSighting]) -> tuple[list[PreparedSighting | None], bool]:
    """Inside the insert's transaction: sightings of merged persons go to who they were merged into; those
    of erased persons are dropped and their faces blurred out of other snapshots; and faces of erased
    tracks are blurred out of the new snapshots. Returns the sightings to store in the order of ``items``
    (None where one was dropped), and whether stored snapshots were rewritten."""
    kept, dropped = _resolve_people(conn, items)
    rewrote = False
    if dropped:
        rewrote = redact_stored(conn, dropped) > 0
        remember_erased(conn, dropped)
    if conn.execute("SELECT EXISTS (SELECT 1 FROM erased_tracks)").fetchone()[0]:
        kept = [None if it is None else _redact_new(conn, it) for it in kept]
    return kept, rewrote


def _resolve_people(
    conn: sqlite3.Connection, items: Sequence[PreparedSighting]
) -> tuple[list[PreparedSighting | None], list[Window]]:
    wanted = {it.person_id for it in items if it.person_id is not None}
    if not wanted:
        return list(items), []
    marks = ",".join("?" * len(wanted))
    present = {int(r[0]) for r in conn.execute(f"SELECT id FROM persons WHERE id IN ({marks})", tuple(wanted))}
    if present == wanted:
        return list(items), []
    target = {pid: _follow(conn, pid) for pid in wanted - present}
    kept: list[PreparedSighting | None] = []
    dropped: list[Window] = []
    for it in items:
        pid = it.person_id
        if pid is None or pid in present:
            kept.append(it)
        elif target[pid] is None:
            kept.append(None)
            dropped.append((it.camera, it.track, *it.window))
        else:
            kept.append(dataclasses.replace(it, row=(*it.row[:3], target[pid], *it.row[4:])))
    return kept, dropped


def _follow(conn: sqlite3.Connection, pid: int) -> int | None:
    """Where the sightings of the missing person ``pid`` go: who they were merged into (followed through
    later merges), or None when they were erased. A person never in the gallery stays as named, and the
    insert refuses it (its foreign key)."""
    current = pid
    for _ in range(_MAX_REDIRECTS):
        row = conn.execute("SELECT new_id FROM person_redirects WHERE old_id = ?", (current,)).fetchone()
        if row is None:
            return current
        if row[0] is None:
            return None
        current = int(row[0])
    raise GalleryError(f"person {pid} was merged more than {_MAX_REDIRECTS} times over")


_ERASED_MATCH = (
    "SELECT EXISTS (SELECT 1 FROM erased_tracks WHERE camera = ? AND track = ? AND "
    "CASE WHEN ? IS NOT NULL THEN ? BETWEEN started AND ended ELSE started <= ? AND ended >= ? END)"
)


def _redact_new(conn: sqlite3.Connection, it: PreparedSighting) -> PreparedSighting:
    snap = it.snapshot
    if snap is None or not snap.faces:
        return it
    start, end = it.window
    erased = [
        face
        for face in snap.faces
        if conn.execute(_ERASED_MATCH, (it.camera, face[0], snap.taken, snap.taken, end, start)).fetchone()[0]
    ]
    if not erased:
        return it
    jpeg = blur_boxes(snap.jpeg, [face[1:] for face in erased])
    faces = tuple(face for face in snap.faces if face not in erased)
    return dataclasses.replace(it, snapshot=PreparedSnapshot(jpeg, snap.box, snap.taken, faces))
