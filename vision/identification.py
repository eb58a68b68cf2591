"""Open-set 1:N identification, measured as a watchlist is judged: FNIR and FPIR (NIST FRVT 1:N).

Protocol (``main.py evaluate identification DIR --enrol N [--strangers DIR2]``):

* **Roster.** Each subfolder of DIR is one person. The first N photos (sorted by file name) are
  enrolled as ``main.py enrol`` does it: the largest detected face, refused when its quality fails
  the enrolment limits (:class:`vision.quality.QualityLimits`); the other photos are mated probes.
* **Probes.** Each probe photo yields the face ``main.py identify`` would report for the labelled
  person: of the faces the detector finds, the one nearest the image centre (LFW's protocol note).
  A probe with no detected face is answered "unknown": a miss when mated, harmless as a stranger.
* **Strangers.** With DIR2, every photo under it is a probe of someone never enrolled (a folder of
  DIR2 named like a person of DIR is refused: that would be a mated probe). Without DIR2, people
  are left out in turn: person *i* (names sorted) is in fold ``i % k``; for each fold the others are
  enrolled, their remaining photos are mated searches, and all photos of the fold's people are
  stranger searches. Every person is a stranger exactly once and the searches of all k folds are
  pooled, so each mated photo is searched k - 1 times (``mated`` counts searches, ``mated_probes``
  distinct photos). A person none of whose first N photos could be enrolled keeps their mated
  searches, all missed: a failure to enrol costs what it costs in the field.
* **Decision.** Named when the best person's score (best sample, cosine) reaches the threshold and beats the
  runner-up person by the margin: ``fnir``/``fpir`` are taken at the shipped point through ``Matcher.match``.
  A mated search is missed unless it names the right person (the wrong-person share is ``misidentified``).
* **FNIR at FPIR x.** The lowest threshold at which at most x of the stranger searches are named
  (the shipped margin still applied), and the share of mated searches missed there (at FPIR 0.1% with
  under 1,000 strangers: none named). The DET curve is that pair at every threshold where either changes.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from vision.lfw import pick_central
from vision.matcher import Match, Matcher, resolve_threshold
from vision.pipeline import FacePipeline, read_image
from vision.quality import QualityLimits
from vision.types import Detection, FloatArray

F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
DEFAULT_FOLDS = 10
FPIR_POINTS = (0.01, 0.001)


class ProtocolError(ValueError):
    """The folders cannot make an identification run (too few people, a stranger named like a person)."""


# --------------------------------------------------------------------------- maths on scores


@dataclass(frozen=True, slots=True)
class Searches:
    """A batch of 1:N searches: the best person's score, the runner-up's, and whether the best is the mate.

    ``top`` is -inf for a probe with no face (never named). ``correct`` is always False for strangers.
    """

    top: F64
    runner: F64
    correct: BoolArray

    @staticmethod
    def empty() -> Searches:
        return Searches(np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool))

    @staticmethod
    def concat(parts: Sequence[Searches]) -> Searches:
        if not parts:
            return Searches.empty()
        return Searches(
            np.concatenate([p.top for p in parts]),
            np.concatenate([p.runner for p in parts]),
            np.concatenate([p.correct for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.top)


_LOWEST_COSINE = -1.0


def searches_from_scores(person_scores: npt.ArrayLike, truth: npt.ArrayLike) -> Searches:
    """Searches from a (probes, persons) score matrix; ``truth`` is each probe's mate column, -1 for none.

    A row of all -inf is a probe with no face. The runner-up of a lone person is the lowest cosine, -1, so
    that the margin over it always holds, as the matcher treats a lone person.
    """
    scores = np.asarray(person_scores, dtype=np.float64)
    mates = np.asarray(truth, dtype=np.int64).reshape(-1)
    if scores.ndim != 2 or len(scores) != len(mates):
        raise ValueError(f"scores {scores.shape} do not match {len(mates)} probes")
    if len(scores) == 0:
        return Searches.empty()
    if scores.shape[1] == 0:
        none = np.full(len(scores), -np.inf)
        return Searches(none, none.copy(), np.zeros(len(scores), dtype=bool))
    best = np.argmax(scores, axis=1)
    rows = np.arange(len(scores))
    top = scores[rows, best]
    if scores.shape[1] > 1:
        rest = scores.copy()
        rest[rows, best] = -np.inf
        runner = rest.max(axis=1)
        runner = np.where(np.isfinite(runner), runner, _LOWEST_COSINE)
    else:
        runner = np.full(len(scores), _LOWEST_COSINE)
    runner = np.where(np.isfinite(top), runner, -np.inf)
    correct = (best == mates) & (mates >= 0) & np.isfinite(top)
    return Searches(top, runner, correct)


def named(searches: Searches, threshold: float, margin: float) -> BoolArray:
    """Which searches name someone: best score >= threshold and best - runner-up >= margin."""
    with np.errstate(invalid="ignore"):
        return (searches.top >= threshold) & (searches.top - searches.runner >= margin) & np.isfinite(searches.top)


def fpir(strangers: Searches, threshold: float, margin: float) -> float:
    """Share of stranger searches that name someone (NaN without strangers)."""
    return float(np.mean(named(strangers, threshold, margin))) if len(strangers) else math.nan


def fnir(mated: Searches, threshold: float, margin: float) -> float:
    """Share of mated searches that do not name the right person (NaN without mated searches)."""
    return float(1.0 - np.mean(named(mated, threshold, margin) & mated.correct)) if len(mated) else math.nan


def threshold_at_fpir(strangers: Searches, target: float, margin: float) -> float:
    """The lowest threshold at which at most ``target`` of the strangers are named.

    With n strangers, floor(target × n) may be named; the threshold sits just above the next
    stranger's score, so ties go the safe way. -1.0 when even naming every nameable stranger is within
    the target (or there are no strangers).
    """
    candidates = strangers.top[named(strangers, -np.inf, margin)]
    allowed = math.floor(target * len(strangers) + 1e-9)
    if allowed >= len(candidates):
        return -1.0
    ordered = np.sort(candidates)[::-1]
    return float(np.nextafter(ordered[allowed], np.inf))


def fnir_at_fpir(mated: Searches, strangers: Searches, target: float, margin: float) -> tuple[float, float]:
    """(FNIR, threshold) at the lowest threshold where FPIR <= ``target``."""
    threshold = threshold_at_fpir(strangers, target, margin)
    return fnir(mated, threshold, margin), threshold


@dataclass(frozen=True, slots=True)
class DetPoint:
    """One point of a DET curve: at ``threshold``, the share of strangers named and of mated searches missed."""

    threshold: float
    fpir: float
    fnir: float


def det_curve(mated: Searches, strangers: Searches, margin: float) -> tuple[DetPoint, ...]:
    """FPIR and FNIR at every threshold where one of them changes, from the strictest down."""
    if not len(mated) or not len(strangers):
        return ()
    s_ok = named(strangers, -np.inf, margin)
    m_ok = named(mated, -np.inf, margin) & mated.correct
    s_scores = np.sort(strangers.top[s_ok])
    m_scores = np.sort(mated.top[m_ok])
    cuts = np.unique(np.concatenate([s_scores, m_scores, [np.inf]]))[::-1]
    n_s, n_m = len(strangers), len(mated)
    # named at threshold t: scores >= t
    s_named = len(s_scores) - np.searchsorted(s_scores, cuts, side="left")
    m_named = len(m_scores) - np.searchsorted(m_scores, cuts, side="left")
    points = [
        DetPoint(float(t), float(s) / n_s, 1.0 - float(m) / n_m) for t, s, m in zip(cuts, s_named, m_named, strict=True)
    ]
    return tuple(points)


def rank1(mated: Searches) -> float:
    """Share of mated searches whose best-scoring person is the mate, whatever the score."""
    return float(np.mean(mated.correct)) if len(mated) else math.nan


# --------------------------------------------------------------------------- faces of the photos


@dataclass(frozen=True, slots=True)
class ImageFaces:
    """What the protocol takes from one photo.

    ``enrol``: the largest face's embedding if fit to enrol (else None, with ``enrol_reason``);
    ``probe``: the embedding of the detected face nearest the centre (None when no face was found).
    """

    enrol: FloatArray | None
    enrol_reason: str | None
    probe: FloatArray | None


def largest(detections: Sequence[Detection]) -> Detection | None:
    """The detection with the largest box, the face ``main.py enrol`` stores."""
    return max(detections, key=lambda d: d.box[2] * d.box[3]) if detections else None


def describe_image(pipeline: FacePipeline, path: Path, limits: QualityLimits) -> ImageFaces:
    """Detect once, then embed the enrolment face and the probe face (one pass when they are the same)."""
    image = read_image(path)
    if image is None:
        return ImageFaces(None, "not an image, or unreadable", None)
    detections = pipeline.detector.detect(image)
    big = largest(detections)
    central = pick_central(list(detections), image.shape[1], image.shape[0])
    if big is None or central is None:
        return ImageFaces(None, "no face found", None)
    chosen = [big] if central is big else [big, central]
    observed = pipeline.observe_detections(image, chosen)
    reason = observed[0].quality.reject_reason(limits)
    enrol = observed[0].embedding if reason is None else None
    return ImageFaces(enrol, reason, observed[-1].embedding)


class FaceCache:
    """:func:`describe_image` results per (model, file content hash), in memory and optionally in a folder."""

    def __init__(self, pipeline: FacePipeline, limits: QualityLimits, folder: Path | None = None) -> None:
        self._pipeline = pipeline
        self._limits = limits
        self._folder = folder
        self._memory: dict[str, ImageFaces] = {}
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def _key(self, path: Path) -> str:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:32]
        tag = f"{self._pipeline.model}|{self._limits}"
        return f"{self._pipeline.model}-{hashlib.sha256(tag.encode()).hexdigest()[:8]}-{digest}"

    def get(self, path: Path) -> ImageFaces:
        try:
            key = self._key(path)
        except OSError:
            return ImageFaces(None, "not an image, or unreadable", None)
        if key in self._memory:
            return self._memory[key]
        faces = self._load(key)
        if faces is None:
            faces = describe_image(self._pipeline, path, self._limits)
            self._store(key, faces)
        self._memory[key] = faces
        return faces

    def _load(self, key: str) -> ImageFaces | None:
        if self._folder is None:
            return None
        file = self._folder / f"{key}.npz"
        if not file.is_file():
            return None
        with np.load(file, allow_pickle=False) as data:
            enrol = data["enrol"].astype(np.float32) if data["enrol"].size else None
            probe = data["probe"].astype(np.float32) if data["probe"].size else None
            reason = str(data["reason"]) or None
        return ImageFaces(enrol, reason, probe)

    def _store(self, key: str, faces: ImageFaces) -> None:
        if self._folder is None:
            return
        empty = np.zeros(0, np.float32)
        np.savez(
            self._folder / f"{key}.npz",
            enrol=empty if faces.enrol is None else faces.enrol,
            probe=empty if faces.probe is None else faces.probe,
            reason=np.str_(faces.enrol_reason or ""),
        )


# --------------------------------------------------------------------------- the protocol


@dataclass(frozen=True, slots=True)
class PersonFaces:
    """One person of the roster: accepted enrolment embeddings (of the first N photos), then every photo's probe."""

    name: str
    enrol: tuple[FloatArray, ...]
    enrol_rejected: int
    mated: tuple[FloatArray | None, ...]  # the photos after the first N
    all_probes: tuple[FloatArray | None, ...]  # every photo, for when this person is a stranger


