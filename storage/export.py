"""History out of the gallery, by one path for every reader: the console's history page, ``main.py history``
and the archive with crops all take the same filter (``storage.sightings.SightingFilter``: person, camera,
since, until, unknown only, min score), read its rows in one snapshot with the same query, and write them
with the same row writer.

Formats: ``csv`` (a header, then one row per sighting) or ``json``. In a file, JSON is one document (the
filters, then a ``sightings`` array); on a stream (``main.py history``) it is one object per line. A ``.zip``
export holds ``history.csv`` or ``history.json`` and the crops as ``crops/<id>.jpg``. Files are written
beside their target, owner-only (storage.private), and renamed into place when complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, TextIO

from storage import private, sightings
from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.gallerykey import KeyLike
from storage.people import PersonRef
from storage.records import ExportSummary, Sighting
from storage.sightings import SightingFilter
from storage.timeutil import TimeLike, iso, parse_iso

FIELDS = (
    "id",
    "camera",
    "start",
    "end",
    "person",
    "person_id",
    "score",
    "state",
    "box_x",
    "box_y",
    "box_w",
    "box_h",
    "model",
    "track",
    "crop",
    "snapshot",
)
FORMATS = ("json", "csv")


def sighting_dict(s: Sighting, crop_name: str | None = None, snapshot_name: str | None = None) -> dict[str, Any]:
    """One sighting as plain values, times in ISO 8601 UTC. ``crop`` and ``snapshot`` are the files' names
    in an archive, or whether there is one. ``score`` is null (empty in CSV) where there was no one to
    compare the face with."""
    return {
        "id": s.id,
        "camera": s.camera,
        "start": iso(s.start),
        "end": iso(s.end),
        "person": s.person,
        "person_id": s.person_id,
        "score": None if s.score is None else round(s.score, 6),  # null: compared with no one
        "state": s.state,  # named, unknown, or undecided (never seen well enough to decide)
        "box_x": s.box[0],
        "box_y": s.box[1],
        "box_w": s.box[2],
        "box_h": s.box[3],
        "model": s.model,
        "track": s.track,
        "crop": crop_name if crop_name is not None else s.has_crop,
        "snapshot": snapshot_name if snapshot_name is not None else s.has_snapshot,
    }


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise GalleryError(f"unknown format {fmt!r}: choose json or csv")


class _Table:
    """The one row writer: CSV with a header, JSON lines, or (with ``document``) one JSON document whose
    ``sightings`` array is streamed row by row."""

    def __init__(self, out: TextIO, fmt: str, document: dict[str, Any] | None = None) -> None:
        _check_format(fmt)
        self.out = out
        self.count = 0
        self._document = document is not None
        self._csv = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writeheader()
        elif document is not None:
            out.write(json.dumps(document)[:-1] + ', "sightings": [\n')

    def row(self, s: Sighting, crop_name: str | None = None, snapshot_name: str | None = None) -> None:
        d = sighting_dict(s, crop_name, snapshot_name)
        if self._csv is not None:
            self._csv.writerow({k: "" if v is None else v for k, v in d.items()})
        else:
            lead = "," if self._document and self.count else ""
            self.out.write(lead + json.dumps(d, separators=(",", ":")) + "\n")
        self.count += 1

    def close(self) -> None:
        if self._csv is None and self._document:
            self.out.write("]}\n")


def write_rows(rows: Iterable[Sighting], out: TextIO, fmt: str) -> int:
    """Write sightings to ``out``: JSON, one object per line, or CSV with a header. Returns the count."""
    table = _Table(out, fmt)
    for s in rows:
        table.row(s)
    table.close()
    return table.count


def check_target(target: Path, *, overwrite: bool) -> None:
    if target.is_dir():
        raise GalleryError(f"export target {target} is a directory")
    if target.exists() and not overwrite:
        raise GalleryError(f"export target {target} exists")
    if not target.parent.is_dir():
        raise GalleryError(f"export folder {target.parent} does not exist")


def write_atomically(target: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Run ``write`` on a new owner-only file beside ``target``, fsync it, and rename it into place."""
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with private.open_new(tmp) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GalleryError(f"export to {target} failed: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_history(
    gallery: Gallery,
    dest: str | Path,
    *,
    fmt: str = "csv",
    archive: bool | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    person: PersonRef | None = None,
    camera: str | None = None,
    unknown_only: bool = False,
    min_score: float | None = None,
    state: str | None = None,
    crops: bool = True,
    overwrite: bool = False,
) -> ExportSummary:
    """Write every sighting matching the filters, oldest first, from one consistent snapshot, to ``dest``:
    a ``fmt`` file, or (``archive``; by default when ``dest`` ends in ``.zip``) a zip holding
    ``history.<fmt>`` and, with ``crops``, ``crops/<id>.jpg`` and the evidence snapshots
    ``snapshots/<id>.jpg``. Owner-only, put in place when complete
    (``overwrite`` replaces an existing file). Audited."""
    _check_format(fmt)
    target = Path(dest)
    zipped = target.suffix.lower() == ".zip" if archive is None else archive
    check_target(target, overwrite=overwrite)
    flt = SightingFilter(person, camera, since, until, unknown_only, min_score, state)

    def run(conn: sqlite3.Connection) -> tuple[int, int, dict[str, Any]]:
        q = sightings.build_query(conn, flt)
        doc = {"exported": iso(time.time()), "filters": q.details, "gallery": str(gallery.path)}
        counts = [0, 0]  # sightings, crops

        def write(fh: IO[bytes]) -> None:
            if zipped:
                counts[:] = _write_zip(conn, fh, q, fmt, doc, crops)
                return
            text = io.TextIOWrapper(fh, "utf-8", newline="")
            table = _Table(text, fmt, doc if fmt == "json" else None)
            for s in sightings.select(conn, q, newest_first=False):
                table.row(s)
            table.close()
            text.detach()  # flushed, and the file left open for write_atomically's fsync
            counts[0] = table.count

        write_atomically(target, write)
        return counts[0], counts[1], q.details

    count, n_crops, details = gallery.read(run)
    summary = {"to": str(target), "format": fmt, "archive": zipped, "sightings": count, "crops": n_crops}
    gallery.audit("export", {**details, **summary})
    return ExportSummary(path=str(target), sightings=count, crops=n_crops, format=fmt, archive=zipped)


