"""Tracker, track-first: link by overlap, embed only what adds information, decide per track from a template."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from facefind.boxes import iou_matrix
from vision.decision import BoundJudge, Decider, next_revision
from vision.faces import DecisionState, Face, Look
from vision.frames import FrameRef
from vision.matcher import Matcher
from vision.quality import Quality
from vision.tracker import Tracker, TrackerConfig, TrackRecord
from vision.types import Detection

E = np.eye(8, dtype=np.float32)


def crop(tag: int) -> npt.NDArray[np.uint8]:
    """A small crop with a texture of its own per face; its first pixel names the face (the fake embedder reads it)."""
    c = np.random.default_rng(tag).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    c[0, 0, 0] = tag
    return c


class Embedder:
    """Embeds a crop as E[tag] (optionally with some noise), counting calls and faces."""

    def __init__(self) -> None:
        self.calls = 0
        self.faces = 0

    def __call__(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        self.calls += 1
        self.faces += len(crops)
        return np.stack([E[int(c[0, 0, 0]) % 8] for c in crops])


def face(x: float, y: float, tag: int, quality: float = 0.5, embedding: bool = False) -> Face:
    box = (x, y, 50.0, 50.0)
    marks = ((x + 15, y + 20), (x + 35, y + 20), (x + 25, y + 30), (x + 17, y + 40), (x + 33, y + 40))
    q = Quality(blur=100.0, face_size=50.0, yaw=0.0, roll=0.0, score=quality)
    return Face(Detection(box, marks, 0.99), q, "m", crop=crop(tag), embedding=E[tag] if embedding else None)


def matcher(threshold: float = 0.6) -> Matcher:
    """Ann is E[0], Bob is E[1]."""
    return Matcher("m", [1, 2], ["Ann", "Bob"], np.stack([E[0], E[1]]), threshold=threshold)


def decider(m: Matcher) -> BoundJudge:
    return Decider(m, next_revision()).bind(None)  # the service's and the scan's own, without confirmation


def run(
    t: Tracker, frames: Sequence[Sequence[Face]], embed: Embedder, judge: BoundJudge, dt: float = 0.1
) -> list[tuple[Face, ...]]:
    views = []
    for i, faces in enumerate(frames):
        ref = FrameRef(f"frame-{i}".encode(), 640, 360)
        views.append(t.update(faces, at=i * dt, frame=ref, embed=embed, judge=judge).faces)
    return views


def test_iou_matrix() -> None:
    got = iou_matrix([(0, 0, 10, 10), (100, 100, 5, 5)], [(5, 0, 10, 10), (0, 0, 10, 10)])
    assert got.shape == (2, 2)
    assert got[0, 0] == pytest.approx(50 / 150)
    assert got[0, 1] == pytest.approx(1.0)
    assert got[1, 0] == 0 and got[1, 1] == 0
    assert iou_matrix([], [(0, 0, 1, 1)]).shape == (0, 1)


def test_a_new_track_is_embedded_and_named_in_its_first_frame() -> None:
    t, embed = Tracker("cam"), Embedder()
    (view,) = t.update([face(0, 0, 0)], at=0.0, embed=embed, judge=decider(matcher())).faces
    assert view.new_track and view.decision.named and view.look is Look.NEW
    assert view.person == "Ann" and view.score == pytest.approx(1.0)
    assert embed.faces == 1


def test_a_moving_face_keeps_one_track_and_is_embedded_only_when_it_adds_information() -> None:
    """30 frames at 10 fps, same quality: the first frame and a re-check a second later, nothing else."""
    t, embed = Tracker("cam"), Embedder()
    views = run(t, [[face(10 + 4 * i, 20, 0)] for i in range(30)], embed, decider(matcher()))
    ids = {v[0].track_id for v in views}
    assert len(ids) == 1 and t.live == 1
    reasons = [v[0].look for v in views if v[0].look]
    assert reasons[0] == "new" and set(reasons[1:]) == {"recheck"}
    assert 2 <= embed.faces <= 4, f"embedded {embed.faces} of 30 faces"
    assert all(v[0].person == "Ann" for v in views)


def test_a_better_frame_is_embedded_and_becomes_the_best_crop() -> None:
    t, embed = Tracker("cam"), Embedder()
    qualities = [0.3, 0.31, 0.32, 0.9, 0.5]  # only the 0.9 frame beats the best by the margin
    views = run(t, [[face(2 * i, 0, 0, quality=q)] for i, q in enumerate(qualities)], embed, decider(matcher()))
    assert [v[0].look for v in views] == ["new", None, None, "better", None]
    (record,) = t.flush()
    assert record.quality == pytest.approx(0.9) and record.box == (6.0, 0.0, 50.0, 50.0)
    assert record.moment is not None and record.moment.frame is not None
    assert record.moment.frame.jpeg == b"frame-3", "the snapshot is the frame of the best moment"
    assert record.moment.detection.box == record.box and record.moment.faces == ((record.track_id, record.box),)
    assert record.looks == 2 and record.frames == 5


def test_someone_else_taking_over_the_box_is_caught_by_the_recheck() -> None:
    """Ann walks off as Bob steps into the same place: IoU alone would keep one track; the re-check splits it."""
    t, embed = Tracker("cam", TrackerConfig(recheck_s=0.5)), Embedder()
    frames = [[face(0, 0, 0)] for _ in range(5)] + [[face(0, 0, 1)] for _ in range(10)]  # the very same box
    views = run(t, frames, embed, decider(matcher()))
    names = [v[0].person for v in views]
    assert names[:5] == ["Ann"] * 5 and names[-1] == "Bob"
    assert views[0][0].track_id != views[-1][0].track_id
    ended = [r.person for r in t.flush()]
    assert ended == ["Bob"]


def test_a_jump_rejoins_its_track_by_embedding_and_a_stranger_at_that_place_does_not() -> None:
    t, embed = Tracker("cam"), Embedder()
    decide = decider(matcher())
    first = t.update([face(0, 0, 0)], at=0.0, embed=embed, judge=decide).faces[0].track_id
    jumped = t.update([face(400, 300, 0)], at=0.5, embed=embed, judge=decide).faces[0]
    assert jumped.track_id == first and not jumped.new_track
    assert jumped.look == "new", "unlinked by overlap: embedded as new, then it rejoined its track"
    t.update([face(404, 300, 0)], at=0.6, embed=embed, judge=decide)
    other = t.update([face(420, 310, 2)], at=0.7, embed=embed, judge=decide).faces[0]
    assert other.look == "verify", "a weak overlap with a stranger's face is checked"
    assert other.track_id != first and other.person is None


def test_two_people_crossing_keep_their_tracks_when_every_face_comes_embedded() -> None:
    """A remote worker that embeds every face: overlap and embedding link together, as before."""
    t = Tracker("cam")
    seen: dict[str, set[str]] = {"a": set(), "b": set()}
    for i in range(11):
        a = face(0 + 10 * i, 0, 0, embedding=True)
        b = face(100 - 10 * i, 5, 1, embedding=True)
        views = t.update([b, a] if i % 2 else [a, b], at=i * 0.1).faces
        va, vb = (views[1], views[0]) if i % 2 else (views[0], views[1])
        seen["a"].add(va.track_id)
        seen["b"].add(vb.track_id)
    assert len(seen["a"]) == 1 and len(seen["b"]) == 1 and seen["a"] != seen["b"]


def test_the_decision_follows_a_new_matcher_and_the_template_is_quality_weighted() -> None:
    t, embed = Tracker("cam"), Embedder()
    empty = Matcher("m", [], [], np.zeros((0, 8), np.float32), threshold=0.6, dim=8)
    view = t.update([face(0, 0, 0)], at=0.0, embed=embed, judge=decider(empty)).faces[0]
    assert view.person is None and view.score is None and view.decision.state is DecisionState.UNKNOWN
    view = t.update([face(1, 0, 0)], at=0.1, embed=embed, judge=decider(matcher())).faces[0]
    assert view.person == "Ann", "an enrolment mid-track names the live track at its next frame"
    assert embed.faces == 1, "deciding again needs no new embedding"


def test_refinements_per_frame_are_bounded_and_new_tracks_come_first() -> None:
    cfg = TrackerConfig(max_refinements_per_frame=1, recheck_s=0.05)
    t, embed = Tracker("cam", cfg), Embedder()
    decide = decider(matcher())
    t.update([face(0, 0, 0), face(200, 0, 1), face(400, 0, 2)], at=0.0, embed=embed, judge=decide)
    assert embed.faces == 3
    faces = [face(0, 0, 0), face(200, 0, 1), face(400, 0, 2), face(600, 0, 3)]
    views = t.update(faces, at=0.2, embed=embed, judge=decide).faces
    assert [v.look for v in views].count(Look.RECHECK) == 1
    assert views[3].look == "new" and views[3].decision.state is not DecisionState.UNDECIDED


def test_track_ends_after_max_unseen_with_its_record() -> None:
    t, embed = Tracker("cam", TrackerConfig(max_unseen_s=1.0)), Embedder()
    for i in range(3):
        t.update([face(5 * i, 0, 0, quality=0.2 + 0.35 * i)], at=100 + i * 0.1, embed=embed, judge=decider(matcher()))
    assert t.expire(101.1) == []  # last seen at 100.2: 0.9 s ago
    (record,) = t.expire(101.3)
    assert t.live == 0
    assert record.person == "Ann" and record.person_id == 1 and record.score == pytest.approx(1.0)
    assert record.embedding is not None and np.allclose(record.embedding, E[0])
    assert record.start == 100 and record.end == pytest.approx(100.2)
    assert record.model == "m" and record.camera == "cam"


def test_an_update_ends_stale_tracks_first_so_they_are_never_relinked() -> None:
    t, embed = Tracker("cam", TrackerConfig(max_unseen_s=0.5)), Embedder()
    first = t.update([face(0, 0, 0)], at=0, embed=embed).faces[0].track_id
    upd = t.update([face(0, 0, 0)], at=2.0, embed=embed)
    assert [r.track_id for r in upd.ended] == [first]
    assert upd.faces[0].track_id != first


def test_expiry_uses_the_station_clock_when_given() -> None:
    t = Tracker("cam", TrackerConfig(max_unseen_s=1.0))
    t.update([face(0, 0, 0)], at=5000.0, now=10.0)
    assert t.expire(10.9) == []
    (record,) = t.expire(11.1)
    assert record.start == 5000.0 and record.embedding is None, "without an embedder nothing is embedded"


def test_live_tracks_are_bounded() -> None:
    t = Tracker("cam", TrackerConfig(max_tracks=3))
    ended: list[TrackRecord] = []
    for i in range(5):
        ended += t.update([face(1000 * i, 0, i)], at=i * 0.01).ended
    assert t.live == 3 and len(ended) == 2


def test_track_ids_are_unique_across_trackers() -> None:
    a, b = Tracker("cam"), Tracker("cam")
    assert a.update([face(0, 0, 0)], at=0).faces[0].track_id != b.update([face(0, 0, 0)], at=0).faces[0].track_id


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="max_unseen_s"):
        TrackerConfig(max_unseen_s=0)
    with pytest.raises(ValueError, match="iou_weight"):
        TrackerConfig(iou_weight=2)
    with pytest.raises(ValueError, match="recheck_s"):
        TrackerConfig(recheck_s=0)


@pytest.mark.slow
@pytest.mark.parametrize("full_every", [1, 3], ids=["full-detection", "refine-between"])
def test_real_faces_from_the_clip_become_one_named_track_and_unknown_audience_tracks(full_every: int) -> None:
    """The real pipeline on the Hamilton clip at 15 fps, track-first: Lin-Manuel Miranda performing
    (frames 90-210) is one track named as him; the audience shots after it are other, unknown
    tracks; Alex Lacamoire, also enrolled, is never named; only a fraction of the faces is embedded.
    ``refine-between`` is the live engine's schedule: a full detection every third frame, and in
    between O-Net near the live tracks' last boxes only."""
    import cv2

    from tests.conftest import CLIP, FACES, need
    from vision.embedders import load_embedder
    from vision.matcher import resolve_threshold
    from vision.pipeline import FacePipeline, read_image

    refs = need(FACES / "video" / "reference_faces")
    pipeline = FacePipeline(embedder=load_embedder("facenet-512"))
    people = {"Lin-Manuel Miranda": "lin-manuel-miranda.png", "Alex Lacamoire": "alex-lacamoire.png"}
    enrolled = [pipeline.central_face(read_image(refs / f)) for f in people.values()]  # type: ignore[arg-type]
    m = Matcher(
        pipeline.model,
        [1, 2],
        list(people),
        np.stack([o.embedding for o in enrolled]),
        threshold=resolve_threshold(pipeline.embedder),
    )
    decide = decider(m)
    tracker = Tracker("stage")
    cap = cv2.VideoCapture(str(need(CLIP)))
    named_tracks: set[str] = set()
    records: list[TrackRecord] = []
    faces_seen = embedded = analysed = 0
    index = 0
    while index < 275:
        ok, image = cap.read()
        if not ok:
            break
        if index >= 90 and index % 2 == 0:
            frame = np.asarray(image, dtype=np.uint8)
            if analysed % full_every == 0:
                found = pipeline.candidates(frame, min_face=40)
            else:
                hints = tracker.recent_boxes(index / 29.97, 0.5)
                found = pipeline.refine_candidates(frame, hints, min_face=40) if hints else []
            analysed += 1
            update = tracker.update(found, at=index / 29.97, embed=pipeline.embed_crops, judge=decide)
            records += update.ended
            faces_seen += len(found)
            embedded += sum(1 for v in update.faces if v.look)
            named_tracks |= {v.track_id for v in update.faces if v.decision.person_id == 1}
            assert all(v.decision.person_id != 2 for v in update.faces)
        index += 1
    cap.release()
    records += tracker.flush()
    assert len(named_tracks) == 1, f"him performing should be one track: {named_tracks}"
    (lin,) = [r for r in records if r.track_id in named_tracks]
    assert lin.person == "Lin-Manuel Miranda" and lin.frames >= 50 and (lin.score or 0) > 0.7
    assert lin.crop is not None and lin.embedding is not None and lin.model == pipeline.model
    assert 90 / 29.97 <= lin.start < lin.end <= 215 / 29.97
    others = [r for r in records if r.track_id not in named_tracks]
    assert all(r.person is None for r in others)
    audience = [r for r in others if r.start > lin.end and r.frames >= 10]
    assert len(audience) >= 3, f"the audience faces should be tracked steadily, one track each: {others}"
    assert embedded <= faces_seen / 3, f"embedded {embedded} of {faces_seen} faces"
