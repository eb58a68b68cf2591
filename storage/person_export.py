"""Everything held on one person, for a data-protection request (``main.py export-person NAME``, the Gallery
page's "Export all data on this person…"), as one owner-only zip:

- ``summary.txt``: a human-readable account of what is held and what is in the zip;
- ``person.json``: the person, notes, the watchlists they are on, every sample (and the count of "this is not
  them" samples, whose faces are other people's and are not included);
- ``samples/<id>.jpg``: the enrolled images;
- ``sightings.json`` and ``sightings/<id>/crop.jpg``, ``sightings/<id>/snapshot.jpg``: where and when they
  were seen. Snapshots are whole frames: the other faces the station recorded in them are blurred in this
  copy (not in the gallery); a face it never recorded is not, so look at them before sending;
- ``alarms.json``: the alarms raised about them (list, camera, time, who acknowledged or closed them, notes);
- ``audit.json``: the audit entries that name them (by id, or by one of their names where no id is given).

The export is audited (``person_export``).
"""

from __future__ import annotations

import json
import sqlite3
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from storage import alarm_sql, people, redaction, sightings, watchlist_sql
from storage.alarm_records import Alarm
from storage.codec import check_text
from storage.errors import GalleryError
from storage.evidence import person_record
from storage.export import check_target, sighting_dict, write_atomically
from storage.gallery import Gallery
from storage.records import Sighting
from storage.timeutil import iso

MAX_SIGHTINGS = 1_000_000


@dataclass(frozen=True)
class PersonExportSummary:
    path: str
    person: str
    person_id: int
    samples: int
    sightings: int
    snapshots: int
    faces_blurred: int
    audit_entries: int

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "person": self.person,
            "person_id": self.person_id,
            "samples": self.samples,
            "sightings": self.sightings,
            "snapshots": self.snapshots,
            "faces_blurred": self.faces_blurred,
            "audit_entries": self.audit_entries,
        }


@dataclass
class _Held:
    files: dict[str, bytes] = field(default_factory=dict)
    person: dict[str, Any] = field(default_factory=dict)
    sightings: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    blurred: int = 0


def _names(conn: sqlite3.Connection, pid: int) -> list[str]:
    """Every name the person has had (renames are audited with their id)."""
    names = {people.name_of(conn, pid).lower()}
    for (details,) in conn.execute(
        "SELECT details FROM audit WHERE action = 'rename' AND json_valid(details) "
        "AND json_extract(details, '$.person_id') = ?",
        (pid,),
    ):
        d = json.loads(details)
        names.update(str(d.get(k, "")).lower() for k in ("from", "to") if d.get(k))
    return sorted(names)


def _audit(conn: sqlite3.Connection, pid: int) -> list[dict[str, Any]]:
    """The audit entries naming the person: by id, or (entries that carry no person id) by a name of theirs."""
    names = _names(conn, pid)
    marks = ",".join("?" * len(names))
    ids = (
        "coalesce(json_extract(details, '$.person_id'), json_extract(details, '$.from_id'), "
        "json_extract(details, '$.into_id'))"
    )
    rows = conn.execute(
        f"SELECT id, time, actor, action, details FROM audit WHERE json_valid(details) AND ("
        f"json_extract(details, '$.person_id') = ? OR json_extract(details, '$.from_id') = ? "
        f"OR json_extract(details, '$.into_id') = ? OR ({ids} IS NULL AND "
        f"lower(json_extract(details, '$.person')) IN ({marks}))) ORDER BY id",
        (pid, pid, pid, *names),
    )
    return [
        {"id": int(i), "time": iso(float(t)), "actor": str(a), "action": str(act), "details": json.loads(d)}
        for i, t, a, act, d in rows
    ]


def _snapshot(conn: sqlite3.Connection, s: Sighting) -> tuple[bytes, list[float], int] | None:
    """The sighting's snapshot with every other recorded face blurred; its box; how many were blurred."""
    snap = sightings.snapshot(conn, s.id)
    if snap is None:
        return None
    others = [
        (float(x), float(y), float(w), float(h))
        for x, y, w, h in conn.execute(
            "SELECT box_x, box_y, box_w, box_h FROM snapshot_faces WHERE sighting_id = ? AND track != ?",
            (s.id, s.track),
        )
    ]
    jpeg = redaction.blur_boxes(snap.jpeg, others) if others else snap.jpeg
    return jpeg, list(snap.box), len(others)