def _write_zip(
    conn: sqlite3.Connection, fh: IO[bytes], q: sightings.HistoryQuery, fmt: str, doc: dict[str, Any], crops: bool
) -> tuple[int, int]:
    with_crops: list[int] = []
    with_snapshots: list[int] = []
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        with (
            zf.open(f"history.{fmt}", "w", force_zip64=True) as raw,
            io.TextIOWrapper(raw, "utf-8", newline="") as text,
        ):
            table = _Table(text, fmt, doc if fmt == "json" else None)
            for s in sightings.select(conn, q, newest_first=False):
                crop_name = f"crops/{s.id}.jpg" if crops and s.has_crop else ""
                if crop_name:
                    with_crops.append(s.id)
                snapshot_name = f"snapshots/{s.id}.jpg" if crops and s.has_snapshot else ""
                if snapshot_name:
                    with_snapshots.append(s.id)
                table.row(s, crop_name, snapshot_name)
            table.close()
        for sid, jpeg in sightings.crops(conn, with_crops):
            # JPEG does not deflate: store it as it is.
            zf.writestr(f"crops/{sid}.jpg", jpeg, compress_type=zipfile.ZIP_STORED)
        for sid, jpeg in sightings.snapshots(conn, with_snapshots):
            zf.writestr(f"snapshots/{sid}.jpg", jpeg, compress_type=zipfile.ZIP_STORED)
    return table.count, len(with_crops)


def history_command(
    gallery_path: str | Path,
    out: TextIO,
    *,
    person: str | None = None,
    camera: str | None = None,
    since: str | None = None,
    until: str | None = None,
    unknown_only: bool = False,
    min_score: float | None = None,
    state: str | None = None,
    fmt: str = "json",
    limit: int = 1000,
    offset: int = 0,
    busy_timeout_s: float = 5.0,
    key: KeyLike = None,
) -> int:
    """``main.py history``: print matching sightings, newest first (JSON lines or CSV), by the same query
    and row writer as the exports. Never creates a gallery. Audited as a history search."""
    _check_format(fmt)
    sightings.check_page(limit, offset)
    t0 = None if since is None else parse_iso(since, "--since")
    t1 = None if until is None else parse_iso(until, "--until")
    if t0 is not None and t1 is not None and t1 <= t0:
        raise GalleryError("--until must be later than --since")
    flt = SightingFilter(person, camera, t0, t1, unknown_only, min_score, state)
    with Gallery.open(gallery_path, actor="cli", busy_timeout_s=busy_timeout_s, create=False, key=key) as gallery:

        def run(conn: sqlite3.Connection) -> tuple[list[Sighting], dict[str, Any]]:
            q = sightings.build_query(conn, flt)
            return list(sightings.select(conn, q, newest_first=True, limit=limit, offset=offset)), q.details

        rows, details = gallery.read(run)
        write_rows(rows, out, fmt)
        gallery.audit("history_search", {**details, "limit": int(limit), "offset": int(offset), "results": len(rows)})
    return 0
