"""Evidence snapshots: one full frame per sighting, of its best moment, with the face's box; exported,
shown in History, and removed by retention and erasure like the crops."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from gui.jobs import Jobs
from gui.widgets.history_view import HistoryView
from storage.errors import GalleryError
from storage.export import export_history
from storage.gallery import Gallery
from storage.records import NewSighting
from tests.conftest import CLIP, need
from tests.test_storage import MODEL, T0, face_jpegs, sighting, unit
from tests.test_storage_reliability import PLAIN, _distinctive, _raw
from vision.evidence import Moment
from vision.faces import Decision, DecisionState
from vision.frames import FrameRef
from vision.sightings import SNAPSHOT_MAX_WIDTH, snapshot_of, to_new_sighting
from vision.tracker import TrackRecord
from vision.types import Detection


def frame_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return bytes(buf)


def record(frame: FrameRef | None, box: tuple[float, float, float, float] = (100.0, 50.0, 60.0, 80.0)) -> TrackRecord:
    marks = ((110.0, 70.0), (140.0, 70.0), (125.0, 90.0), (112.0, 110.0), (138.0, 110.0))
    return TrackRecord(
        camera="door",
        track_id="door-1",
        start=T0,
        end=T0 + 1,
        decision=Decision(DecisionState.UNKNOWN, score=0.3),
        frames=5,
        looks=1,
        quality=0.7,
        box=box,
        crop=np.zeros((160, 160, 3), np.uint8),
        embedding=np.ones(8, np.float32) / np.sqrt(8),
        model=MODEL,
        moment=Moment(
            frame, Detection(box, marks, 0.99), 0.7, T0 + 0.5, (("door-1", box), ("door-2", (0.0, 0.0, 40.0, 40.0)))
        ),
    )


def with_snapshot(s: NewSighting, jpeg: bytes, box: tuple[float, float, float, float]) -> NewSighting:
    return dataclasses.replace(s, snapshot_jpeg=jpeg, snapshot_box=box)


def test_a_received_frame_is_kept_as_it_came_and_a_wide_one_is_scaled_to_960() -> None:
    narrow = frame_jpeg(640, 360)
    jpeg, box = snapshot_of(record(FrameRef(narrow, 640, 360)))
    assert jpeg is narrow and box == (100.0, 50.0, 60.0, 80.0), "no second encoding of a received JPEG"
    wide = np.random.default_rng(1).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    jpeg, box = snapshot_of(record(FrameRef(None, 1920, 1080, image=wide), box=(960.0, 540.0, 200.0, 240.0)))
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (540, SNAPSHOT_MAX_WIDTH)
    assert box == pytest.approx((480.0, 270.0, 100.0, 120.0))
    assert snapshot_of(record(None)) == (b"", None)
    sighting = to_new_sighting(record(FrameRef(narrow, 640, 360)))
    assert sighting.snapshot_jpeg == narrow and sighting.quality == pytest.approx(0.7)
    assert sighting.snapshot_at == T0 + 0.5, "when the snapshot's frame was taken"
    assert [f.track for f in sighting.snapshot_faces] == ["door-1", "door-2"], "every tracked face of that frame"
    scaled = to_new_sighting(record(FrameRef(None, 1920, 1080, image=wide), box=(960.0, 540.0, 200.0, 240.0)))
    assert scaled.snapshot_faces[1].box == pytest.approx((0.0, 0.0, 20.0, 20.0)), "in the snapshot's own pixels"
    assert to_new_sighting(record(None)).snapshot_faces == ()


def test_snapshots_are_stored_exported_and_refused_when_not_jpeg(tmp_path: Path) -> None:
    snap = frame_jpeg(640, 360, seed=2)
    with Gallery.open(tmp_path / "g.db") as g:
        g.record_sightings([with_snapshot(sighting(start=T0), snap, (1, 2, 3, 4)), sighting(start=T0 + 5)])
        assert g.flush()
        older, newer = sorted(g.history(limit=10, audit=False), key=lambda s: s.start)
        assert older.has_snapshot and not newer.has_snapshot
        stored = g.snapshot(older.id)
        assert stored is not None and stored.jpeg == snap and stored.box == (1.0, 2.0, 3.0, 4.0)
        assert g.snapshot(newer.id) is None
        export_history(g, tmp_path / "out.zip")
        with zipfile.ZipFile(tmp_path / "out.zip") as zf:
            assert zf.read(f"snapshots/{older.id}.jpg") == snap
            rows = zf.read("history.csv").decode().splitlines()
        assert rows[0].endswith(",snapshot")
        assert rows[1].endswith(f",snapshots/{older.id}.jpg") and rows[2].endswith(",")
        with pytest.raises(GalleryError, match="snapshot is not a JPEG"):
            g.record_sightings([with_snapshot(sighting(), b"GIF89a....", (1, 2, 3, 4))])
        with pytest.raises(GalleryError, match="needs the face's box"):
            g.record_sightings([dataclasses.replace(sighting(), snapshot_jpeg=snap)])


def test_retention_and_erasure_remove_every_byte_of_the_snapshots(tmp_path: Path) -> None:
    snaps = face_jpegs(3)  # real photos: their bytes are distinctive
    old, erin_snap, kept = snaps
    rng = np.random.default_rng(5)
    now = T0 + 100 * 86400
    path = tmp_path / "gallery.db"
    with Gallery.open(path, key=PLAIN) as g:  # the bytes of the file itself are read
        g.enrol_sample("Erin", model=MODEL, embedding=unit(rng), crop_jpeg=b"", source="", quality=1)
        erin = g.person("Erin").id
        g.record_sightings(
            [
                with_snapshot(sighting(start=now - 60 * 86400), old, (0, 0, 10, 10)),
                with_snapshot(sighting(start=now - 3600, person_id=erin), erin_snap, (0, 0, 10, 10)),
                with_snapshot(sighting(start=now - 60), kept, (0, 0, 10, 10)),
            ]
        )
        assert g.flush()
        raw = _raw(path)
        secrets = [s for s in _distinctive(old, kept) + _distinctive(erin_snap, kept) if s in raw]
        assert len(secrets) > 40
        assert g.apply_retention(30, now=now).sightings_deleted == 1
        g.delete_person("Erin", erase_sightings=False)  # the sighting stays, unlinked, without her face
        raw = _raw(path)
        assert [s for s in secrets if s in raw] == []
        left = g.history(limit=10, audit=False)
        assert len(left) == 2 and [s.has_snapshot for s in sorted(left, key=lambda s: s.start)] == [False, True]
        assert _distinctive(kept, old)[0] in raw


@pytest.mark.slow
def test_history_shows_the_snapshot_of_a_scanned_sighting_with_its_box(qtbot: QtBot, tmp_path: Path) -> None:
    """Footage through the engine (station/scan.py): the sighting's snapshot is the frame of its best moment."""
    from station.runtime import RecognitionSettings, calibrated_threshold
    from station.scan import scan_file
    from vision.pipeline import FacePipeline

    pipeline = FacePipeline()
    with Gallery.open(tmp_path / "g.db") as g:
        settings = RecognitionSettings(threshold=calibrated_threshold(pipeline.model))
        summary = scan_file(need(CLIP), pipeline=pipeline, gallery=g, settings=settings, camera="archive", start=T0)
        assert summary.sightings >= 3
        found = [s for s in g.history(limit=50, audit=False) if s.has_snapshot]
        assert len(found) == summary.sightings, "every sighting keeps its snapshot"
        best = max(found, key=lambda s: s.box[2] * s.box[3])
        snap = g.snapshot(best.id)
        assert snap is not None
        image = cv2.imdecode(np.frombuffer(snap.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (360, 640)
        x, y, w, h = snap.box
        assert x >= 0 and y >= 0 and x + w <= 641 and y + h <= 361 and (x, y, w, h) == pytest.approx(best.box)

        view = HistoryView(g, Jobs(), None)
        qtbot.addWidget(view)
        qtbot.waitUntil(lambda: len(view.rows()) == summary.sightings, timeout=10_000)
        row = next(i for i, r in enumerate(view.rows()) if r.sighting.id == best.id)
        view.select_row(row)
        qtbot.waitUntil(lambda: view.snapshot_image is not None, timeout=10_000)
        assert view.snapshot.pixmap() is not None and not view.snapshot.pixmap().isNull()
        shown = view.snapshot_image
        assert shown is not None and shown.shape[1] == 640
        # the box is drawn in the snapshot's colour on its edge
        edge = shown[round(y), round(x + w / 2)]
        assert tuple(int(v) for v in edge) == (0, 200, 255)
