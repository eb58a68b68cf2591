"""Per-camera tracks, decided track-first: one person walking past one camera is one track, and one sighting.

Each frame's detected faces are linked to the camera's live tracks by box overlap (IoU), greedily
from the most overlapping pair down, before anything is embedded: at the frame rates the fast
detector allows, a face moves little from one frame to the next. Embedding is the expensive step,
so a face is embedded only when it adds information (:meth:`Tracker.update` chooses):

* a **new** track (always, in its first frame, so it is named or called unknown at once);
* a frame whose quality **beats** the track's best so far by ``better_quality``;
* a face linked on weak evidence is **verified** at once: its box overlaps the track's by less than
  ``confident_iou`` (a fast move, a jump), or its look changed (the normalised correlation of a
  24×24 grey thumbnail of the aligned crop with the track's last one is under ``min_appearance``:
  a scene cut that put another face where the old one was; measured on the Hamilton clip at 15 fps,
  the same face scores 0.51 and up from frame to frame, a cut 0.49, and fewer than 1 link in 15 is
  verified);
* a periodic **re-check** (``recheck_s``, about once a second), so a track whose box was taken over
  by someone else is caught; a verification or re-check far from the track's template splits it.

A new track whose first embedding is close to a live track that lost its face (a jump under a low
frame rate, a short occlusion) joins that track instead. Faces that arrive with an embedding
already (a remote worker embedded every face) are linked by overlap and embedding together.

The identity is decided per track from a quality-weighted template, the normalised mean of the
track's best ``template_size`` unit embeddings weighted by quality, matched like any query by the
caller's ``decide`` (the same threshold, margin and negatives as a photo). It is decided again when
the template changes or the matcher does (an enrolment mid-track). A track ends when unseen for
``max_unseen_s`` or on :meth:`Tracker.flush`, and becomes one frozen :class:`TrackRecord` carrying
its best crop, its template, and the full frame of its best moment (for the evidence snapshot).

A tracker belongs to one camera and is not thread-safe: its owner serialises calls.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from vision.matcher import NO_SCORE, Match
from vision.types import Box, FloatArray, ImageBGR

_track_numbers = itertools.count(1)  # shared by every tracker: ids stay unique across cameras and restarts

NO_MATCH = Match(None, None, NO_SCORE, NO_SCORE)


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """How tracks link, when faces are embedded, and when tracks end; similarities suit FaceNet's cosine."""

    max_unseen_s: float = 1.5
    min_iou: float = 0.15
    confident_iou: float = 0.4  # a link with less overlap than this is verified by an embedding at once
    min_appearance: float = 0.6  # ... and one whose thumbnail correlates less than this with the track's
    max_centre_shift: float = 0.6  # unmatched by IoU: link if the centre moved less than this × the box side
    relink_similarity: float = 0.55  # a new track this close to a live, unseen track joins it
    split_similarity: float = 0.3  # a re-check this far from the track's template: someone else, split
    min_similarity: float = 0.2  # with embeddings on every face: overlapping but unlike faces are not linked
    iou_weight: float = 0.5
    recheck_s: float = 1.0
    min_embed_gap_s: float = 0.2
    better_quality: float = 0.08
    template_size: int = 5
    max_refinements_per_frame: int = 4  # re-checks and better-quality embeds per frame; new tracks always
    max_tracks: int = 64

    def __post_init__(self) -> None:
        if self.max_unseen_s <= 0:
            raise ValueError(f"max_unseen_s must be > 0, got {self.max_unseen_s}")
        if not 0.0 <= self.iou_weight <= 1.0:
            raise ValueError(f"iou_weight must lie in [0, 1], got {self.iou_weight}")
        if self.max_tracks < 1 or self.template_size < 1:
            raise ValueError("max_tracks and template_size must be >= 1")
        if self.recheck_s <= 0:
            raise ValueError(f"recheck_s must be > 0, got {self.recheck_s}")


