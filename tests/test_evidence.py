"""Evidence that proves itself, and a person's data on request: signed exports verified file by file, hostile
zips (an edited byte, a removed or added file, a forged or swapped manifest, a truncated zip, a zip-slip name,
a manifest naming a file that is not there), audited exports, and everything held on one person. Real face
photos, real files, the real CLI."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.evidence import export as export_evidence
from storage.errors import GalleryError
from storage.evidence import MANIFEST, SIGNATURE
from storage.evidence_check import EvidenceError, FileStatus, SignatureStatus, verify
from storage.gallery import Gallery
from storage.person_export import export_person
from storage.records import NewSighting, SnapshotFace
from storage.signing import load as load_signing_key
from tests.test_storage import MODEL, T0, face_jpegs, unit
from tests.test_storage_reliability import assert_one_line_error, cli


def _sighting(
    start: float, pid: int | None, crop: bytes, track: str, faces: tuple[SnapshotFace, ...] = ()
) -> NewSighting:
    return NewSighting(
        camera="door",
        start=start,
        end=start + 3,
        person_id=pid,
        score=0.81,
        box=(10.0, 10.0, 80.0, 90.0),
        crop_jpeg=crop,
        embedding=None,
        model=MODEL,
        track=track,
        snapshot_jpeg=crop,
        snapshot_box=(60.0, 50.0, 120.0, 150.0),
        snapshot_faces=faces,
        snapshot_at=start + 1,
    )


@pytest.fixture
def stocked(tmp_path: Path) -> Path:
    """A gallery with Ann (two samples) seen twice, and an unknown face seen once."""
    path = tmp_path / "station" / "gallery.db"
    crops = face_jpegs(4)
    rng = np.random.default_rng(4)
    with Gallery.open(path, actor="tester") as g:
        for crop in crops[:2]:
            g.enrol_sample("Ann", model=MODEL, embedding=unit(rng), crop_jpeg=crop, source="ann.jpg", quality=0.9)
        ann = g.person("Ann").id
        g.set_notes("Ann", "staff, front desk")
        g.rename("Ann", "Ann Lee")
        g.record_sightings(
            [
                _sighting(
                    T0,
                    ann,
                    crops[2],
                    "1",
                    (SnapshotFace("1", (60.0, 50.0, 120.0, 150.0)), SnapshotFace("2", (0.0, 0.0, 60.0, 60.0))),
                ),
                _sighting(T0 + 60, ann, crops[2], "5"),
                _sighting(T0 + 120, None, crops[3], "9"),
            ]
        )
        assert g.flush()
        g.history(person="Ann Lee", limit=10)  # an audited search that names her
    return path


def _export(path: Path, out: Path, ids: list[int], case: str = "CASE-7") -> None:
    with Gallery.open(path, actor="tester") as g:
        export_evidence(g, ids, out, operator="officer", version="test", case=case, note="door, morning")


def _public(path: Path) -> bytes:
    return load_signing_key(path.parent / "signing.key").public


def _rewrite(src: Path, dst: Path, change: Any) -> None:
    """A copy of the zip ``src`` with its entries passed through ``change(name, data) -> [(name, data)]``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            for name, data in change(info.filename, zin.read(info.filename)):
                zout.writestr(name, data)


def test_an_export_verifies_file_by_file_by_the_cli_and_is_audited(stocked: Path, tmp_path: Path) -> None:
    out = tmp_path / "case.zip"
    proc = cli("export-evidence", "--gallery", str(stocked), "--sighting", "1", "--sighting", "2", "--case", "CASE-7",
               "--note", "seen twice", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout)
    assert line["event"] == "evidence" and line["sightings"] == 2 and out.stat().st_mode & 0o777 == 0o600
    key_file = stocked.parent / "signing.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read(MANIFEST))
    assert {"sightings/1/crop.jpg", "sightings/1/snapshot.jpg", "sightings/2/crop.jpg", "enrolled/1/1.jpg"} <= names
    assert (
        manifest["case"] == "CASE-7"
        and manifest["note"] == "seen twice"
        and manifest["software"].startswith("FaceStation")
    )
    assert (
        manifest["decisions"][MODEL]["threshold"] > 0 and manifest["decisions"][MODEL]["calibration"]["model"] == MODEL
    )
    assert [s["id"] for s in manifest["sightings"]] == [1, 2] and manifest["persons"][0]["name"] == "Ann Lee"
    assert {f["path"] for f in manifest["files"]} == names - {MANIFEST, SIGNATURE}

    shown = cli("keygen", "--show-public", "--gallery", str(stocked))
    public = json.loads(shown.stdout)["public_key"]
    assert json.loads(shown.stdout)["created"] is False, "the key is made once, by the first export"
    # A colleague without the station: only the zip and the public key.
    check = cli("verify-evidence", str(out), "--public-key", public, "--gallery", str(tmp_path / "elsewhere.db"))
    assert check.returncode == 0, check.stdout + check.stderr
    lines = [json.loads(x) for x in check.stdout.splitlines()]
    assert [x["status"] for x in lines[:-1]] == ["ok"] * len(manifest["files"])
    assert lines[-1]["result"] == "intact" and lines[-1]["signature"] == "valid" and lines[-1]["case"] == "CASE-7"
    with Gallery.open(stocked) as g:
        (entry,) = g.audit_log(action="evidence_export")
    details = json.loads(entry.details)
    assert details["sightings"] == [1, 2] and details["manifest_sha256"] == line["manifest_sha256"]


