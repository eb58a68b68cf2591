"""One export path: the page's file export, the archive with crops and ``main.py history`` take the same
filters (min score included) and write the same rows. Real gallery files and real JPEG crops."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from storage.errors import GalleryError
from storage.export import export_history, history_command
from storage.gallery import Gallery
from storage.timeutil import iso
from tests.test_storage import MODEL, T0, face_jpegs, sighting, unit


def _fill(path: Path) -> int:
    crops = face_jpegs(3)
    with Gallery.open(path) as g:
        g.enrol_sample(
            "Ann", model=MODEL, embedding=unit(np.random.default_rng(0)), crop_jpeg=b"", source="", quality=1
        )
        ann = g.person("Ann").id
        g.record_sightings(
            [
                sighting(
                    camera=("door", "yard")[i % 2],
                    start=T0 + 60 * i,
                    person_id=ann if i % 3 else None,
                    score=(i % 10) / 10,
                    crop=crops[i % 3] if i % 4 else b"",
                    track=f"t{i}",
                )
                for i in range(40)
            ]
        )
    return ann


def _cli_csv(path: Path, **filters: object) -> list[dict[str, str]]:
    out = io.StringIO()
    history_command(path, out, fmt="csv", **filters)  # type: ignore[arg-type]
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_every_filter_reaches_the_zip_and_the_file_export_alike(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    _fill(db)
    filters = {"camera": "yard", "min_score": 0.5, "since": T0 + 60 * 5, "until": T0 + 60 * 35}
    cli_rows = _cli_csv(db, camera="yard", min_score=0.5, since=iso(T0 + 60 * 5), until=iso(T0 + 60 * 35))
    expected = list(reversed(cli_rows))  # the CLI lists newest first, exports oldest first
    assert len(expected) >= 5 and all(float(r["score"]) >= 0.5 and r["camera"] == "yard" for r in expected)
    with Gallery.open(db) as g:
        csv_summary = export_history(g, tmp_path / "out.csv", **filters)  # type: ignore[arg-type]
        zip_summary = export_history(g, tmp_path / "out.zip", **filters)  # type: ignore[arg-type]
        with (tmp_path / "out.csv").open(newline="") as fh:
            assert list(csv.DictReader(fh)) == expected
        assert (csv_summary.archive, zip_summary.archive) == (False, True)
        with zipfile.ZipFile(tmp_path / "out.zip") as zf:
            zipped = list(csv.DictReader(io.StringIO(zf.read("history.csv").decode())))
            assert [{**r, "crop": "", "snapshot": ""} for r in zipped] == [
                {**r, "crop": "", "snapshot": ""} for r in expected
            ]
            with_crops = [r for r in zipped if r["crop"]]
            assert [r["crop"] != "" for r in zipped] == [r["crop"] == "True" for r in expected]
            for r in with_crops:
                assert zf.read(r["crop"]) == g.crop(int(r["id"]))
        assert zip_summary.sightings == len(expected) and zip_summary.crops == len(with_crops)
        exports = [json.loads(a.details) for a in g.audit_log(action="export")]
        assert all(e["min_score"] == 0.5 and e["camera"] == "yard" for e in exports) and len(exports) == 2


def test_a_json_file_export_is_one_document_with_its_filters(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    _fill(db)
    with Gallery.open(db) as g:
        summary = export_history(g, tmp_path / "ann.json", fmt="json", person="Ann", min_score=0.8)
        doc = json.loads((tmp_path / "ann.json").read_text())
        assert doc["filters"] == {"person": "Ann", "min_score": 0.8}
        assert len(doc["sightings"]) == summary.sightings > 0
        assert all(s["person"] == "Ann" and s["score"] >= 0.8 for s in doc["sightings"])
        starts = [s["start"] for s in doc["sightings"]]
        assert starts == sorted(starts)
        with pytest.raises(GalleryError, match="not both"):
            export_history(g, tmp_path / "x.csv", person="Ann", unknown_only=True)
        with pytest.raises(GalleryError, match="unknown format"):
            export_history(g, tmp_path / "x.csv", fmt="xml")
        assert not (tmp_path / "x.csv").exists()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