@dataclass(frozen=True, slots=True)
class TrackInput:
    """One detected face of one frame: where, how good, its aligned crop, and its embedding if already made.

    ``frame`` is an opaque handle to the whole frame (e.g. its JPEG bytes), kept only while this face
    is the track's best moment, for the sighting's evidence snapshot.
    """

    box: Box
    quality: float
    crop: ImageBGR | None = field(default=None, repr=False)
    embedding: FloatArray | None = field(default=None, repr=False)
    model: str = ""
    frame: object | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class TrackView:
    """A live track as a frame sees it: its stable id and the identity decided so far.

    ``embedded`` tells whether this frame's face was embedded and why ("new", "verify", "better",
    "recheck", or "given" when it came embedded),
    ``decided`` whether the track has any decision yet.
    """

    track_id: str
    person_id: int | None
    person: str | None
    score: float
    frames: int
    embedded: str | None = None
    decided: bool = False
    new: bool = False


@dataclass(frozen=True)
class TrackRecord:
    """An ended track: what becomes one sighting.

    ``start``/``end`` are the capture times of its first and last frame. ``score`` is the template's
    score against the decided person (for an unknown track, the best person's score; ``NO_SCORE``
    when nobody was enrolled). ``box``, ``crop`` and ``frame`` are from the frame with the best
    quality; ``embedding`` is the track's template.
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
    embeddings: int = 0  # how many of its faces were embedded
    frame: object | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """The tracker's answer to one frame: a view per face (same order) and the tracks that ended."""

    views: tuple[TrackView, ...]
    ended: tuple[TrackRecord, ...]


Embed = Callable[[list[ImageBGR]], npt.NDArray[np.float32]]
Decide = Callable[[FloatArray], Match]