def test_every_kind_of_tampering_fails_verification(stocked: Path, tmp_path: Path) -> None:
    good, other = tmp_path / "good.zip", tmp_path / "other.zip"
    _export(stocked, good, [1, 2])
    _export(stocked, other, [3], case="CASE-8")
    trusted = _public(stocked)
    assert verify(good, trusted).intact

    def edited(name: str, data: bytes) -> list[tuple[str, bytes]]:
        return [(name, data[:500] + bytes([data[500] ^ 1]) + data[501:] if name == "sightings/1/crop.jpg" else data)]

    with zipfile.ZipFile(other) as zf:
        other_manifest, other_sig = zf.read(MANIFEST), zf.read(SIGNATURE)
    forger = Ed25519PrivateKey.generate()

    def forged(name: str, data: bytes) -> list[tuple[str, bytes]]:  # a hash changed, the old signature kept
        return [(name, data.replace(b'"case": "CASE-7"', b'"case": "CASE-9"') if name == MANIFEST else data)]

    def resigned(name: str, data: bytes) -> list[tuple[str, bytes]]:  # signed again, by someone else's key
        if name == MANIFEST:
            manifest = json.loads(data)
            manifest["station"]["signing_key"] = forger.public_key().public_bytes_raw().hex()
            data = json.dumps(manifest).encode()
            resigned.manifest = data  # type: ignore[attr-defined]
            return [(name, data)]
        if name == SIGNATURE:
            return [(name, forger.sign(resigned.manifest).hex().encode())]  # type: ignore[attr-defined]
        return [(name, data)]

    cases: dict[str, tuple[Any, SignatureStatus, dict[str, FileStatus]]] = {
        "edited byte": (edited, SignatureStatus.VALID, {"sightings/1/crop.jpg": FileStatus.CHANGED}),
        "removed file": (
            lambda n, d: [] if n == "enrolled/1/2.jpg" else [(n, d)],
            SignatureStatus.VALID,
            {"enrolled/1/2.jpg": FileStatus.MISSING},
        ),
        "added file": (
            lambda n, d: [(n, d), ("sightings/1/extra.jpg", d)] if n == "sightings/1/crop.jpg" else [(n, d)],
            SignatureStatus.VALID,
            {"sightings/1/extra.jpg": FileStatus.EXTRA},
        ),
        "zip-slip name": (
            lambda n, d: [(n, d), ("../../etc/cron.d/evil", b"* * * * * root sh")] if n == MANIFEST else [(n, d)],
            SignatureStatus.VALID,
            {"../../etc/cron.d/evil": FileStatus.UNSAFE},
        ),
        "forged manifest": (forged, SignatureStatus.INVALID, {}),
        "manifest signed by another key": (resigned, SignatureStatus.OTHER_KEY, {}),
        "swapped manifest": (
            lambda n, d: [(n, other_manifest if n == MANIFEST else other_sig if n == SIGNATURE else d)],
            SignatureStatus.VALID,
            {"sightings/1/crop.jpg": FileStatus.EXTRA, "sightings/3/crop.jpg": FileStatus.MISSING},
        ),
    }
    for what, (change, signature, statuses) in cases.items():
        bad = tmp_path / f"{what}.zip"
        _rewrite(good, bad, change)
        result = verify(bad, trusted)
        got = {f.path: f.status for f in result.files if f.status is not FileStatus.OK}
        assert not result.intact and result.signature is signature, what
        assert statuses.items() <= got.items(), (what, got)
    # Through the CLI: non-zero, one line per file, the culprit named.
    check = cli("verify-evidence", str(tmp_path / "edited byte.zip"), "--gallery", str(stocked))
    assert check.returncode == 1
    assert {"file": "sightings/1/crop.jpg", "status": "changed"}.items() <= json.loads(
        next(x for x in check.stdout.splitlines() if "sightings/1/crop.jpg" in x)
    ).items()


