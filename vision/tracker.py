"""Per-camera tracking: one person walking past one camera is one track, and one sighting.

Each frame's faces are linked to the camera's live tracks by box overlap (IoU) and
embedding cosine together, greedily from the most alike pair down (a full Hungarian
assignment buys nothing for the handful of faces in a frame). A face that overlaps a
track but looks like someone else is not linked, and a face that jumped (the frame rate
dropped under load) is still linked if its embedding is close enough.

The identity of a track is a vote: each frame's match votes for its person (or for
unknown) with its score as weight. A track ends when unseen for ``max_unseen_s`` or
on :meth:`Tracker.flush`, and becomes one frozen :class:`TrackRecord` that carries
the best crop by the caller's quality value.

A tracker belongs to one camera and is not thread-safe: its owner serialises calls.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vision.matcher import Match
from vision.types import Box, FloatArray, ImageBGR

_track_numbers = itertools.count(1)  # shared by every tracker: ids stay unique across cameras and restarts


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """How tracks link and end; the similarity figures suit FaceNet's cosine scale."""

    max_unseen_s: float = 1.5
    min_iou: float = 0.1
    min_similarity: float = 0.2
    relink_similarity: float = 0.55
    iou_weight: float = 0.5
    unknown_vote_weight: float = 0.5
    max_tracks: int = 64

    def __post_init__(self) -> None:
        if self.max_unseen_s <= 0:
            raise ValueError(f"max_unseen_s must be > 0, got {self.max_unseen_s}")
        if not 0.0 <= self.iou_weight <= 1.0:
            raise ValueError(f"iou_weight must lie in [0, 1], got {self.iou_weight}")
        if self.max_tracks < 1:
            raise ValueError(f"max_tracks must be >= 1, got {self.max_tracks}")


@dataclass(frozen=True, slots=True)
class TrackInput:
    """One face of one frame as the tracker needs it: where, what it looks like, who it matched, how good it is."""

    box: Box
    match: Match
    quality: float
    embedding: FloatArray | None = None
    crop: ImageBGR | None = field(default=None, repr=False)
    model: str = ""


@dataclass(frozen=True, slots=True)
class TrackView:
    """A live track as a frame sees it: its stable id and the identity voted so far."""

    track_id: str
    person_id: int | None
    person: str | None
    frames: int


@dataclass(frozen=True)
class TrackRecord:
    """An ended track: what becomes one sighting.

    ``start``/``end`` are the capture times of its first and last frame. ``score`` is the best
    score of the voted person over the track (for an unknown track, the best score seen).
    ``box``, ``crop`` and ``embedding`` come from the frame with the best quality.
    """

    camera: str
    track_id: str
    start: float
    end: float
    person_id: int | None
    person: str | None
    score: float
    frames: int
    quality: float
    box: Box
    crop: ImageBGR | None = field(repr=False)
    embedding: FloatArray | None = field(repr=False)
    model: str


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """The tracker's answer to one frame: a view per face (same order) and the tracks that ended."""

    views: tuple[TrackView, ...]
    ended: tuple[TrackRecord, ...]


class _Track:
    """A live track's running state (owned by one tracker)."""

    __slots__ = (
        "best_box",
        "best_crop",
        "best_embedding",
        "best_quality",
        "best_scores",
        "box",
        "embedding",
        "first_at",
        "frames",
        "last_at",
        "last_now",
        "model",
        "names",
        "top_score",
        "track_id",
        "votes",
    )

    def __init__(self, track_id: str, face: TrackInput, at: float, now: float) -> None:
        self.track_id = track_id
        self.first_at = self.last_at = at
        self.last_now = now
        self.frames = 0
        self.votes: dict[int | None, float] = {}
        self.best_scores: dict[int | None, float] = {}
        self.names: dict[int, str] = {}
        self.top_score = -1.0
        self.best_quality = -np.inf
        self.box = face.box
        self.best_box = face.box
        self.best_crop: ImageBGR | None = None
        self.best_embedding: FloatArray | None = None
        self.embedding: FloatArray | None = None
        self.model = face.model

    def add(self, face: TrackInput, at: float, now: float, unknown_weight: float) -> None:
        self.frames += 1
        self.last_at = max(self.last_at, at)
        self.last_now = now
        self.box = face.box
        m = face.match
        weight = max(m.score, 0.0) * (1.0 if m.person_id is not None else unknown_weight)
        self.votes[m.person_id] = self.votes.get(m.person_id, 0.0) + weight
        self.best_scores[m.person_id] = max(self.best_scores.get(m.person_id, -1.0), m.score)
        if m.person_id is not None and m.person is not None:
            self.names[m.person_id] = m.person
        self.top_score = max(self.top_score, m.score)
        if face.embedding is not None and face.model == self.model:
            e = _unit(face.embedding)
            if self.embedding is None or len(self.embedding) != len(e):
                self.embedding = e
            else:  # a running mean of the face, so one odd frame does not unlink the track
                self.embedding = _unit(0.7 * self.embedding + 0.3 * e)
        if face.quality > self.best_quality or self.frames == 1:
            self.best_quality = face.quality
            self.best_box = face.box
            self.best_crop = face.crop
            self.best_embedding = face.embedding

    def voted(self) -> int | None:
        if not self.votes:
            return None
        # On a tie unknown wins: naming someone needs more evidence than not naming anyone.
        return max(self.votes, key=lambda p: (self.votes[p], p is None))

    def view(self) -> TrackView:
        pid = self.voted()
        return TrackView(self.track_id, pid, None if pid is None else self.names.get(pid), self.frames)

    def record(self, camera: str) -> TrackRecord:
        pid = self.voted()
        score = self.best_scores.get(pid, self.top_score) if pid is not None else self.top_score
        return TrackRecord(
            camera=camera,
            track_id=self.track_id,
            start=self.first_at,
            end=self.last_at,
            person_id=pid,
            person=None if pid is None else self.names.get(pid),
            score=float(score),
            frames=self.frames,
            quality=float(self.best_quality),
            box=self.best_box,
            crop=self.best_crop,
            embedding=self.best_embedding,
            model=self.model,
        )


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> FloatArray:
    """Pairwise intersection over union of (x, y, w, h) boxes, (len(a), len(b))."""
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    pa = np.asarray(a, dtype=np.float64)[:, None, :]
    pb = np.asarray(b, dtype=np.float64)[None, :, :]
    ax0, ay0, ax1, ay1 = pa[..., 0], pa[..., 1], pa[..., 0] + pa[..., 2], pa[..., 1] + pa[..., 3]
    bx0, by0, bx1, by1 = pb[..., 0], pb[..., 1], pb[..., 0] + pb[..., 2], pb[..., 1] + pb[..., 3]
    ix = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    iy = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = ix * iy
    union = pa[..., 2] * pa[..., 3] + pb[..., 2] * pb[..., 3] - inter
    out: FloatArray = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0).astype(np.float32)
    return out


