"""Per-camera tracks, decided track-first: one person walking past one camera is one track, and one sighting.

:meth:`Tracker.update` takes one frame's :class:`~vision.faces.Face` records and hands the same records
back with their track ids, why each was looked at (embedded), and their tracks' decisions, in the manner
of supervision's ``Detections`` going in and out of its tracker.

Linking. Faces are linked to the camera's live tracks by box overlap (:func:`facefind.boxes.iou_matrix`,
the project's one IoU) or, failing that, a small shift of the box centre, greedily from the closest
pair down, before anything is embedded: at the frame rates the fast detector allows a face moves little
from one frame to the next. Faces that arrive embedded (a remote worker embeds every face) are linked by
overlap and embedding together.

Looks. Embedding is the expensive step, so a face is looked at only when it adds information:

* a **new** track (always, in its first frame, so it is decided at once);
* a link on weak evidence is **verified** at once: little box overlap (a fast move, a jump), a changed look
  (the normalised correlation of a 24×24 grey thumbnail of the aligned crop with the track's last one is
  under ``min_appearance``: a scene cut, or someone else stepping into the same place), or a face seen again
  after a gap of ``verify_after_gap_s`` (at a doorway the next person appears where the last one was);
* a face whose quality **beats** the track's best by ``better_quality``;
* a periodic **re-check** (``recheck_s``), so a track whose box was taken over by someone else is caught.

A verification or re-check whose embedding is less like the track's template than ``split_similarity``
is someone else: the track ends there (its sighting ends where that face ended) and the face starts a
new track, decided afresh. A new track whose first embedding is close to a live track that lost its face
(a jump under a low frame rate, a short occlusion) joins that track instead.

Deciding. Each track keeps its best ``template_size`` looks; its template is their quality-weighted mean,
over the looks good enough to decide on (``decide_limits``; all of them when None). The caller's
:class:`~vision.evidence.Judge` turns that evidence into a decision whenever the evidence or the judge's
revision changed. A track ends when unseen for ``max_unseen_s`` or on :meth:`Tracker.flush`, as one
:class:`TrackRecord`: its decision, best crop, template and best moment (the evidence snapshot).

A tracker belongs to one camera and is not thread-safe: its owner serialises calls.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import numpy.typing as npt

from facefind.boxes import iou_matrix
from vision.evidence import Confirmation, Evidence, Judge, Moment
from vision.faces import UNDECIDED, Decision, Face, Look
from vision.frames import FrameRef
from vision.quality import DECIDE_LIMITS, Quality, QualityLimits
from vision.types import Box, FloatArray, ImageBGR

_track_numbers = itertools.count(1)  # shared by every tracker: ids stay unique across the cameras of a process

Embed = Callable[[Sequence[ImageBGR]], npt.NDArray[np.float32]]
_REFINING = (Look.RECHECK, Look.BETTER)
_CHECKING = (Look.RECHECK, Look.VERIFY, Look.RETURN)
MOMENTS_KEPT = 2  # the best frames a track keeps whole (its snapshot, and what a confirmation looks at)
CONFIRMATIONS_KEPT = 8


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """How tracks link, when faces are looked at, when tracks split and end; similarities suit FaceNet's cosine."""

    max_unseen_s: float = 1.5
    min_iou: float = 0.15
    confident_iou: float = 0.4  # a link with less overlap than this is verified at once
    min_appearance: float = 0.6  # ... and one whose thumbnail correlates less than this with the track's
    # ... and a face seen again after missing from at least one analysed frame and this long (None: never): a
    # camera analysed three times a second loses no face between its frames, so the gap alone does not count
    verify_after_gap_s: float | None = 0.25
    max_centre_shift: float = 0.6  # unmatched by IoU: link if the centre moved less than this × the box side
    relink_similarity: float = 0.55  # a new track this close to a live, unseen track joins it
    # A verification or re-check less like the track's looks than this is someone else: split. FaceNet's cosine
    # of two photos of different people stays under 0.30 for 95 in 100 pairs and 0.37 for 99 in 100 (the
    # identities photos), of the same person over 0.42 for 99 in 100. A named track's face, or a face back after
    # a gap, is held to the strict bound (on the doorway benchmark 0.3 let 4 in 100 stranger passes inherit the
    # name before them); an unnamed face followed without a break to the lenient one (a performer turning his
    # head, not yet named, scored 0.34 and 0.43 against his first looks).
    split_similarity: float = 0.3
    split_strict: float = 0.45
    min_similarity: float = 0.2  # with embeddings on every face: overlapping but unlike faces are not linked
    iou_weight: float = 0.5
    recheck_s: float = 1.0
    min_embed_gap_s: float = 0.2
    better_quality: float = 0.08
    template_size: int = 5
    max_refinements_per_frame: int = 4  # re-checks and better-quality looks per frame; new tracks always
    max_tracks: int = 64
    decide_limits: QualityLimits | None = DECIDE_LIMITS  # a look decides only within these (None: every look)

    def __post_init__(self) -> None:
        if self.max_unseen_s <= 0:
            raise ValueError(f"max_unseen_s must be > 0, got {self.max_unseen_s}")
        if not 0.0 <= self.iou_weight <= 1.0:
            raise ValueError(f"iou_weight must lie in [0, 1], got {self.iou_weight}")
        if self.max_tracks < 1 or self.template_size < 1:
            raise ValueError("max_tracks and template_size must be >= 1")
        if self.recheck_s <= 0:
            raise ValueError(f"recheck_s must be > 0, got {self.recheck_s}")


