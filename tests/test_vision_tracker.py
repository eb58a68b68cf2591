"""Tracker: linking by overlap and embedding, voting, expiry, best crop by quality."""

from __future__ import annotations

import numpy as np
import pytest

from vision.matcher import Match
from vision.tracker import Tracker, TrackerConfig, TrackInput, TrackRecord, iou_matrix

E = np.eye(8, dtype=np.float32)
UNKNOWN = Match(None, None, 0.3, 0.1)


def ann(score: float = 0.7) -> Match:
    return Match(1, "Ann", score, 0.2)


def face(x: float, y: float, emb: np.ndarray | None, match: Match = UNKNOWN, quality: float = 1.0) -> TrackInput:
    crop = np.full((4, 4, 3), int(quality * 10) % 256, dtype=np.uint8)
    return TrackInput((x, y, 50.0, 50.0), match, quality, emb, crop, "m")


def test_iou_matrix() -> None:
    got = iou_matrix([(0, 0, 10, 10), (100, 100, 5, 5)], [(5, 0, 10, 10), (0, 0, 10, 10)])
    assert got.shape == (2, 2)
    assert got[0, 0] == pytest.approx(50 / 150)
    assert got[0, 1] == pytest.approx(1.0)
    assert got[1, 0] == 0 and got[1, 1] == 0
    assert iou_matrix([], [(0, 0, 1, 1)]).shape == (0, 1)


def test_a_moving_face_keeps_one_stable_track_id() -> None:
    t = Tracker("cam")
    ids = [t.update([face(10 + 8 * i, 20, E[0])], at=i * 0.1).views[0].track_id for i in range(10)]
    assert len(set(ids)) == 1 and ids[0].startswith("cam-")
    assert t.live == 1


def test_two_people_crossing_keep_their_own_tracks() -> None:
    """Their boxes overlap as they pass; their embeddings keep them apart."""
    t = Tracker("cam")
    seen: dict[str, set[str]] = {"a": set(), "b": set()}
    for i in range(11):
        a = face(0 + 10 * i, 0, E[0])  # left to right
        b = face(100 - 10 * i, 5, E[1])  # right to left
        views = t.update([b, a] if i % 2 else [a, b], at=i * 0.1).views
        va, vb = (views[1], views[0]) if i % 2 else (views[0], views[1])
        seen["a"].add(va.track_id)
        seen["b"].add(vb.track_id)
    assert len(seen["a"]) == 1 and len(seen["b"]) == 1 and seen["a"] != seen["b"]


def test_a_jump_is_relinked_by_embedding_and_a_stranger_at_the_same_place_is_not() -> None:
    t = Tracker("cam")
    first = t.update([face(0, 0, E[0])], at=0.0).views[0].track_id
    jumped = t.update([face(300, 200, E[0])], at=0.5).views[0].track_id  # low frame rate: no overlap
    assert jumped == first
    other = t.update([face(302, 200, E[1])], at=0.6).views[0].track_id  # same place, another face
    assert other != first


def test_without_embeddings_overlap_alone_links() -> None:
    t = Tracker("cam")
    a = t.update([face(0, 0, None)], at=0).views[0].track_id
    assert t.update([face(10, 0, None)], at=0.1).views[0].track_id == a
    assert t.update([face(200, 0, None)], at=0.2).views[0].track_id != a


def test_identity_is_a_score_weighted_vote_and_the_record_has_the_best_score() -> None:
    t = Tracker("cam", TrackerConfig(max_unseen_s=1.0))
    matches = [ann(0.6), UNKNOWN, ann(0.75), UNKNOWN, ann(0.65)]
    views = [t.update([face(0, 0, E[0], m)], at=10 + i * 0.1).views[0] for i, m in enumerate(matches)]
    assert views[0].person == "Ann" and views[1].person == "Ann"  # 0.6 against 0.15
    (record,) = t.flush()
    assert record.person_id == 1 and record.person == "Ann" and record.frames == 5
    assert record.score == pytest.approx(0.75)
    assert record.start == 10 and record.end == pytest.approx(10.4)
    assert record.model == "m" and record.camera == "cam"


def test_one_chance_match_does_not_name_a_stranger() -> None:
    t = Tracker("cam")
    for i, m in enumerate([UNKNOWN, Match(1, "Ann", 0.52, 0.4), UNKNOWN, UNKNOWN, UNKNOWN]):
        t.update([face(0, 0, E[2], Match(None, None, 0.45, 0.3) if m is UNKNOWN else m)], at=i * 0.1)
    (record,) = t.flush()
    assert record.person_id is None and record.person is None
    assert record.score == pytest.approx(0.52)  # the best score seen on an unknown track


def test_track_ends_after_max_unseen_and_keeps_the_best_quality_crop() -> None:
    t = Tracker("cam", TrackerConfig(max_unseen_s=1.0))
    qualities = [0.2, 0.9, 0.4]
    for i, q in enumerate(qualities):
        t.update([face(5 * i, 0, E[0], ann(), quality=q)], at=100 + i * 0.1)
    assert t.expire(101.1) == []  # last seen at 100.2: 0.9 s ago
    (record,) = t.expire(101.3)
    assert t.live == 0
    assert record.quality == pytest.approx(0.9) and record.box == (5.0, 0.0, 50.0, 50.0)
    assert record.crop is not None and int(record.crop[0, 0, 0]) == 9
    assert record.embedding is not None and np.allclose(record.embedding, E[0])
    assert record.end == pytest.approx(100.2)


