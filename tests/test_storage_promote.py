"""Naming a cluster of unknown sightings: the samples keep the quality measured at recognition (best
first, no near-duplicates), the sightings keep their recorded score; an enrolment below the quality
bar says so in its audit entry."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from storage.gallery import Gallery
from storage.records import NewSighting

DIM = 8


def jpeg() -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((16, 16, 3), 90, np.uint8))
    assert ok
    return bytes(buf)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def sighting(start: float, emb: np.ndarray, score: float | None, quality: float | None) -> NewSighting:
    box = (1.0, 1.0, 50.0, 60.0)
    return NewSighting("yard", start, start + 1, None, score, box, jpeg(), emb, "m", f"yard-{start:.0f}", quality)


def test_named_samples_keep_quality_best_first_without_duplicates_and_sightings_keep_scores(tmp_path: Path) -> None:
    base = unit(1)
    near = base + 0.01 * unit(2)
    other = base + 0.5 * unit(3)
    with Gallery.open(tmp_path / "g.db") as g:
        g.record_sightings(
            [
                sighting(100, base, None, 0.80),  # compared with no one
                sighting(200, near, 0.31, 0.90),  # the best, and nearly the same picture as the first
                sighting(300, other, 0.28, 0.55),
                sighting(400, unit(4), 0.12, None),  # recorded before qualities were stored
            ]
        )
        assert g.flush()
        ids = [s.id for s in g.history()]
        g.promote_cluster(ids, "Ann", samples=5)
        samples = g.samples("Ann")
        assert [round(s.quality, 2) for s in samples] == [0.9, 0.55, 0.0], "best first; the near-duplicate skipped"
        scores = sorted((s.score for s in g.history(person="Ann")), key=lambda v: -1.0 if v is None else v)
        assert scores == [None, 0.12, 0.28, 0.31], "scores as recorded"


def test_a_sample_below_the_quality_bar_is_audited_with_why(tmp_path: Path) -> None:
    with Gallery.open(tmp_path / "g.db") as g:
        sid = g.enrol_sample(
            "Bo",
            model="m",
            embedding=unit(5),
            crop_jpeg=jpeg(),
            source="camera door",
            quality=0.31,
            audit={"below_quality_bar": True, "reason": "face too small", "sample_id": -1},
        )
        (entry,) = g.audit_log(action="enrol")
        details = json.loads(entry.details)
        assert details["sample_id"] == sid, "the given details never overwrite the entry's own"
        assert (details["below_quality_bar"], details["reason"], details["quality"]) == (True, "face too small", 0.31)