class Identifier(Protocol):
    """What a run needs of a gallery matcher: :class:`vision.matcher.Matcher`, or a variant being measured."""

    @property
    def persons(self) -> int: ...
    def person_scores(self, embeddings: npt.ArrayLike, *, model: str) -> FloatArray: ...
    def match(self, embeddings: npt.ArrayLike, *, model: str) -> list[Match]: ...


# (person id per row, name per row, rows) -> the gallery's identifier; persons are ordered by id
MatcherFactory = Callable[[Sequence[int], Sequence[str], FloatArray], Identifier]


@dataclass(frozen=True, slots=True)
class ProtocolOutcome:
    """Pooled searches of a run, with the shipped decision's own counts."""

    mated: Searches
    strangers: Searches
    shipped_hits: int  # mated searches the shipped decision named correctly
    shipped_wrong: int  # mated searches it named as someone else
    shipped_strangers_named: int
    mated_probes: int
    enrolled_people: int
    enrolled_samples: int
    folds: int


def _queries(rows: Sequence[FloatArray | None], dim: int) -> tuple[FloatArray, BoolArray]:
    present = np.array([r is not None for r in rows], dtype=bool)
    stacked = [r for r in rows if r is not None]
    matrix = np.asarray(stacked, dtype=np.float32) if stacked else np.zeros((0, dim), np.float32)
    return matrix.reshape(-1, dim), present