def test_an_update_ends_stale_tracks_first_so_they_are_never_relinked() -> None:
    t = Tracker("cam", TrackerConfig(max_unseen_s=0.5))
    first = t.update([face(0, 0, E[0])], at=0).views[0].track_id
    upd = t.update([face(0, 0, E[0])], at=2.0)
    assert [r.track_id for r in upd.ended] == [first]
    assert upd.views[0].track_id != first


def test_expiry_uses_the_station_clock_when_given() -> None:
    t = Tracker("cam", TrackerConfig(max_unseen_s=1.0))
    t.update([face(0, 0, E[0])], at=5000.0, now=10.0)  # the sender's clock is far off the station's
    assert t.expire(10.9) == []
    (record,) = t.expire(11.1)
    assert record.start == 5000.0


def test_live_tracks_are_bounded() -> None:
    t = Tracker("cam", TrackerConfig(max_tracks=3))
    ended: list[TrackRecord] = []
    for i in range(5):
        ended += t.update([face(1000 * i, 0, E[i])], at=i * 0.01).ended
    assert t.live == 3 and len(ended) == 2


def test_track_ids_are_unique_across_trackers() -> None:
    a, b = Tracker("cam"), Tracker("cam")
    ida = a.update([face(0, 0, E[0])], at=0).views[0].track_id
    idb = b.update([face(0, 0, E[0])], at=0).views[0].track_id
    assert ida != idb


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="max_unseen_s"):
        TrackerConfig(max_unseen_s=0)
    with pytest.raises(ValueError, match="iou_weight"):
        TrackerConfig(iou_weight=2)


@pytest.mark.slow
def test_real_faces_from_the_clip_become_one_named_track_and_unknown_audience_tracks() -> None:
    """The real pipeline (MTCNN, FaceNet) on the Hamilton clip at 7.5 fps: Lin-Manuel Miranda
    performing (frames 90-210) is one track voted as him; the audience shots after it are
    other, unknown tracks; Alex Lacamoire, also enrolled, is never named."""
    import cv2

    from tests.conftest import CLIP, FACES, need
    from vision.embedders import load_embedder
    from vision.matcher import Matcher, resolve_threshold
    from vision.pipeline import FacePipeline, read_image

    refs = need(FACES / "video" / "reference_faces")
    pipeline = FacePipeline(embedder=load_embedder("facenet-512"))
    people = {"Lin-Manuel Miranda": "lin-manuel-miranda.png", "Alex Lacamoire": "alex-lacamoire.png"}
    enrolled = [pipeline.central_face(read_image(refs / f)) for f in people.values()]  # type: ignore[arg-type]
    # The calibrated 1:N default when the embedder has one; else 0.5, between these scores (0.5-0.8 for him,
    # under 0.4 for everyone else in the clip).
    threshold = resolve_threshold(pipeline.embedder, None if hasattr(pipeline.embedder, "default_threshold") else 0.5)
    matcher = Matcher(
        pipeline.model, [1, 2], list(people), np.stack([o.embedding for o in enrolled]), threshold=threshold
    )
    tracker = Tracker("stage")
    cap = cv2.VideoCapture(str(need(CLIP)))
    named_tracks: set[str] = set()
    records: list[TrackRecord] = []
    index = 0
    while index < 275:
        ok, image = cap.read()
        if not ok:
            break
        if index >= 90 and index % 4 == 0:
            faces = pipeline.observe(np.asarray(image, dtype=np.uint8))
            matches = matcher.match(np.stack([f.embedding for f in faces]), model=pipeline.model) if faces else []
            inputs = [
                TrackInput(f.detection.box, m, f.quality.score, f.embedding, f.crop, f.model)
                for f, m in zip(faces, matches, strict=True)
            ]
            update = tracker.update(inputs, at=index / 29.97)
            records += update.ended
            named_tracks |= {v.track_id for v, m in zip(update.views, matches, strict=True) if m.person_id == 1}
            assert all(m.person_id != 2 for m in matches)
        index += 1
    cap.release()
    records += tracker.flush()
    assert len(named_tracks) == 1, f"every frame that matched him should sit on one track: {named_tracks}"
    (lin,) = [r for r in records if r.track_id in named_tracks]
    assert lin.person == "Lin-Manuel Miranda" and lin.frames >= 25 and lin.score > 0.7
    assert lin.crop is not None and lin.embedding is not None and lin.model == pipeline.model
    assert 90 / 29.97 <= lin.start < lin.end <= 215 / 29.97
    others = [r for r in records if r.track_id not in named_tracks]
    assert all(r.person is None for r in others)
    audience = [r for r in others if r.start > lin.end and r.frames >= 10]
    assert len(audience) >= 3, f"the audience faces should be tracked steadily, one track each: {others}"