class Tracker:
    """Links one camera's faces across frames and turns ended tracks into :class:`TrackRecord` s."""

    def __init__(self, camera: str, config: TrackerConfig | None = None) -> None:
        self.camera = camera
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []

    @property
    def live(self) -> int:
        return len(self._tracks)

    def update(self, faces: Sequence[TrackInput], at: float, now: float | None = None) -> TrackUpdate:
        """Add one frame's faces, captured at ``at``; ``now`` is the station clock for expiry (default ``at``)."""
        now = at if now is None else now
        ended = self.expire(now)
        cfg = self.config
        links = self._associate(faces)
        views: list[TrackView] = []
        for d, face in enumerate(faces):
            track = links.get(d)
            if track is None:
                if len(self._tracks) >= cfg.max_tracks:  # bound: the stalest track makes room
                    oldest = min(self._tracks, key=lambda t: t.last_now)
                    self._tracks.remove(oldest)
                    ended.append(oldest.record(self.camera))
                track = _Track(f"{self.camera}-{next(_track_numbers)}", face, at, now)
                self._tracks.append(track)
            track.add(face, at, now, cfg.unknown_vote_weight)
            views.append(track.view())
        return TrackUpdate(tuple(views), tuple(ended))

    def expire(self, now: float) -> list[TrackRecord]:
        """End the tracks unseen for longer than ``max_unseen_s`` before ``now``."""
        limit = self.config.max_unseen_s
        gone = [t for t in self._tracks if now - t.last_now > limit]
        if gone:
            self._tracks = [t for t in self._tracks if now - t.last_now <= limit]
        return [t.record(self.camera) for t in gone]

    def flush(self) -> list[TrackRecord]:
        """End every live track (the camera went away or the service stops)."""
        gone, self._tracks = self._tracks, []
        return [t.record(self.camera) for t in gone]

    def views(self) -> list[TrackView]:
        return [t.view() for t in self._tracks]

    def _associate(self, faces: Sequence[TrackInput]) -> dict[int, _Track]:
        tracks = self._tracks
        if not tracks or not faces:
            return {}
        cfg = self.config
        iou = iou_matrix([t.box for t in tracks], [f.box for f in faces])
        sim = np.full(iou.shape, np.nan, dtype=np.float32)
        for i, t in enumerate(tracks):
            if t.embedding is None:
                continue
            for j, f in enumerate(faces):
                if f.embedding is not None and f.model == t.model and len(f.embedding) == len(t.embedding):
                    e = np.asarray(f.embedding, dtype=np.float32)
                    norm = float(np.linalg.norm(e))
                    sim[i, j] = float(t.embedding @ e) / norm if norm > 0 else 0.0
        known = ~np.isnan(sim)
        simz = np.where(known, sim, 0.0)
        overlap_ok = (iou >= cfg.min_iou) & (~known | (simz >= cfg.min_similarity))
        jump_ok = known & (simz >= cfg.relink_similarity)
        valid = overlap_ok | jump_ok
        affinity = np.where(known, cfg.iou_weight * iou + (1 - cfg.iou_weight) * np.clip(simz, 0, None), iou)
        pairs = np.argwhere(valid)
        order = np.argsort(-affinity[valid], kind="stable")
        used_t: set[int] = set()
        links: dict[int, _Track] = {}
        for k in order:
            i, j = int(pairs[k][0]), int(pairs[k][1])
            if i in used_t or j in links:
                continue
            used_t.add(i)
            links[j] = tracks[i]
        return links


def _unit(v: npt.ArrayLike) -> FloatArray:
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(a))
    out: FloatArray = a / n if n > 0 else a
    return out