def _gather(conn: sqlite3.Connection, person: str | int) -> _Held:
    pid = people.person_id(conn, person)
    held = _Held()
    held.person = person_record(conn, pid, held.files, "samples")
    found = people.by_id(conn, pid)
    lists = [w.name for w in watchlist_sql.lists_of(conn, pid)]
    held.person.update(notes=found.notes, watchlists=lists, negatives=found.negatives)
    query = sightings.build_query(conn, sightings.SightingFilter(person=pid))
    rows = list(sightings.select(conn, query, newest_first=False, limit=MAX_SIGHTINGS))
    crops = dict(sightings.crops(conn, [s.id for s in rows]))
    for s in rows:
        record = sighting_dict(s)
        record["crop"] = record["snapshot"] = None
        if s.id in crops:
            record["crop"] = f"sightings/{s.id}/crop.jpg"
            held.files[record["crop"]] = crops[s.id]
        snap = _snapshot(conn, s)
        if snap is not None:
            record["snapshot"] = f"sightings/{s.id}/snapshot.jpg"
            held.files[record["snapshot"]], record["snapshot_box"], blurred = snap
            held.blurred += blurred
        held.sightings.append(record)
    held.audit = _audit(conn, pid)
    held.alarms = [_alarm_dict(a) for a in alarm_sql.of_person(conn, pid)]
    return held


def _alarm_dict(a: Alarm) -> dict[str, Any]:
    def when(t: float | None) -> str | None:
        return None if t is None else iso(t)

    return {
        "id": a.id, "kind": str(a.kind), "state": str(a.state), "priority": a.priority, "list": a.watchlist,
        "camera": a.camera, "raised": iso(a.raised), "last_seen": iso(a.last_seen), "hits": a.hits,
        "score": a.score, "sighting_id": a.sighting_id, "detail": a.detail,
        "acknowledged_by": a.acknowledged_by, "acknowledged_at": when(a.acknowledged_at), "ack_note": a.ack_note,
        "closed_by": a.closed_by, "closed_at": when(a.closed_at), "close_note": a.close_note,
    }  # fmt: skip


def _summary(held: _Held, operator: str) -> str:
    p, seen = held.person, held.sightings
    cameras = sorted({s["camera"] for s in seen})
    lines = [
        f"Data held by this FaceStation on {p['name']} (person {p['id']})",
        f"Exported {iso(time.time())} by {operator}.",
        "",
        f"Enrolled since {p['enrolled']}, with {len(p['samples'])} face samples "
        f"({sum(1 for s in p['samples'] if s['image'])} enrolled images in samples/).",
        f"Watchlists: {', '.join(p['watchlists']) or 'none'}.",
        f"Notes: {p['notes'] or '(none)'}",
        f"'This is not them' samples: {p['negatives']} (they show other people and are not included).",
        "",
        f"Sightings: {len(seen)}"
        + (f", from {seen[0]['start']} to {seen[-1]['start']}, on cameras {', '.join(cameras)}." if seen else "."),
        f"Crops and snapshots are in sightings/. {held.blurred} other faces the station recorded in the "
        "snapshots are blurred in this copy; faces it never detected are not: check before sending.",
        "",
        f"Alarms raised about them: {len(held.alarms)} (alarms.json).",
        f"Audit entries naming them: {len(held.audit)} (audit.json).",
        "",
        "Files: person.json, sightings.json, alarms.json, audit.json, samples/, sightings/.",
    ]
    return "\n".join(lines) + "\n"


def export_person(
    gallery: Gallery, person: str | int, dest: str | Path, *, operator: str, overwrite: bool = False
) -> PersonExportSummary:
    """Write everything held on ``person`` to the zip ``dest`` (owner-only, renamed into place), audited."""
    who = check_text(operator, "operator", allow_empty=False)
    target = Path(dest)
    check_target(target, overwrite=overwrite)
    held = gallery.read(lambda conn: _gather(conn, person))
    documents = {
        "summary.txt": _summary(held, who).encode("utf-8"),
        "person.json": _json(held.person),
        "sightings.json": _json(held.sightings),
        "alarms.json": _json(held.alarms),
        "audit.json": _json(held.audit),
    }

    def write(fh: IO[bytes]) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in documents.items():
                zf.writestr(name, data)
            for name, data in sorted(held.files.items()):
                zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)

    write_atomically(target, write)
    snapshots = sum(1 for s in held.sightings if s["snapshot"])
    summary = PersonExportSummary(
        str(target),
        str(held.person["name"]),
        int(held.person["id"]),
        len(held.person["samples"]),
        len(held.sightings),
        snapshots,
        held.blurred,
        len(held.audit),
    )
    details = {k: v for k, v in summary.as_json().items() if k != "file"}
    gallery.audit("person_export", {**details, "to": str(target), "operator": who})
    return summary


def _json(value: Any) -> bytes:
    if not isinstance(value, (dict, list)):
        raise GalleryError("an export document must be an object or a list")
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