@dataclass(frozen=True)
class TrackRecord:
    """An ended track: what becomes one sighting.

    ``start``/``end`` are the capture times of its first and last frame; ``decision`` its final decision;
    ``box``, ``crop`` and ``moment`` are from its best frame; ``embedding`` is its template (None when it
    was never looked at well enough); ``looks`` how many of its faces were embedded.
    """

    camera: str
    track_id: str
    start: float
    end: float
    decision: Decision
    frames: int
    looks: int
    quality: float
    box: Box
    crop: ImageBGR | None = field(repr=False)
    embedding: FloatArray | None = field(repr=False)
    model: str
    moment: Moment | None = field(default=None, repr=False)

    @property
    def person(self) -> str | None:
        return self.decision.person

    @property
    def person_id(self) -> int | None:
        return self.decision.person_id

    @property
    def score(self) -> float | None:
        return self.decision.score


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """The tracker's answer to one frame: the faces handed in, in order, with their tracks and decisions;
    and the tracks that ended."""

    faces: tuple[Face, ...]
    ended: tuple[TrackRecord, ...]


@dataclass(slots=True)
class _Sample:
    quality: float
    embedding: FloatArray
    good: bool


class _Track:
    """A live track's running state (owned by one tracker)."""

    def __init__(self, track_id: str, face: Face, at: float, now: float) -> None:
        self.track_id = track_id
        self.first_at = self.last_at = at
        self.last_now = now
        self.frames = 0
        self.box = face.box
        self.model = face.model
        self.best_quality = -np.inf
        self.best_box = face.box
        self.best_crop: ImageBGR | None = None
        self.moments: list[Moment] = []  # best first
        self.samples: list[_Sample] = []  # best first: good looks, then by quality
        self.template: FloatArray | None = None  # of the decisive looks
        self.reference: FloatArray | None = None  # of every look kept (to tell faces apart before a decision)
        self.looks = self.good_looks = 0
        self.last_look = -np.inf
        self.thumb: FloatArray | None = None
        self.missed = 0  # analysed frames in a row without this track's face
        self.decision = UNDECIDED
        self.decided_at: tuple[int, int] | None = None  # (looks, judge revision) of the last decision
        self.confirmations: list[Confirmation] = []  # the photo model's answers (a few: one per proposal)

    def see(self, face: Face, at: float, now: float, frame: FrameRef | None, thumb: FloatArray | None) -> bool:
        """Take this frame's face; True when it is the track's best moment so far."""
        self.frames += 1
        self.missed = 0
        if thumb is not None:
            self.thumb = thumb
        self.last_at = max(self.last_at, at)
        self.last_now = now
        self.box = face.box
        quality = face.quality.score
        if len(self.moments) < MOMENTS_KEPT or quality > self.moments[-1].quality:
            self.moments.append(Moment(frame, face.detection, quality, at))
            self.moments.sort(key=lambda m: -m.quality)
            del self.moments[MOMENTS_KEPT:]
        if quality <= self.best_quality and self.frames > 1:
            return False
        self.best_quality, self.best_box, self.best_crop = quality, face.box, face.crop
        return True

    def note_faces(self, at: float, faces: tuple[tuple[str, Box], ...]) -> None:
        """Record where every tracked face of frame ``at`` was, in the moments taken from that frame."""
        if any(m.at == at and not m.faces for m in self.moments):
            self.moments = [replace(m, faces=faces) if m.at == at and not m.faces else m for m in self.moments]

    def add_look(self, embedding: FloatArray, quality: Quality, now: float, cfg: TrackerConfig) -> None:
        good = _decisive(quality, cfg)
        self.samples.append(_Sample(max(quality.score, 1e-3), _unit(embedding), good))
        self.samples.sort(key=lambda s: (not s.good, -s.quality))
        del self.samples[cfg.template_size :]
        self.looks += 1
        self.good_looks += good
        self.last_look = now
        decisive = [s for s in self.samples if s.good]
        if decisive:
            weights = np.asarray([s.quality for s in decisive], dtype=np.float32)
            self.template = _unit(weights @ np.stack([s.embedding for s in decisive]))
        self.reference = _unit(np.stack([s.embedding for s in self.samples]).mean(axis=0))

    def similarity(self, embedding: FloatArray) -> float:
        """Cosine of ``embedding`` to the track's looks so far (its template, or all its looks while undecided)."""
        reference = self.template if self.template is not None else self.reference
        if reference is None or len(reference) != len(embedding):
            return float("nan")
        return float(reference @ _unit(embedding))

    def decide(self, judge: Judge | None) -> None:
        if judge is None:
            return
        key = (self.looks, judge.revision)
        if key == self.decided_at:
            return
        self.decided_at = key
        if self.template is None:
            self.decision = UNDECIDED
            return
        verdict = judge.decide(self.evidence(), self.decision)
        self.decision = verdict.decision
        if verdict.confirmation is not None:
            self.confirmations = [*self.confirmations[-(CONFIRMATIONS_KEPT - 1) :], verdict.confirmation]

    def evidence(self) -> Evidence:
        return Evidence(
            self.track_id,
            self.template,
            self.looks,
            self.good_looks,
            float(self.best_quality),
            tuple(self.moments),
            tuple(self.confirmations),
        )

    def record(self, camera: str) -> TrackRecord:
        return TrackRecord(
            camera=camera,
            track_id=self.track_id,
            start=self.first_at,
            end=self.last_at,
            decision=self.decision,
            frames=self.frames,
            looks=self.looks,
            quality=float(self.best_quality),
            box=self.best_box,
            crop=self.best_crop,
            embedding=self.template,
            model=self.model,
            moment=self.moments[0] if self.moments else None,
        )