def test_a_signed_manifest_naming_a_file_that_is_not_there_and_a_truncated_zip(stocked: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    _export(stocked, good, [1])
    key = load_signing_key(stocked.parent / "signing.key")
    with zipfile.ZipFile(good) as zf:
        manifest = json.loads(zf.read(MANIFEST))
        files = {n: zf.read(n) for n in zf.namelist() if n not in (MANIFEST, SIGNATURE)}
    manifest["files"].append({"path": "sightings/1/second.jpg", "sha256": "0" * 64, "bytes": 10})
    data = json.dumps(manifest).encode()
    naming = tmp_path / "naming.zip"
    with zipfile.ZipFile(naming, "w") as zf:  # genuinely signed by the station, but the file was never there
        zf.writestr(MANIFEST, data)
        zf.writestr(SIGNATURE, key.sign(data).hex())
        for n, d in files.items():
            zf.writestr(n, d)
    result = verify(naming, key.public)
    assert result.signature is SignatureStatus.VALID and not result.intact
    assert {f.path: f.status for f in result.files}["sightings/1/second.jpg"] is FileStatus.MISSING

    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(EvidenceError, match="not a readable zip"):
        verify(truncated, key.public)
    assert_one_line_error(cli("verify-evidence", str(truncated), "--gallery", str(stocked)), "not a readable zip")
    assert_one_line_error(
        cli("verify-evidence", str(good), "--gallery", str(tmp_path / "x.db")), "no trusted public key"
    )


def test_export_person_holds_everything_on_them_and_is_audited(stocked: Path, tmp_path: Path) -> None:
    with Gallery.open(stocked, actor="tester") as g:  # on two lists, with an alarm acknowledged about her
        barred = g.watchlists.ensure("Barred")
        g.watchlists.add("Ann Lee", barred.id)
        g.watchlists.add("Ann Lee", g.watchlists.ensure("VIP").id)
        raised = g.alarms.raise_watchlist(barred, person_id=g.person("Ann Lee").id, camera="door", track="1",
                                          score=0.81, at=T0 + 1, sighting_id=1)  # fmt: skip
        g.alarms.acknowledge(raised.alarm_id, "she works here", by="guard")
    out = tmp_path / "ann.zip"
    proc = cli("export-person", "ann lee", "--gallery", str(stocked), "--out", str(out), "--operator", "dpo")
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout)
    assert (line["samples"], line["sightings"], line["snapshots"], line["faces_blurred"]) == (2, 2, 2, 1)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        person = json.loads(zf.read("person.json"))
        seen = json.loads(zf.read("sightings.json"))
        audit = json.loads(zf.read("audit.json"))
        alarms = json.loads(zf.read("alarms.json"))
        summary = zf.read("summary.txt").decode()
        snapshot = zf.read("sightings/1/snapshot.jpg")
    assert {"samples/1.jpg", "samples/2.jpg", "sightings/1/crop.jpg", "sightings/2/snapshot.jpg"} <= names
    assert not any(n.startswith("sightings/3") for n in names), "the unknown face is not hers"
    assert person["name"] == "Ann Lee" and person["notes"] == "staff, front desk"
    assert sorted(person["watchlists"]) == ["Barred", "VIP"], "every list she is on, by name"
    assert [(a["list"], a["camera"], a["acknowledged_by"], a["ack_note"]) for a in alarms] == [
        ("Barred", "door", "guard", "she works here")
    ]
    assert [s["id"] for s in seen] == [1, 2]
    assert {"enrol", "rename", "history_search"} <= {a["action"] for a in audit}
    assert "Ann Lee" in summary and "Sightings: 2" in summary and "1 other faces" in summary
    assert "Watchlists: Barred, VIP." in summary or "Watchlists: VIP, Barred." in summary
    assert "Alarms raised about them: 1" in summary
    with Gallery.open(stocked) as g:
        stored = g.snapshot(1)
        assert stored is not None and stored.jpeg != snapshot, "the other face is blurred in the copy only"
        (entry,) = g.audit_log(action="person_export")
    assert json.loads(entry.details)["person"] == "Ann Lee"
    assert_one_line_error(
        cli("export-person", "Nobody", "--gallery", str(stocked), "--out", str(tmp_path / "n.zip")), "no person named"
    )
    with pytest.raises(GalleryError, match="exists"), Gallery.open(stocked) as g:
        export_person(g, "Ann Lee", out, operator="dpo")
