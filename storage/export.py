"""History out of the gallery: rows as CSV or JSON (the ``history`` command), and the export zip with crops."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from storage import sightings
from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.people import PersonRef
from storage.records import ExportSummary, Sighting
from storage.timeutil import TimeLike, iso, parse_iso

FIELDS = (
    "id",
    "camera",
    "start",
    "end",
    "person",
    "person_id",
    "score",
    "box_x",
    "box_y",
    "box_w",
    "box_h",
    "model",
    "track",
    "crop",
)
FORMATS = ("json", "csv")


def sighting_dict(s: Sighting, crop_name: str | None = None) -> dict[str, Any]:
    """One sighting as plain values, times in ISO 8601 UTC. ``crop`` is the crop's file name in an export,
    or whether there is a crop."""
    return {
        "id": s.id,
        "camera": s.camera,
        "start": iso(s.start),
        "end": iso(s.end),
        "person": s.person,
        "person_id": s.person_id,
        "score": round(s.score, 6),
        "box_x": s.box[0],
        "box_y": s.box[1],
        "box_w": s.box[2],
        "box_h": s.box[3],
        "model": s.model,
        "track": s.track,
        "crop": crop_name if crop_name is not None else s.has_crop,
    }


def write_rows(sightings: Iterable[Sighting], out: TextIO, fmt: str) -> int:
    """Write sightings to ``out``: JSON, one object per line, or CSV with a header. Returns the count."""
    if fmt not in FORMATS:
        raise GalleryError(f"unknown format {fmt!r}: choose json or csv")
    n = 0
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for s in sightings:
        row = sighting_dict(s)
        if writer is not None:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        else:
            out.write(json.dumps(row, separators=(",", ":")) + "\n")
        n += 1
    return n


def export_history(
    gallery: Gallery,
    dest: str | Path,
    *,
    fmt: str = "csv",
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    person: PersonRef | None = None,
    camera: str | None = None,
    unknown_only: bool = False,
    crops: bool = True,
    overwrite: bool = False,
) -> ExportSummary:
    """Write a zip holding ``history.csv`` or ``history.json`` (oldest first, from one consistent snapshot)
    and ``crops/<id>.jpg``. The zip is written beside ``dest`` and renamed into place when complete. Audited."""
    if fmt not in FORMATS:
        raise GalleryError(f"unknown format {fmt!r}: choose json or csv")
    target = Path(dest)
    if target.is_dir():
        raise GalleryError(f"export target {target} is a directory")
    if target.exists() and not overwrite:
        raise GalleryError(f"export target {target} exists")
    if not target.parent.is_dir():
        raise GalleryError(f"export folder {target.parent} does not exist")
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")

    def run(conn: sqlite3.Connection) -> tuple[int, int, dict[str, Any]]:
        flt = sightings.SightingFilter(
            person=person, camera=camera, since=since, until=until, unknown_only=unknown_only
        )
        q = sightings.build_query(conn, flt)
        with_crops: list[int] = []
        count = 0
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            name = f"history.{fmt}"
            with zf.open(name, "w", force_zip64=True) as raw, io.TextIOWrapper(raw, "utf-8", newline="") as text:
                writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n") if fmt == "csv" else None
                if writer is not None:
                    writer.writeheader()
                else:
                    meta = {"exported": iso(time.time()), "filters": q.details, "gallery": str(gallery.path)}
                    text.write(json.dumps(meta)[:-1] + ', "sightings": [\n')
                for s in sightings.select(conn, q, newest_first=False):
                    crop_name = f"crops/{s.id}.jpg" if crops and s.has_crop else ""
                    if crop_name:
                        with_crops.append(s.id)
                    d = sighting_dict(s, crop_name)
                    if writer is not None:
                        writer.writerow({k: "" if v is None else v for k, v in d.items()})
                    else:
                        text.write(("," if count else "") + json.dumps(d, separators=(",", ":")) + "\n")
                    count += 1
                if writer is None:
                    text.write("]}\n")
            for sid, jpeg in sightings.crops(conn, with_crops):
                # JPEG does not deflate: store it as it is.
                zf.writestr(f"crops/{sid}.jpg", jpeg, compress_type=zipfile.ZIP_STORED)
        return count, len(with_crops), q.details

    try:
        count, n_crops, details = gallery.read(run)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GalleryError(f"export to {target} failed: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    gallery.audit("export", {**details, "to": str(target), "format": fmt, "sightings": count, "crops": n_crops})
    return ExportSummary(path=str(target), sightings=count, crops=n_crops, format=fmt)


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
    fmt: str = "json",
    limit: int = 1000,
    offset: int = 0,
    busy_timeout_s: float = 5.0,
) -> int:
    """``main.py history``: print matching sightings, newest first. Never creates a gallery."""
    t0 = None if since is None else parse_iso(since, "--since")
    t1 = None if until is None else parse_iso(until, "--until")
    if t0 is not None and t1 is not None and t1 <= t0:
        raise GalleryError("--until must be later than --since")
    with Gallery.open(gallery_path, actor="cli", busy_timeout_s=busy_timeout_s, create=False) as gallery:
        rows = gallery.history(
            person=person,
            camera=camera,
            since=t0,
            until=t1,
            unknown_only=unknown_only,
            min_score=min_score,
            limit=limit,
            offset=offset,
        )
        write_rows(rows, out, fmt)
    return 0