@dataclass(slots=True)
class _Frame:
    """One update's working state: the faces, their links, their looks and their embeddings, by face index."""

    faces: Sequence[Face]
    links: dict[int, _Track]
    overlaps: dict[int, float]
    thumbs: list[FloatArray | None]
    looks: dict[int, Look] = field(default_factory=dict)
    vectors: dict[int, FloatArray] = field(default_factory=dict)


class Tracker:
    """Links one camera's faces across frames, looks at what adds information, decides per track."""

    def __init__(self, camera: str, config: TrackerConfig | None = None) -> None:
        self.camera = camera
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []

    @property
    def live(self) -> int:
        return len(self._tracks)

    def update(
        self,
        faces: Sequence[Face],
        at: float,
        now: float | None = None,
        *,
        frame: FrameRef | None = None,
        embed: Embed | None = None,
        judge: Judge | None = None,
    ) -> TrackUpdate:
        """Add one frame's faces, captured at ``at``; ``now`` is the station clock (default ``at``).

        ``embed`` turns the chosen faces' crops into embeddings (one batch per frame); ``judge`` decides a
        track from its evidence. Without ``embed`` only faces that came embedded are used. ``frame`` is
        the whole frame (kept for a track's best moments).
        """
        now = at if now is None else now
        ended = self.expire(now)
        links, overlaps = self._associate(faces)
        work = _Frame(faces, links, overlaps, [None if f.crop is None else thumbnail(f.crop) for f in faces])
        self._choose_looks(work, now, can_embed=embed is not None)
        self._embed(work, embed)
        placed = [self._place(work, i, at, now, frame, ended) for i in range(len(faces))]
        self._finish_frame(placed, at, judge)
        out = tuple(
            replace(
                face,
                track_id=track.track_id,
                decision=track.decision,
                look=work.looks.get(i) if i in work.vectors else None,
                new_track=new,
                embedding=work.vectors.get(i, face.embedding),
            )
            for i, (face, (track, new)) in enumerate(zip(faces, placed, strict=True))
        )
        return TrackUpdate(out, tuple(ended))

    def expire(self, now: float) -> list[TrackRecord]:
        """End the tracks unseen for longer than ``max_unseen_s`` before ``now``."""
        limit = self.config.max_unseen_s
        gone = [t for t in self._tracks if now - t.last_now > limit]
        if gone:
            self._tracks = [t for t in self._tracks if now - t.last_now <= limit]
        return [t.record(self.camera) for t in gone]

    def flush(self) -> list[TrackRecord]:
        """End every live track (the camera went away or the engine stops)."""
        gone, self._tracks = self._tracks, []
        return [t.record(self.camera) for t in gone]

    def recent_boxes(self, now: float, max_age_s: float) -> list[Box]:
        """The last boxes of the live tracks seen within ``max_age_s`` before ``now``: where to look for
        those faces in the next frame (the cheap step between full detections)."""
        return [t.box for t in self._tracks if now - t.last_now <= max_age_s]

    # ------------------------------------------------------------------ looks

    def _choose_looks(self, work: _Frame, now: float, *, can_embed: bool) -> None:
        """Which faces to embed: every new track and every weak link, then the stalest refinements up to
        the frame's budget; faces that came embedded are ``given``."""
        refinements: list[tuple[float, int, Look]] = []
        for i, face in enumerate(work.faces):
            if face.embedding is not None:
                work.looks[i] = Look.GIVEN
            elif face.crop is not None and can_embed:
                look = self._look_for(work, i, now)
                track = work.links.get(i)
                if look in _REFINING and track is not None:
                    refinements.append((track.last_look, i, look))
                elif look is not None:
                    work.looks[i] = look
        for _, i, look in sorted(refinements)[: self.config.max_refinements_per_frame]:
            work.looks[i] = look

    def _look_for(self, work: _Frame, i: int, now: float) -> Look | None:
        cfg = self.config
        track = work.links.get(i)
        if track is None:
            return Look.NEW
        gap = cfg.verify_after_gap_s
        if gap is not None and track.missed > 0 and now - track.last_now >= gap:
            return Look.RETURN
        weak = work.overlaps.get(i, 0.0) < cfg.confident_iou or _alike(track.thumb, work.thumbs[i]) < cfg.min_appearance
        if weak:
            return Look.VERIFY
        if track.template is None and _decisive(work.faces[i].quality, cfg):
            return Look.BETTER  # the first look good enough to decide an undecided track on: decide now
        if now - track.last_look >= cfg.recheck_s:
            return Look.RECHECK
        quality = work.faces[i].quality.score
        if quality > track.best_quality + cfg.better_quality and now - track.last_look >= cfg.min_embed_gap_s:
            return Look.BETTER
        return None

    def _embed(self, work: _Frame, embed: Embed | None) -> None:
        wanted = [i for i, look in work.looks.items() if look is not Look.GIVEN]
        if wanted and embed is not None:
            rows = embed([c for i in wanted if (c := work.faces[i].crop) is not None])
            work.vectors.update({i: np.asarray(rows[k], dtype=np.float32) for k, i in enumerate(wanted)})
        for i, face in enumerate(work.faces):
            if face.embedding is not None:
                work.vectors[i] = np.asarray(face.embedding, dtype=np.float32)

    # -------------------------------------------------------------- placing

    def _place(
        self, work: _Frame, i: int, at: float, now: float, frame: FrameRef | None, ended: list[TrackRecord]
    ) -> tuple[_Track, bool]:
        """The face's track (splitting, rejoining or starting one as its look says), updated with the face."""
        face, vector = work.faces[i], work.vectors.get(i)
        track = work.links.get(i)
        if track is not None and self._taken_over(track, vector, work.looks.get(i)):
            self._end(track, ended)  # someone else took over the box: the old track ends here
            track = None
        if track is None and vector is not None:
            track = self._relink(vector, face.model, {id(t) for t in work.links.values()})
        new = track is None
        if track is None:
            track = self._start(face, at, now, ended)
        work.links[i] = track
        track.see(face, at, now, frame, work.thumbs[i])
        if vector is not None and face.model == track.model:
            track.add_look(vector, face.quality, now, self.config)
        return track, new

    def _taken_over(self, track: _Track, vector: FloatArray | None, look: Look | None) -> bool:
        """A verification or re-check found a face unlike the track's: someone else is in its box. A face back
        after a gap (at a doorway, more likely the next person) and a named track's face are held to the strict
        bound: a track must never carry a name onto another face."""
        if vector is None or look not in _CHECKING:
            return False
        strict = look is Look.RETURN or track.decision.named  # a face back after a gap, or one that carries a name
        return track.similarity(vector) < (self.config.split_strict if strict else self.config.split_similarity)

    def _start(self, face: Face, at: float, now: float, ended: list[TrackRecord]) -> _Track:
        if len(self._tracks) >= self.config.max_tracks:  # bound: the stalest track makes room
            self._end(min(self._tracks, key=lambda t: t.last_now), ended)
        track = _Track(f"{self.camera}-{next(_track_numbers)}", face, at, now)
        self._tracks.append(track)
        return track

    def _end(self, track: _Track, ended: list[TrackRecord]) -> None:
        self._tracks.remove(track)
        ended.append(track.record(self.camera))

    def _finish_frame(self, placed: list[tuple[_Track, bool]], at: float, judge: Judge | None) -> None:
        """Note where this frame's faces were in the moments it gave, then decide the tracks it touched; the
        tracks without a face in this frame missed one more."""
        seen = {id(t) for t, _ in placed}
        for track in self._tracks:
            if id(track) not in seen:
                track.missed += 1
        faces = tuple((t.track_id, t.box) for t, _ in placed)
        for track, _ in placed:
            track.note_faces(at, faces)
            track.decide(judge)

    def _relink(self, vector: FloatArray, model: str, taken: set[int]) -> _Track | None:
        """The live track not seen in this frame whose looks are closest to ``vector``, if close enough."""
        best, best_sim = None, self.config.relink_similarity
        for track in self._tracks:
            if id(track) in taken or track.model != model:
                continue
            sim = track.similarity(vector)
            if sim >= best_sim:
                best, best_sim = track, sim
        return best

    # -------------------------------------------------------------- linking

    def _associate(self, faces: Sequence[Face]) -> tuple[dict[int, _Track], dict[int, float]]:
        """Each face's track (by face index), and the box overlap (IoU) each link rests on."""
        if not self._tracks or not faces:
            return {}, {}
        valid, affinity, overlap = self._affinity(faces)
        pairs = np.argwhere(valid)
        order = np.argsort(-affinity[valid], kind="stable")
        used: set[int] = set()
        links: dict[int, _Track] = {}
        overlaps: dict[int, float] = {}
        for k in order:
            t, f = int(pairs[k][0]), int(pairs[k][1])
            if t in used or f in links:
                continue
            used.add(t)
            links[f] = self._tracks[t]
            overlaps[f] = float(overlap[t, f])
        return links, overlaps

    def _affinity(self, faces: Sequence[Face]) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
        """Which (track, face) pairs may link, how close each is, and the overlap each link rests on (1.0
        where an embedding confirmed it already)."""
        cfg = self.config
        boxes = [t.box for t in self._tracks]
        iou = iou_matrix(boxes, [f.box for f in faces])
        shift = _centre_shift(boxes, [f.box for f in faces])
        sim = self._similarities(faces)
        known = ~np.isnan(sim)
        simz = np.where(known, sim, 0.0)
        near = (iou >= cfg.min_iou) | (shift <= cfg.max_centre_shift)
        valid = (near & (~known | (simz >= cfg.min_similarity))) | (known & (simz >= cfg.relink_similarity))
        closeness = np.maximum(iou, np.clip(1.0 - shift, 0.0, 1.0) * 0.5)
        blended = cfg.iou_weight * closeness + (1 - cfg.iou_weight) * np.clip(simz, 0, None)
        affinity: FloatArray = np.where(known, blended, closeness).astype(np.float32)
        overlap: FloatArray = np.where(known, 1.0, iou).astype(np.float32)
        return valid, affinity, overlap

    def _similarities(self, faces: Sequence[Face]) -> FloatArray:
        """Cosine of each face that came embedded to each track's looks (NaN where unknown)."""
        sim = np.full((len(self._tracks), len(faces)), np.nan, dtype=np.float32)
        for j, f in enumerate(faces):
            if f.embedding is None:
                continue
            for i, t in enumerate(self._tracks):
                if t.model == f.model:
                    sim[i, j] = t.similarity(np.asarray(f.embedding, dtype=np.float32))
        return sim


def _decisive(quality: Quality, cfg: TrackerConfig) -> bool:
    """Whether a look of this quality may decide a track (within ``decide_limits``)."""
    return cfg.decide_limits is None or quality.reject_reason(cfg.decide_limits) is None


def _centre_shift(a: Sequence[Box], b: Sequence[Box]) -> FloatArray:
    """Pairwise centre distance divided by the larger side of the track's box, (len(a), len(b))."""
    pa = np.asarray(a, dtype=np.float64)[:, None, :]
    pb = np.asarray(b, dtype=np.float64)[None, :, :]
    dx = (pa[..., 0] + pa[..., 2] / 2) - (pb[..., 0] + pb[..., 2] / 2)
    dy = (pa[..., 1] + pa[..., 3] / 2) - (pb[..., 1] + pb[..., 3] / 2)
    side = np.maximum(np.maximum(pa[..., 2], pa[..., 3]), 1.0)
    out: FloatArray = (np.hypot(dx, dy) / side).astype(np.float32)
    return out


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