def _search(
    matcher: Identifier, model: str, rows: Sequence[FloatArray | None], mates: Sequence[int], dim: int
) -> tuple[Searches, list[int | None]]:
    """Searches for the probes (None rows: no face) and the shipped decision's person id per probe."""
    queries, present = _queries(rows, dim)
    scores = np.full((len(rows), matcher.persons), -np.inf)
    decided: list[int | None] = [None] * len(rows)
    if len(queries):
        scores[present] = matcher.person_scores(queries, model=model)
        answers = matcher.match(queries, model=model)
        for index, answer in zip(np.flatnonzero(present), answers, strict=True):
            decided[int(index)] = answer.person_id
    return searches_from_scores(scores, mates), decided


def run_protocol(
    people: Sequence[PersonFaces],
    strangers: Sequence[FloatArray | None] | None,
    *,
    model: str,
    dim: int,
    build_matcher: MatcherFactory,
    folds: int = DEFAULT_FOLDS,
) -> ProtocolOutcome:
    """Searches of every fold (see the module docstring), pooled. Person ids are roster positions."""
    enrollable = [p for p in people if p.enrol]
    if len(enrollable) < (1 if strangers is not None else 2):
        raise ProtocolError(f"only {len(enrollable)} person(s) have an enrolled photo: too few for 1:N")
    if strangers is not None:
        plan = [(list(range(len(people))), list(strangers))]
        k = 1
    else:
        k = max(2, min(folds, len(people)))
        plan = []
        for fold in range(k):
            inside = [i for i in range(len(people)) if i % k != fold]
            left_out = [r for i in range(len(people)) if i % k == fold for r in people[i].all_probes]
            plan.append((inside, left_out))
    mated_parts, stranger_parts = [], []
    hits = wrong = named_strangers = 0
    for inside, stranger_rows in plan:
        gallery = [i for i in inside if people[i].enrol]
        pids = [i for i in gallery for _ in people[i].enrol]
        names = [people[i].name for i in gallery for _ in people[i].enrol]
        rows = np.asarray([e for i in gallery for e in people[i].enrol], dtype=np.float32).reshape(-1, dim)
        matcher = build_matcher(pids, names, rows)
        column = {pid: c for c, pid in enumerate(gallery)}  # Matcher orders persons by id
        mated_rows = [r for i in inside for r in people[i].mated]
        mates = [column.get(i, -1) for i in inside for _ in people[i].mated]
        truth_ids = [i for i in inside for _ in people[i].mated]
        mated, decided = _search(matcher, model, mated_rows, mates, dim)
        hits += sum(d is not None and d == t for d, t in zip(decided, truth_ids, strict=True))
        wrong += sum(d is not None and d != t for d, t in zip(decided, truth_ids, strict=True))
        lost, decided_s = _search(matcher, model, stranger_rows, [-1] * len(stranger_rows), dim)
        named_strangers += sum(d is not None for d in decided_s)
        mated_parts.append(mated)
        stranger_parts.append(lost)
    return ProtocolOutcome(
        mated=Searches.concat(mated_parts),
        strangers=Searches.concat(stranger_parts),
        shipped_hits=hits,
        shipped_wrong=wrong,
        shipped_strangers_named=named_strangers,
        mated_probes=sum(len(p.mated) for p in people),
        enrolled_people=len(enrollable),
        enrolled_samples=sum(len(p.enrol) for p in people),
        folds=k,
    )


