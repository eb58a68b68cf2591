"""``main.py history`` against a real gallery file: JSON lines, CSV, filters, and its errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from storage.gallery import Gallery
from storage.timeutil import iso
from tests.test_storage import MODEL, T0, face_jpegs, sighting, unit
from tests.test_storage_reliability import assert_one_line_error, cli


def _gallery(path: Path) -> None:
    jpeg = face_jpegs(1)[0]
    with Gallery.open(path) as g:
        g.enrol_sample(
            "Ann Lee", model=MODEL, embedding=unit(np.random.default_rng(0)), crop_jpeg=jpeg, source="", quality=1
        )
        ann = g.person("Ann Lee").id
        g.record_sightings(
            [
                sighting(
                    camera=("door", "yard")[i % 2], start=T0 + 3600 * i, person_id=ann if i % 3 else None, crop=jpeg
                )
                for i in range(12)
            ]
        )


def test_history_prints_json_lines_newest_first_with_filters(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    _gallery(path)
    proc = cli("history", "--gallery", str(path))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 12 and rows[0]["start"] == iso(T0 + 3600 * 11)
    assert [r["start"] for r in rows] == sorted((r["start"] for r in rows), reverse=True)
    assert set(rows[0]) >= {"id", "camera", "start", "end", "person", "score", "box_x", "track", "crop"}

    since, until = iso(T0 + 3600 * 3), iso(T0 + 3600 * 9).replace("+00:00", "Z")
    proc = cli("--gallery", str(path), "history", "--person", "ann lee", "--camera", "yard", "--since", since,
               "--until", until)  # fmt: skip
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["person"], r["camera"], r["start"]) for r in rows] == [
        ("Ann Lee", "yard", iso(T0 + 3600 * 7)),
        ("Ann Lee", "yard", iso(T0 + 3600 * 5)),
    ]
    proc = cli("history", "--gallery", str(path), "--unknown", "--format", "csv", "--limit", "3")
    assert proc.returncode == 0, proc.stderr
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["person"] for r in table] == ["", "", ""] and [r["start"] for r in table] == [
        iso(T0 + 3600 * 9),
        iso(T0 + 3600 * 6),
        iso(T0 + 3600 * 3),
    ]
    with Gallery.open(path) as g:
        searches = g.audit_log(action="history_search")
        assert len(searches) == 3 and {a.actor for a in searches} == {"cli"}


def test_history_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    _gallery(path)
    assert_one_line_error(cli("history", "--gallery", str(path), "--person", "Nobody"), "no person named 'Nobody'")
    assert_one_line_error(cli("history", "--gallery", str(path), "--since", "last tuesday"), "not an ISO 8601 time")
    assert_one_line_error(
        cli("history", "--gallery", str(path), "--since", "2026-01-02", "--until", "2026-01-01"), "later than"
    )
    assert_one_line_error(cli("history", "--gallery", str(path), "--person", "Ann Lee", "--unknown"), "not both")
    missing = tmp_path / "nowhere" / "gallery.db"
    assert_one_line_error(cli("history", "--gallery", str(missing)), "no gallery at")
    assert not missing.parent.exists()
