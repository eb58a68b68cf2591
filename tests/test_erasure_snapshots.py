"""Erasure that reaches the snapshots: an erased person's face is blurred in other sightings' evidence snapshots
where the station recorded their track's box for that frame (same camera, inside their sighting's time), and
nowhere else; sightings still being written while a person is erased lose nothing and bring nothing of them
back; queued sightings of a merged person follow the merge. Real face photos, real files."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from storage.gallery import Gallery
from storage.gallerykey import KeySpec
from storage.records import NewSighting, SnapshotFace
from tests.conftest import FACES, need, raw_connect
from tests.test_storage import MODEL, T0, unit
from tests.test_storage_reliability import _distinctive, _raw

LEFT = (70.0, 60.0, 110.0, 135.0)  # the face of the left photo, in the snapshot's pixels
RIGHT = (320.0, 60.0, 110.0, 135.0)  # the face of the right photo


def _photo(name: str) -> npt.NDArray[np.uint8]:
    path = need(FACES / "identities" / name / f"{name}_0001.jpg")
    img = cv2.imread(str(path))
    assert img is not None
    return np.asarray(img, dtype=np.uint8)


@pytest.fixture(scope="module")
def frame() -> tuple[bytes, npt.NDArray[np.uint8]]:
    """One 500x250 frame: Andre Agassi on the left, Colin Powell on the right; its JPEG and its pixels."""
    img = np.hstack([_photo("Andre_Agassi"), _photo("Colin_Powell")])
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    data = buf.tobytes()
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    return data, np.asarray(decoded, dtype=np.uint8)


def _region(img: npt.NDArray[np.uint8], box: tuple[float, float, float, float]) -> npt.NDArray[np.float32]:
    x, y, w, h = (int(v) for v in box)
    return img[y : y + h, x : x + w].astype(np.float32)


def _detail(img: npt.NDArray[np.float32]) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var())


def _state(jpeg: bytes, original: npt.NDArray[np.uint8], box: tuple[float, float, float, float]) -> str:
    """'blurred' when the face's fine detail is gone and its pixels moved far; 'intact' when it is the same
    face up to JPEG re-encoding."""
    img = np.asarray(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), dtype=np.uint8)
    now, before = _region(img, box), _region(original, box)
    diff = float(np.abs(now - before).mean())
    if diff < 4.0:
        return "intact"
    if _detail(now) < 0.05 * _detail(before) and diff > 12.0:
        return "blurred"
    return f"changed but not blurred (diff {diff:.1f})"


def _seen(
    camera: str,
    track: str,
    start: float,
    frame_jpeg: bytes,
    faces: tuple[SnapshotFace, ...],
    person_id: int | None = None,
    crop: bytes = b"",
    taken: float | None = None,
) -> NewSighting:
    return NewSighting(
        camera=camera,
        start=start,
        end=start + 4.0,
        person_id=person_id,
        score=0.8,
        box=(0.0, 0.0, 10.0, 10.0),
        crop_jpeg=crop,
        embedding=None,
        model=MODEL,
        track=track,
        snapshot_jpeg=frame_jpeg,
        snapshot_box=faces[0].box if faces else (0.0, 0.0, 1.0, 1.0),
        snapshot_faces=faces,
        snapshot_at=start + 2.0 if taken is None else taken,
    )


def test_erasing_a_person_blurs_them_in_the_other_snapshots_that_recorded_their_box(
    tmp_path: Path, frame: tuple[bytes, npt.NDArray[np.uint8]]
) -> None:
    jpeg, pixels = frame
    with Gallery.open(tmp_path / "g.db") as g:
        g.enrol_sample(
            "Andre", model=MODEL, embedding=unit(np.random.default_rng(1)), crop_jpeg=b"", source="", quality=1
        )
        andre = g.person("Andre").id
        both = (SnapshotFace("a1", LEFT), SnapshotFace("c1", RIGHT))
        g.record_sightings(
            [
                _seen("door", "a1", T0, jpeg, both, person_id=andre),  # Andre's own: erased with him
                _seen("door", "c1", T0 + 1, jpeg, both[::-1]),  # Colin's, taken inside a1's time: blur a1
                _seen(
                    "door", "c9", T0 + 100, jpeg, (SnapshotFace("c9", RIGHT), SnapshotFace("a1", LEFT))
                ),  # a1 of another run
                _seen(
                    "yard", "c2", T0 + 1, jpeg, (SnapshotFace("c2", RIGHT), SnapshotFace("a1", LEFT))
                ),  # another camera
                _seen("door", "c3", T0 + 1, jpeg, (SnapshotFace("c3", RIGHT),)),  # Andre there, never detected
                _seen("door", "c4", T0 - 10, jpeg, both[::-1], taken=None),  # taken before a1 began
            ]
        )
        assert g.flush()
        by_track = {s.track: s.id for s in g.history(limit=100)}
        g.delete_person("Andre")
        snaps = {t: g.snapshot(sid) for t, sid in by_track.items() if t != "a1"}
        assert all(s is not None for s in snaps.values())
        states = {t: (_state(s.jpeg, pixels, LEFT), _state(s.jpeg, pixels, RIGHT)) for t, s in snaps.items() if s}
        details = g.audit_log(action="delete")[0].details
        assert by_track["a1"] not in {s.id for s in g.history(limit=100)}
    assert states == {
        "c1": ("blurred", "intact"),
        "c9": ("intact", "intact"),  # the same track id, but outside a1's time: another station run
        "c2": ("intact", "intact"),  # another camera
        "c3": ("intact", "intact"),  # a face the station never recorded cannot be found
        "c4": ("intact", "intact"),  # taken at T0-8, before a1 (T0..T0+4) began
    }, states
    assert '"snapshots_blurred": 1' in details
    conn = raw_connect(tmp_path / "g.db")
    try:
        left = conn.execute("SELECT camera, track FROM snapshot_faces WHERE track = 'a1' ORDER BY camera").fetchall()
    finally:
        conn.close()
    assert left == [("door", "a1"), ("door", "a1"), ("yard", "a1")], "only the blurred face's row is forgotten"


def test_no_snapshot_time_matches_by_the_sightings_overlap(
    tmp_path: Path, frame: tuple[bytes, npt.NDArray[np.uint8]]
) -> None:
    jpeg, pixels = frame
    with Gallery.open(tmp_path / "g.db") as g:
        g.enrol_sample(
            "Andre", model=MODEL, embedding=unit(np.random.default_rng(1)), crop_jpeg=b"", source="", quality=1
        )
        andre = g.person("Andre").id
        faces = (SnapshotFace("c1", RIGHT), SnapshotFace("a1", LEFT))
        untimed = _seen("door", "c1", T0 + 2, jpeg, faces)
        untimed = NewSighting(**{**untimed.__dict__, "snapshot_at": None})
        g.record_sightings([_seen("door", "a1", T0, jpeg, faces[::-1], person_id=andre), untimed])
        assert g.flush()
        g.delete_person("Andre")
        (left,) = g.history(limit=10)
        snap = g.snapshot(left.id)
        assert snap is not None and _state(snap.jpeg, pixels, LEFT) == "blurred"
        assert _state(snap.jpeg, pixels, RIGHT) == "intact"


@pytest.mark.slow
def test_erasing_while_sightings_are_written_loses_nothing_and_leaves_nothing_of_them(
    tmp_path: Path, frame: tuple[bytes, npt.NDArray[np.uint8]]
) -> None:
    """A producer writes Andre's tracks and Colin's (whose snapshots show Andre, inside Andre's tracks' time) in
    shuffled order, before, during and after Andre is erased, as a tracker still holding his tracks would."""
    jpeg, pixels = frame
    crop = need(FACES / "identities" / "Andre_Agassi" / "Andre_Agassi_0002.jpg").read_bytes()
    path = tmp_path / "g.db"
    rounds, per_round = 24, 6
    with Gallery.open(path, key=KeySpec(plain=True)) as g:  # plain: the file's bytes are searched below
        g.enrol_sample(
            "Andre", model=MODEL, embedding=unit(np.random.default_rng(1)), crop_jpeg=crop, source="", quality=1
        )
        andre = g.person("Andre").id
        erased = threading.Event()
        colin_written = 0

        def produce() -> None:
            nonlocal colin_written
            rng = random.Random(7)
            for r in range(rounds):
                batch: list[NewSighting] = []
                for k in range(per_round):
                    t = T0 + (r * per_round + k) * 10.0
                    a, c = f"a{r}.{k}", f"c{r}.{k}"
                    batch.append(
                        _seen("door", a, t, jpeg, (SnapshotFace(a, LEFT), SnapshotFace(c, RIGHT)), andre, crop)
                    )
                    batch.append(_seen("door", c, t + 1, jpeg, (SnapshotFace(c, RIGHT), SnapshotFace(a, LEFT))))
                rng.shuffle(batch)
                for start in range(0, len(batch), 5):
                    g.record_sightings(batch[start : start + 5])
                colin_written += per_round
                if r == rounds // 2:
                    erased.wait(30)

        producer = threading.Thread(target=produce)
        producer.start()
        while colin_written < rounds // 3 * per_round:
            threading.Event().wait(0.01)
        g.delete_person("Andre")
        erased.set()
        producer.join(60)
        assert g.flush(60)
        assert g.writer_errors() == []
        left = g.history(limit=10_000)
        assert len(left) == colin_written == rounds * per_round, "every one of Colin's sightings is kept"
        assert all(s.person_id is None and s.track.startswith("c") for s in left)
        snaps = [g.snapshot(s.id) for s in left]
        assert all(snap is not None for snap in snaps)
        states = {(_state(snap.jpeg, pixels, LEFT), _state(snap.jpeg, pixels, RIGHT)) for snap in snaps if snap}
        assert states == {("blurred", "intact")}, states
        kept = b"".join(snap.jpeg for snap in snaps if snap)  # the blurred frames: JPEG tables they share
        assert "Andre" not in [p.name for p in g.persons()]
        assert (
            g.read(lambda c: c.execute("SELECT count(*) FROM snapshot_faces WHERE track LIKE 'a%'").fetchone()[0]) == 0
        )
    raw = _raw(path)
    secrets = _distinctive(crop, kept) + _distinctive(jpeg, kept)
    assert len(secrets) > 100 and [s for s in secrets if s in raw] == [], "no byte of his crop or the unblurred frame"


def test_queued_sightings_of_a_merged_person_follow_the_merge_and_ids_are_never_reused(tmp_path: Path) -> None:
    with Gallery.open(tmp_path / "g.db") as g:
        rng = np.random.default_rng(2)
        for name in ("Ann", "Anne", "Bob"):
            g.enrol_sample(name, model=MODEL, embedding=unit(rng), crop_jpeg=b"", source="", quality=1)
        ann, anne, bob = (g.person(n).id for n in ("Ann", "Anne", "Bob"))
        g.merge("Anne", "Ann")
        g.delete_person("Bob")
        queued = [
            NewSighting("door", T0, T0 + 1, pid, 0.9, (0.0, 0.0, 1.0, 1.0), b"", None, MODEL, f"t{pid}")
            for pid in (anne, bob, ann)
        ]
        g.record_sightings(queued)
        assert g.flush() and g.writer_errors() == []
        assert sorted((s.person, s.track) for s in g.history(limit=10)) == [("Ann", f"t{ann}"), ("Ann", f"t{anne}")]
        g.enrol_sample("Cy", model=MODEL, embedding=unit(rng), crop_jpeg=b"", source="", quality=1)
        assert g.person("Cy").id > max(ann, anne, bob), "an erased person's id is never given to a new one"