@dataclass(frozen=True, slots=True)
class IdentificationResult:
    """Figures of one open-set run (rates are shares in [0, 1]); ``det`` is the whole DET curve."""

    model: str
    threshold: float
    margin: float
    rank1: float
    fnir: float
    fpir: float
    fnir_at_fpir_0_01: float
    fnir_at_fpir_0_001: float
    threshold_at_fpir_0_01: float
    threshold_at_fpir_0_001: float
    mated: int
    strangers: int
    mated_probes: int
    misidentified: int
    strangers_named: int
    people: int
    enrolled_samples: int
    enrol_rejected: int
    mated_no_face: int
    strangers_no_face: int
    enrol_n: int
    protocol: str
    seconds: float
    det: tuple[DetPoint, ...]

    def as_json(self) -> dict[str, object]:
        def r(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 4)

        return {
            "rank1": r(self.rank1),
            "fnir": r(self.fnir),
            "fpir": r(self.fpir),
            "fnir_at_fpir_0.01": r(self.fnir_at_fpir_0_01),
            "fnir_at_fpir_0.001": r(self.fnir_at_fpir_0_001),
            "mated": self.mated,
            "strangers": self.strangers,
            "threshold": round(self.threshold, 4),
            "margin": round(self.margin, 4),
            "threshold_at_fpir_0.01": round(self.threshold_at_fpir_0_01, 4),
            "threshold_at_fpir_0.001": round(self.threshold_at_fpir_0_001, 4),
            "mated_probes": self.mated_probes,
            "misidentified": self.misidentified,
            "strangers_named": self.strangers_named,
            "people": self.people,
            "enrolled_samples": self.enrolled_samples,
            "enrol_rejected": self.enrol_rejected,
            "mated_no_face": self.mated_no_face,
            "strangers_no_face": self.strangers_no_face,
            "enrol": self.enrol_n,
            "model": self.model,
            "protocol": self.protocol,
            "seconds": round(self.seconds, 1),
        }