class _Track:
    """A live track's running state (owned by one tracker)."""

    __slots__ = (
        "best_box",
        "best_crop",
        "best_frame",
        "best_quality",
        "box",
        "decided_by",
        "embeddings",
        "first_at",
        "frames",
        "last_at",
        "last_embed",
        "last_now",
        "match",
        "model",
        "samples",
        "template",
        "thumb",
        "track_id",
    )

    def __init__(self, track_id: str, face: TrackInput, at: float, now: float) -> None:
        self.track_id = track_id
        self.first_at = self.last_at = at
        self.last_now = now
        self.frames = 0
        self.box = face.box
        self.best_box = face.box
        self.best_quality = -np.inf
        self.best_crop: ImageBGR | None = None
        self.best_frame: object | None = None
        self.model = face.model
        self.samples: list[tuple[float, FloatArray]] = []  # (quality, unit embedding), best first
        self.template: FloatArray | None = None
        self.match = NO_MATCH
        self.decided_by: object | None = None  # the decide callable the match came from
        self.last_embed = -np.inf
        self.embeddings = 0
        self.thumb: FloatArray | None = None

    def see(self, face: TrackInput, at: float, now: float, thumb: FloatArray | None) -> None:
        self.frames += 1
        if thumb is not None:
            self.thumb = thumb
        self.last_at = max(self.last_at, at)
        self.last_now = now
        self.box = face.box
        if face.quality > self.best_quality or self.frames == 1:
            self.best_quality = face.quality
            self.best_box = face.box
            self.best_crop = face.crop
            self.best_frame = face.frame

    def add_embedding(self, embedding: FloatArray, quality: float, now: float, size: int) -> None:
        e = _unit(embedding)
        self.samples.append((max(quality, 1e-3), e))
        self.samples.sort(key=lambda s: -s[0])
        del self.samples[size:]
        weights = np.asarray([q for q, _ in self.samples], dtype=np.float32)
        stacked = np.stack([v for _, v in self.samples])
        self.template = _unit(weights @ stacked)
        self.last_embed = now
        self.embeddings += 1
        self.decided_by = None  # the template changed: decide again

    def decide(self, decide: Decide | None) -> None:
        if self.template is None or decide is None:
            return
        if self.decided_by is not decide:
            self.match = decide(self.template)
            self.decided_by = decide

    def similarity(self, embedding: FloatArray) -> float:
        if self.template is None or len(self.template) != len(embedding):
            return float("nan")
        return float(self.template @ _unit(embedding))

    def view(self, embedded: str | None = None, new: bool = False) -> TrackView:
        m = self.match
        return TrackView(
            self.track_id, m.person_id, m.person, m.score, self.frames, embedded, self.template is not None, new
        )

    def record(self, camera: str) -> TrackRecord:
        m = self.match
        return TrackRecord(
            camera=camera,
            track_id=self.track_id,
            start=self.first_at,
            end=self.last_at,
            person_id=m.person_id,
            person=m.person,
            score=float(m.score),
            frames=self.frames,
            quality=float(self.best_quality),
            box=self.best_box,
            crop=self.best_crop,
            embedding=self.template,
            model=self.model,
            embeddings=self.embeddings,
            frame=self.best_frame,
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


def _centre_shift(a: Sequence[Box], b: Sequence[Box]) -> FloatArray:
    """Pairwise centre distance divided by the larger side of the track's box, (len(a), len(b))."""
    pa = np.asarray(a, dtype=np.float64)[:, None, :]
    pb = np.asarray(b, dtype=np.float64)[None, :, :]
    dx = (pa[..., 0] + pa[..., 2] / 2) - (pb[..., 0] + pb[..., 2] / 2)
    dy = (pa[..., 1] + pa[..., 3] / 2) - (pb[..., 1] + pb[..., 3] / 2)
    side = np.maximum(np.maximum(pa[..., 2], pa[..., 3]), 1.0)
    out: FloatArray = (np.hypot(dx, dy) / side).astype(np.float32)
    return out


class Tracker:
    """Links one camera's faces across frames, embeds what adds information, decides per track."""

    def __init__(self, camera: str, config: TrackerConfig | None = None) -> None:
        self.camera = camera
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []

    @property
    def live(self) -> int:
        return len(self._tracks)

    def update(
        self,
        faces: Sequence[TrackInput],
        at: float,
        now: float | None = None,
        *,
        embed: Embed | None = None,
        decide: Decide | None = None,
    ) -> TrackUpdate:
        """Add one frame's faces, captured at ``at``; ``now`` is the station clock (default ``at``).

        ``embed`` turns the chosen faces' crops into embeddings (one batch per frame); ``decide``
        matches a track's template. Without ``embed`` only faces that carry an embedding are used.
        """
        now = at if now is None else now
        ended = self.expire(now)
        cfg = self.config
        links, overlaps = self._associate(faces)
        linked_tracks = {id(t) for t in links.values()}
        tracks: list[_Track | None] = [links.get(i) for i in range(len(faces))]
        thumbs = [None if f.crop is None else thumbnail(f.crop) for f in faces]
        # Which faces to embed: every new track, then the stalest refinements up to the frame's budget.
        reasons: list[str | None] = [None] * len(faces)
        refinements: list[tuple[float, int, str]] = []
        for i, (face, track) in enumerate(zip(faces, tracks, strict=True)):
            if face.embedding is not None:
                reasons[i] = "given"
            elif face.crop is None or embed is None:
                continue
            elif track is None:
                reasons[i] = "new"
            elif overlaps.get(i, 0.0) < cfg.confident_iou or _alike(track.thumb, thumbs[i]) < cfg.min_appearance:
                reasons[i] = "verify"
            elif now - track.last_embed >= cfg.recheck_s:
                refinements.append((track.last_embed, i, "recheck"))
            elif face.quality > track.best_quality + cfg.better_quality and now - track.last_embed >= (
                cfg.min_embed_gap_s
            ):
                refinements.append((track.last_embed, i, "better"))
        for _, i, why in sorted(refinements)[: cfg.max_refinements_per_frame]:
            reasons[i] = why
        wanted = [i for i, r in enumerate(reasons) if r in ("new", "verify", "recheck", "better")]
        embeddings: dict[int, FloatArray] = {}
        if wanted and embed is not None:
            crops = [faces[i].crop for i in wanted]
            rows = embed([c for c in crops if c is not None])
            embeddings = {i: np.asarray(rows[k], dtype=np.float32) for k, i in enumerate(wanted)}
        for i, face in enumerate(faces):
            if face.embedding is not None:
                embeddings[i] = np.asarray(face.embedding, dtype=np.float32)

        views: list[TrackView] = []
        for i, face in enumerate(faces):
            track = tracks[i]
            vector = embeddings.get(i)
            new = False
            checking = reasons[i] in ("recheck", "verify") and track is not None and vector is not None
            if checking and track is not None and track.similarity(vector) < cfg.split_similarity:  # type: ignore[arg-type]
                self._tracks.remove(track)  # someone else took over the box: the old track ends here
                ended.append(track.record(self.camera))
                track = None
            if track is None and vector is not None:
                track = self._relink(vector, face.model, linked_tracks)
            if track is None:
                if len(self._tracks) >= cfg.max_tracks:  # bound: the stalest track makes room
                    oldest = min(self._tracks, key=lambda t: t.last_now)
                    self._tracks.remove(oldest)
                    ended.append(oldest.record(self.camera))
                track = _Track(f"{self.camera}-{next(_track_numbers)}", face, at, now)
                self._tracks.append(track)
                new = True
            linked_tracks.add(id(track))
            track.see(face, at, now, thumbs[i])
            if vector is not None and (face.model == track.model or not track.model):
                track.model = face.model
                track.add_embedding(vector, face.quality, now, cfg.template_size)
            track.decide(decide)
            views.append(track.view(reasons[i] if vector is not None else None, new))
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

    def recent_boxes(self, now: float, max_age_s: float) -> list[Box]:
        """The last boxes of the live tracks seen within ``max_age_s`` before ``now``: where to look for
        those faces in the next frame (the service's cheap step between full detections)."""
        return [t.box for t in self._tracks if now - t.last_now <= max_age_s]

    def _relink(self, vector: FloatArray, model: str, taken: set[int]) -> _Track | None:
        """The live track not seen in this frame whose template is closest to ``vector``, if close enough."""
        best, best_sim = None, self.config.relink_similarity
        for track in self._tracks:
            if id(track) in taken or track.model != model:
                continue
            sim = track.similarity(vector)
            if sim >= best_sim:
                best, best_sim = track, sim
        return best

    def _associate(self, faces: Sequence[TrackInput]) -> tuple[dict[int, _Track], dict[int, float]]:
        """Each face's track (by face index), and the box overlap (IoU) each link rests on."""
        tracks = self._tracks
        if not tracks or not faces:
            return {}, {}
        cfg = self.config
        iou = iou_matrix([t.box for t in tracks], [f.box for f in faces])
        shift = _centre_shift([t.box for t in tracks], [f.box for f in faces])
        sim = np.full(iou.shape, np.nan, dtype=np.float32)
        for j, f in enumerate(faces):
            if f.embedding is None:
                continue
            for i, t in enumerate(tracks):
                if t.model == f.model:
                    sim[i, j] = t.similarity(np.asarray(f.embedding, dtype=np.float32))
        known = ~np.isnan(sim)
        simz = np.where(known, sim, 0.0)
        near = (iou >= cfg.min_iou) | (shift <= cfg.max_centre_shift)
        valid = near & (~known | (simz >= cfg.min_similarity))
        valid |= known & (simz >= cfg.relink_similarity)
        closeness = np.maximum(iou, np.clip(1.0 - shift, 0.0, 1.0) * 0.5)
        blended = cfg.iou_weight * closeness + (1 - cfg.iou_weight) * np.clip(simz, 0, None)
        affinity = np.where(known, blended, closeness)
        pairs = np.argwhere(valid)
        order = np.argsort(-affinity[valid], kind="stable")
        used_t: set[int] = set()
        links: dict[int, _Track] = {}
        overlaps: dict[int, float] = {}
        for k in order:
            i, j = int(pairs[k][0]), int(pairs[k][1])
            if i in used_t or j in links:
                continue
            used_t.add(i)
            links[j] = tracks[i]
            overlaps[j] = float(iou[i, j]) if not known[i, j] else 1.0  # an embedding confirmed it already
        return links, overlaps


def thumbnail(crop: ImageBGR) -> FloatArray:
    """A 24×24 grey thumbnail of an aligned crop, zero-mean and unit-norm (for a cheap look comparison)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    small = cv2.resize(grey, (24, 24), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(-1)
    small -= small.mean()
    n = float(np.linalg.norm(small))
    out: FloatArray = small / n if n > 0 else small
    return out


def _alike(a: FloatArray | None, b: FloatArray | None) -> float:
    """Normalised correlation of two thumbnails (1.0 when either is missing or flat: nothing to doubt)."""
    if a is None or b is None or not a.any() or not b.any():
        return 1.0
    return float(a @ b)


def _unit(v: npt.ArrayLike) -> FloatArray:
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(a))
    out: FloatArray = a / n if n > 0 else a
    return out
