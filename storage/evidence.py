"""Evidence that proves itself: one sighting, or a case of several, exported as a zip whose manifest is signed
with the station's Ed25519 key (storage.signing), so that any change to any file shows.

The zip holds:

- ``sightings/<id>/crop.jpg`` and ``sightings/<id>/snapshot.jpg``: the best crop and the evidence snapshot,
  byte for byte as stored;
- ``enrolled/<person id>/<sample id>.jpg``: the enrolled images of every person the sightings name;
- ``manifest.json``: every file's SHA-256 and size, the sighting records, the persons and their samples,
  the model, threshold, margin and calibration that decided (as in force at the export), the software's
  version, the station's identity and signing key, the case number, the operator's note, who exported it
  and when;
- ``manifest.sig``: the Ed25519 signature of ``manifest.json``'s exact bytes, as hex.

``main.py verify-evidence`` (storage.evidence_check) checks the signature against a trusted public key and
every file against the manifest. Every export is audited (``evidence_export``, with the manifest's hash).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from storage import people, sightings
from storage.codec import check_text
from storage.errors import GalleryError
from storage.export import check_target, sighting_dict, write_atomically
from storage.gallery import Gallery
from storage.records import Sighting
from storage.signing import SigningKey
from storage.timeutil import iso

FORMAT = "facestation-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
MAX_SIGHTINGS = 1000


@dataclass(frozen=True)
class EvidenceRequest:
    """What to export and the context the manifest records. ``decisions``: per model, the decision in force
    (threshold, margin, calibration), built by the station (storage cannot read the vision side)."""

    sighting_ids: tuple[int, ...]
    operator: str
    software: str
    station: str
    case: str = ""
    note: str = ""
    decisions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class EvidenceSummary:
    """What an evidence export wrote."""

    path: str
    sightings: int
    files: int
    manifest_sha256: str
    signer: str


@dataclass
class _Content:
    """The files of the zip (name to bytes) and the manifest's records, gathered in one read snapshot."""

    files: dict[str, bytes] = field(default_factory=dict)
    sightings: list[dict[str, Any]] = field(default_factory=list)
    persons: list[dict[str, Any]] = field(default_factory=list)


def _check(request: EvidenceRequest) -> EvidenceRequest:
    ids = tuple(int(i) for i in request.sighting_ids)
    if not ids:
        raise GalleryError("name at least one sighting to export as evidence")
    if len(ids) > MAX_SIGHTINGS:
        raise GalleryError(f"at most {MAX_SIGHTINGS} sightings in one evidence export")
    check_text(request.case, "the case", max_len=200, allow_empty=True)
    check_text(request.note.replace("\n", " "), "the note", max_len=10_000, allow_empty=True)
    return request


def _gather(conn: sqlite3.Connection, ids: Sequence[int]) -> _Content:
    found = sightings.by_ids(conn, list(dict.fromkeys(ids)))
    missing = sorted(set(ids) - {s.id for s in found})
    if missing:
        raise GalleryError(f"no sighting with id {', '.join(map(str, missing[:10]))}")
    content = _Content()
    crops = dict(sightings.crops(conn, [s.id for s in found]))
    for s in found:
        content.sightings.append(_sighting_record(conn, s, crops.get(s.id), content.files))
    for pid in dict.fromkeys(s.person_id for s in found if s.person_id is not None):
        content.persons.append(person_record(conn, pid, content.files, f"enrolled/{pid}"))
    return content


def _sighting_record(
    conn: sqlite3.Connection, s: Sighting, crop: bytes | None, files: dict[str, bytes]
) -> dict[str, Any]:
    folder = f"sightings/{s.id}"
    crop_name = snapshot_name = ""
    if crop is not None:
        crop_name = f"{folder}/crop.jpg"
        files[crop_name] = crop
    snap = sightings.snapshot(conn, s.id)
    record = sighting_dict(s)
    if snap is not None:
        snapshot_name = f"{folder}/snapshot.jpg"
        files[snapshot_name] = snap.jpeg
        record["snapshot_box"] = list(snap.box)
    record.update(crop=crop_name or None, snapshot=snapshot_name or None)
    return record


def person_record(conn: sqlite3.Connection, pid: int, files: dict[str, bytes], folder: str) -> dict[str, Any]:
    """A person with their samples, each sample's enrolled image put in ``files`` under ``folder``."""
    person = people.by_id(conn, pid)
    samples = []
    for sample in people.samples_of(conn, pid):
        crop = people.sample_crop(conn, sample.id)
        name = f"{folder}/{sample.id}.jpg" if crop is not None else None
        if crop is not None and name is not None:
            files[name] = crop
        samples.append(
            {
                "id": sample.id,
                "model": sample.model,
                "source": sample.source,
                "quality": sample.quality,
                "enrolled": iso(sample.created),
                "image": name,
            }
        )
    return {
        "id": person.id,
        "name": person.name,
        "watchlist": person.watchlist,
        "enrolled": iso(person.created),
        "samples": samples,
    }


def _file_entries(files: Mapping[str, bytes]) -> list[dict[str, Any]]:
    return [{"path": n, "sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for n, b in sorted(files.items())]


def build_manifest(request: EvidenceRequest, content: _Content, key: SigningKey, gallery: Gallery) -> bytes:
    """The manifest's exact bytes (sorted keys, UTF-8): what the signature covers."""
    manifest = {
        "format": FORMAT,
        "case": request.case,
        "note": request.note,
        "exported": iso(time.time()),
        "operator": request.operator,
        "software": request.software,
        "station": {"name": request.station, "signing_key": key.public.hex(), "fingerprint": key.fingerprint},
        "gallery": {"path": str(gallery.path), "encrypted": gallery.key is not None},
        "decisions": {m: dict(d) for m, d in request.decisions.items()},
        "sightings": content.sightings,
        "persons": content.persons,
        "files": _file_entries(content.files),
    }
    return json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False, default=str).encode("utf-8") + b"\n"


def export_evidence(
    gallery: Gallery, dest: str | Path, request: EvidenceRequest, key: SigningKey, *, overwrite: bool = False
) -> EvidenceSummary:
    """Write the signed evidence zip for ``request`` to ``dest`` (owner-only, renamed into place when
    complete) from one read snapshot, and audit it."""
    request = _check(request)
    target = Path(dest)
    check_target(target, overwrite=overwrite)
    content = gallery.read(lambda conn: _gather(conn, request.sighting_ids))
    manifest = build_manifest(request, content, key, gallery)
    signature = key.sign(manifest)

    def write(fh: IO[bytes]) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, manifest)
            zf.writestr(SIGNATURE, signature.hex() + "\n")
            for name, data in sorted(content.files.items()):
                zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)  # JPEG does not deflate

    write_atomically(target, write)
    digest = hashlib.sha256(manifest).hexdigest()
    details = {
        "to": str(target),
        "case": request.case,
        "sightings": [s["id"] for s in content.sightings],
        "files": len(content.files),
        "manifest_sha256": digest,
        "signer": key.fingerprint,
        "operator": request.operator,
    }
    gallery.audit("evidence_export", details)
    return EvidenceSummary(str(target), len(content.sightings), len(content.files), digest, key.fingerprint)