def summarise(
    outcome: ProtocolOutcome,
    *,
    model: str,
    threshold: float,
    margin: float,
    enrol_n: int,
    protocol: str,
    seconds: float = 0.0,
    enrol_rejected: int = 0,
) -> IdentificationResult:
    """The figures of a pooled outcome (see the module docstring for each one)."""
    mated, strangers = outcome.mated, outcome.strangers
    at = {x: fnir_at_fpir(mated, strangers, x, margin) for x in FPIR_POINTS}
    n_m, n_s = len(mated), len(strangers)
    return IdentificationResult(
        model=model,
        threshold=threshold,
        margin=margin,
        rank1=rank1(mated),
        fnir=1.0 - outcome.shipped_hits / n_m if n_m else math.nan,
        fpir=outcome.shipped_strangers_named / n_s if n_s else math.nan,
        fnir_at_fpir_0_01=at[0.01][0],
        fnir_at_fpir_0_001=at[0.001][0],
        threshold_at_fpir_0_01=at[0.01][1],
        threshold_at_fpir_0_001=at[0.001][1],
        mated=n_m,
        strangers=n_s,
        mated_probes=outcome.mated_probes,
        misidentified=outcome.shipped_wrong,
        strangers_named=outcome.shipped_strangers_named,
        people=outcome.enrolled_people,
        enrolled_samples=outcome.enrolled_samples,
        enrol_rejected=enrol_rejected,
        mated_no_face=int(np.sum(~np.isfinite(mated.top))),
        strangers_no_face=int(np.sum(~np.isfinite(strangers.top))),
        enrol_n=enrol_n,
        protocol=protocol,
        seconds=seconds,
        det=det_curve(mated, strangers, margin),
    )


# --------------------------------------------------------------------------- folders


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_roster(directory: Path) -> list[tuple[str, list[Path]]]:
    """(person, photos sorted by name) for each subfolder of ``directory`` that holds photos, by name."""
    if not directory.is_dir():
        raise ProtocolError(f"{directory} is not a folder")
    roster = [(d.name, _images_in(d)) for d in sorted(directory.iterdir()) if d.is_dir()]
    return [(name, photos) for name, photos in roster if photos]


def stranger_images(directory: Path, roster_names: Sequence[str]) -> list[Path]:
    """Every photo under ``directory`` (any depth), refusing a subfolder named like an enrolled person."""
    if not directory.is_dir():
        raise ProtocolError(f"{directory} is not a folder")
    clash = sorted({p.name for p in directory.rglob("*") if p.is_dir()} & set(roster_names))
    if clash:
        raise ProtocolError(f"the strangers folder has people who are on the roster: {', '.join(clash[:5])}")
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def person_faces(name: str, photos: Sequence[ImageFaces], enrol_n: int) -> PersonFaces:
    first = photos[:enrol_n]
    return PersonFaces(
        name=name,
        enrol=tuple(f.enrol for f in first if f.enrol is not None),
        enrol_rejected=sum(f.enrol is None for f in first),
        mated=tuple(f.probe for f in photos[enrol_n:]),
        all_probes=tuple(f.probe for f in photos),
    )


def evaluate_identification(
    directory: Path,
    enrol_n: int,
    strangers_dir: Path | None = None,
    model: str | None = None,
    pipeline: FacePipeline | None = None,
    *,
    threshold: float | None = None,
    margin: float | None = None,
    folds: int = DEFAULT_FOLDS,
    limits: QualityLimits | None = None,
    cache_dir: Path | None = None,
) -> IdentificationResult:
    """Run the open-set protocol of the module docstring on DIR (and DIR2) with one model.

    ``pipeline`` (detector + embedder) is built for ``model`` when not given; ``threshold`` and
    ``margin`` default to the embedder's calibrated ``default_threshold`` and ``default_margin``.
    ``cache_dir`` keeps the embeddings per (model, file hash) between runs; without it they are
    kept in memory for this run only.
    Raises ProtocolError for unusable folders and VisionError for a missing model.
    """
    if enrol_n < 1:
        raise ProtocolError(f"--enrol must be at least 1, got {enrol_n}")
    if pipeline is None:
        from vision.embedders import load_embedder

        pipeline = FacePipeline(embedder=load_embedder(model) if model else None)
    elif model is not None and model != pipeline.model:
        raise ProtocolError(f"the pipeline embeds with {pipeline.model}, not {model}")
    chosen_threshold = resolve_threshold(pipeline.embedder, threshold)
    chosen_margin = float(pipeline.embedder.default_margin if margin is None else margin)
    start = time.perf_counter()
    roster = read_roster(directory)
    if len(roster) < 1:
        raise ProtocolError(f"{directory} has no person folders with photos")
    extra = stranger_images(strangers_dir, [n for n, _ in roster]) if strangers_dir is not None else None
    if extra is not None and not extra:
        raise ProtocolError(f"{strangers_dir} holds no photos")
    cache = FaceCache(pipeline, limits or QualityLimits(), cache_dir)
    people = [person_faces(name, [cache.get(p) for p in photos], enrol_n) for name, photos in roster]
    stranger_rows = None if extra is None else [cache.get(p).probe for p in extra]
    name, dim = pipeline.model, pipeline.embedder.dim

    def build(pids: Sequence[int], names: Sequence[str], rows: FloatArray) -> Matcher:
        return Matcher(name, pids, names, rows, threshold=chosen_threshold, margin=chosen_margin, dim=dim)

    outcome = run_protocol(people, stranger_rows, model=name, dim=dim, build_matcher=build, folds=folds)
    if extra is None:
        protocol = f"leave-people-out: {outcome.folds} folds of people held out as strangers in turn, pooled"
    else:
        protocol = f"strangers from {strangers_dir}"
    return summarise(
        outcome,
        model=name,
        threshold=chosen_threshold,
        margin=chosen_margin,
        enrol_n=enrol_n,
        protocol=protocol,
        seconds=time.perf_counter() - start,
        enrol_rejected=sum(p.enrol_rejected for p in people),
    )
