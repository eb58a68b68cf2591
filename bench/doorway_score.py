"""The doorway benchmark's arithmetic: sightings attributed to passes, FNIR and FPIR per pass, the errors'
causes, the DET curve of track decisions, and the track-level calibration (no video, no models: pure).

**Attribution.** A sighting covers the frames from its start to its end (``main.py scan`` times are
``--start`` plus ``frame / fps``); it *overlaps* a pass when the two frame ranges share a frame. A
sighting overlapping two or more passes is one track that ran from one person onto another; when it
carries a name it is an **identity switch**.

**Per pass, at the shipped operating point** (the names the engine printed):

* a watchlist pass is **named right** when any sighting overlapping it names its person. A pass named
  right by one track and wrong by another counts as named right for FNIR, and is counted apart
  (``watchlist_named_wrong``: a wrong name an operator saw), as is every watchlist pass given a wrong name;
* a stranger pass is **named** (a false alarm, FPIR) when any sighting overlapping it names anyone.

**Causes** (the issue's breakdown), one per error, the first that applies:

* a false alarm: ``switch`` (the naming track spans passes: it carried a name from or onto another
  face) or ``named outright`` (a track of this pass alone named the stranger);
* a miss: ``switch`` (a wrong-named track from or onto another pass covers it), ``wrong person`` (a
  track of this pass alone named someone else), ``under threshold`` (a track's best candidate was the
  right person, below the threshold or the margin: its score is kept), ``merged`` (its face only
  ever joined unnamed tracks spanning passes), ``not recognised`` (its tracks' best candidate was
  someone else, unnamed), ``no track`` (no sighting overlaps it: no face found).

**The DET curve** sweeps the threshold over the tracks' scores with the margin fixed: a sighting names
its best candidate at threshold ``t`` when its score reaches ``t`` and beats the runner-up by the
margin (the decision of vision.matcher applied to the track's template, whose best candidate and
runner-up the benchmark reads back from the gallery). So each pass has one score at which it turns:
a stranger pass is named from its **alarm score** down (the best score of its naming-eligible
tracks), a watchlist pass is named right from its **hit score** down (the best score of its tracks
whose candidate is its person). A sighting whose candidate is not known names "someone" (a name that
is nobody's) at thresholds it reaches.

**Calibration per person who passes** (:func:`calibrate`), the way vision/calibration.py calibrates on
photos, here on passes: the threshold at which at most ``fpir`` of the stranger passes are named,
with a 95% upper bound over resamples of the stranger people (with replacement, seed 0) and FNIR
there; and, as vision.fpir_estimate models it, the threshold for a larger watchlist (200 people, what
the shipped operating point is calibrated for) from the passes' per-person scores, people (enrolled
and strangers) resampled together, the margin ignored (it only names fewer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from vision.fpir_estimate import Comparisons, estimate_threshold
from vision.identification import DetPoint

F64 = npt.NDArray[np.float64]
SOMEONE = "\x00someone"  # the name a sighting gives when its candidate is not known: nobody's
NO_PASS_SCORE = -math.inf  # a pass with no eligible track never turns
TAIL = 0.01  # the share of (pass, person) impostor scores the exponential tail is fitted to (a few thousand here)


class Kind(StrEnum):
    WATCHLIST = "watchlist"
    STRANGER = "stranger"


class Cause(StrEnum):
    SWITCH = "switch"
    OUTRIGHT = "named outright"
    WRONG = "wrong person"
    UNDER = "under threshold"
    MERGED = "merged"
    UNRECOGNISED = "not recognised"
    NO_TRACK = "no track"


@dataclass(frozen=True, slots=True)
class Span:
    """One pass as the scorer sees it: its kind, its person and its frames (inclusive)."""

    index: int
    kind: Kind
    person: str
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Sighting:
    """One ``sighting`` line, in frames. ``candidate``/``runner_up``: the template's best person and the
    runner-up's score (None when not known: then ``person`` stands for the candidate)."""

    track: str
    person: str | None
    score: float | None  # None: compared with no one
    first: int
    last: int
    frames: int = 0
    looks: int | None = None
    candidate: str | None = None
    runner_up: float | None = None

    def overlaps(self, span: Span) -> bool:
        return self.first <= span.last and self.last >= span.first

    def best(self) -> str | None:
        """The person this sighting would name at a low enough threshold."""
        return self.candidate if self.candidate is not None else self.person

    def eligible(self, margin: float) -> bool:
        """Whether its score beats the runner-up by ``margin`` (unknown runner-up: assumed to)."""
        return self.score is not None and (self.runner_up is None or self.score - self.runner_up >= margin - 1e-9)

    def name_at(self, threshold: float, margin: float) -> str | None:
        """The name this sighting gives at ``threshold`` (margin fixed)."""
        if self.score is None or self.score < threshold or not self.eligible(margin):
            return None
        return self.best() or SOMEONE


def epoch(text: str) -> float:
    """Epoch seconds of a sighting line's ISO time ("...Z" or with an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_sightings(lines: Iterable[Mapping[str, object]], start: float, fps: float) -> list[Sighting]:
    """The ``sighting`` events among ``lines`` (parsed JSON), their times turned into frame numbers."""
    out: list[Sighting] = []
    for line in lines:
        if line.get("event") != "sighting":
            continue
        score, looks = line.get("score"), line.get("looks")
        frames = line.get("frames", 0)
        out.append(
            Sighting(
                track=str(line["track"]),
                person=None if line.get("person") is None else str(line["person"]),
                score=None if not isinstance(score, int | float) else float(score),
                first=round((epoch(str(line["start"])) - start) * fps),
                last=round((epoch(str(line["end"])) - start) * fps),
                frames=int(frames) if isinstance(frames, int) else 0,
                looks=looks if isinstance(looks, int) else None,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Attribution:
    """Which sightings overlap which passes (indices both ways)."""

    spans: tuple[Span, ...]
    sightings: tuple[Sighting, ...]
    of_pass: tuple[tuple[int, ...], ...]  # per span: the sightings overlapping it
    of_sighting: tuple[tuple[int, ...], ...]  # per sighting: the spans it overlaps

    def spanning(self, k: int) -> bool:
        """Whether sighting ``k`` overlaps more than one pass."""
        return len(self.of_sighting[k]) > 1


def attribute(spans: Sequence[Span], sightings: Sequence[Sighting]) -> Attribution:
    starts = np.asarray([s.first for s in spans], dtype=np.int64)
    order = np.argsort(starts, kind="stable")
    ordered_starts = starts[order]
    of_sighting: list[tuple[int, ...]] = []
    of_pass: list[list[int]] = [[] for _ in spans]
    for k, s in enumerate(sightings):
        # the spans that start at or before its last frame, and end at or after its first
        hi = int(np.searchsorted(ordered_starts, s.last, side="right"))
        hit = tuple(sorted(int(order[j]) for j in range(hi) if spans[int(order[j])].last >= s.first))
        of_sighting.append(hit)
        for j in hit:
            of_pass[j].append(k)
    return Attribution(tuple(spans), tuple(sightings), tuple(tuple(p) for p in of_pass), tuple(of_sighting))


@dataclass(frozen=True, slots=True)
class PassOutcome:
    """One pass at the shipped point: the names its sightings gave, whether it went right, and why not."""

    span: Span
    names: tuple[str, ...]
    right: bool
    cause: Cause | None = None
    score: float | None = None  # the score behind the cause (under threshold: the right person's)
    named_wrong: bool = False  # a watchlist pass given another person's name (also when named right)


def _miss_cause(att: Attribution, j: int, decide: Callable[[Sighting], str | None]) -> tuple[Cause, float | None]:
    span, ks = att.spans[j], att.of_pass[j]
    wrong = [k for k in ks if decide(att.sightings[k]) not in (None, span.person)]
    if any(att.spanning(k) for k in wrong):
        return Cause.SWITCH, None
    if wrong:
        return Cause.WRONG, max(att.sightings[k].score or 0.0 for k in wrong)
    right = [att.sightings[k] for k in ks if att.sightings[k].best() == span.person]
    if right:
        under = [s for r in right if (s := r.score) is not None]
        return Cause.UNDER, max(under) if under else None
    if not ks:
        return Cause.NO_TRACK, None
    scored = [s for k in ks if (s := att.sightings[k].score) is not None]
    best = max(scored) if scored else None
    return (Cause.MERGED if all(att.spanning(k) for k in ks) else Cause.UNRECOGNISED), best


def outcome(att: Attribution, j: int, decide: Callable[[Sighting], str | None]) -> PassOutcome:
    """Pass ``j``'s outcome with each sighting's name given by ``decide``."""
    span, ks = att.spans[j], att.of_pass[j]
    named = [(k, n) for k in ks if (n := decide(att.sightings[k])) is not None]
    names = tuple(sorted({n for _, n in named}))
    if span.kind is Kind.STRANGER:
        if not named:
            return PassOutcome(span, names, True)
        cause = Cause.SWITCH if any(att.spanning(k) for k, _ in named) else Cause.OUTRIGHT
        return PassOutcome(span, names, False, cause, max(att.sightings[k].score or 0.0 for k, _ in named))
    wrong = any(n != span.person for n in names)
    if span.person in names:
        return PassOutcome(span, names, True, named_wrong=wrong)
    cause, score = _miss_cause(att, j, decide)
    return PassOutcome(span, names, False, cause, score, named_wrong=wrong)


def as_engine_said(s: Sighting) -> str | None:
    return s.person


@dataclass(frozen=True)
class PassScores:
    """Each pass's turning point: stranger passes are named from ``alarm`` down, watchlist passes named
    right from ``hit`` down (−inf: never)."""

    alarm: F64  # per stranger pass
    hit: F64  # per watchlist pass

    def fpir(self, threshold: float) -> float:
        return float(np.mean(self.alarm >= threshold)) if len(self.alarm) else 0.0

    def fnir(self, threshold: float) -> float:
        return float(np.mean(self.hit < threshold)) if len(self.hit) else 0.0


def pass_scores(att: Attribution, margin: float) -> PassScores:
    alarm: list[float] = []
    hit: list[float] = []
    for span, ks in zip(att.spans, att.of_pass, strict=True):
        eligible = [att.sightings[k] for k in ks if att.sightings[k].eligible(margin)]
        if span.kind is Kind.STRANGER:
            alarm.append(max((s.score for s in eligible if s.score is not None), default=NO_PASS_SCORE))
        else:
            mine = [s.score for s in eligible if s.best() == span.person and s.score is not None]
            hit.append(max(mine, default=NO_PASS_SCORE))
    return PassScores(np.asarray(alarm, dtype=np.float64), np.asarray(hit, dtype=np.float64))


def det_curve(scores: PassScores) -> tuple[DetPoint, ...]:
    """FPIR and FNIR per pass at every threshold where one of them changes, strictest first."""
    finite = np.concatenate([scores.alarm, scores.hit])
    finite = finite[np.isfinite(finite)]
    thresholds = sorted({float(t) for t in finite}, reverse=True)
    points = [DetPoint(math.inf, 0.0, 1.0 if len(scores.hit) else 0.0)]
    points += [DetPoint(t, scores.fpir(t), scores.fnir(t)) for t in thresholds]
    return tuple(points)


@dataclass(frozen=True)
class Report:
    """One run at its operating point: the outcomes per pass, the rates, the causes, the tracks' looks."""

    threshold: float
    margin: float
    outcomes: tuple[PassOutcome, ...]
    sightings: int
    named_sightings: int
    switches: int  # named sightings spanning two or more passes
    spanning: int  # any sightings spanning two or more passes
    looks: tuple[int, ...]  # per sighting (those whose line carries it)
    scores: PassScores = field(repr=False)
    sweep_disagrees: int = 0  # passes whose outcome at the threshold differs between the engine's names and the sweep

    def _of(self, kind: Kind) -> list[PassOutcome]:
        return [o for o in self.outcomes if o.span.kind is kind]

    @property
    def watchlist(self) -> int:
        return len(self._of(Kind.WATCHLIST))

    @property
    def strangers(self) -> int:
        return len(self._of(Kind.STRANGER))

    @property
    def missed(self) -> int:
        return sum(1 for o in self._of(Kind.WATCHLIST) if not o.right)

    @property
    def alarms(self) -> int:
        return sum(1 for o in self._of(Kind.STRANGER) if not o.right)

    @property
    def fnir(self) -> float:
        return self.missed / max(1, self.watchlist)

    @property
    def fpir(self) -> float:
        return self.alarms / max(1, self.strangers)

    @property
    def watchlist_named_wrong(self) -> int:
        return sum(1 for o in self._of(Kind.WATCHLIST) if o.named_wrong)

    def causes(self, kind: Kind) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self._of(kind):
            if o.cause is not None:
                counts[o.cause.value] = counts.get(o.cause.value, 0) + 1
        return counts

    def errors(self) -> list[PassOutcome]:
        return [o for o in self.outcomes if not o.right or o.named_wrong]


def score_run(spans: Sequence[Span], sightings: Sequence[Sighting], threshold: float, margin: float) -> Report:
    """Everything the benchmark reports of one run; the names are the engine's."""
    att = attribute(spans, sightings)
    outcomes = tuple(outcome(att, j, as_engine_said) for j in range(len(spans)))
    swept = tuple(outcome(att, j, lambda s: s.name_at(threshold, margin)) for j in range(len(spans)))
    named = [k for k, s in enumerate(sightings) if s.person is not None]
    return Report(
        threshold=threshold,
        margin=margin,
        outcomes=outcomes,
        sightings=len(sightings),
        named_sightings=len(named),
        switches=sum(1 for k in named if att.spanning(k)),
        spanning=sum(1 for k in range(len(sightings)) if att.spanning(k)),
        looks=tuple(s.looks for s in sightings if s.looks is not None),
        scores=pass_scores(att, margin),
        sweep_disagrees=sum(1 for a, b in zip(outcomes, swept, strict=True) if a.right != b.right),
    )


# ---------------------------------------------------------------------------------------- calibration


def _strictest_allowed(alarm: F64, fpir: float) -> float:
    """The lowest threshold (on a 0.001 grid) naming at most ``fpir`` of the stranger passes ``alarm``."""
    finite = np.sort(alarm[np.isfinite(alarm)])[::-1]
    allowed = math.floor(fpir * len(alarm) + 1e-9)
    if allowed >= len(finite):
        return round(float(finite[-1]), 3) if len(finite) else -1.0  # every alarm fits: the lowest named
    return (math.floor(float(finite[allowed]) * 1000 + 1e-6) + 1) / 1000  # just above the first one too many


@dataclass(frozen=True)
class TrackCalibration:
    """The per-pass operating point for ``fpir``: measured on this run's watchlist, and modelled for ``gallery``."""

    fpir: float
    strangers: int
    watchlist: int
    enrolled: int
    threshold: float  # the point: at most ``fpir`` of these stranger passes named
    upper: float  # its 95% upper bound over resampled strangers
    fnir_at_threshold: float
    fnir_at_upper: float
    resamples: int
    gallery: int | None = None  # the modelled watchlist size
    modelled: float | None = None  # its threshold (point), from the per-person scores
    modelled_upper: float | None = None  # above 1: no cosine threshold reaches the target
    fnir_at_modelled_upper: float | None = None
    modelled_here: float | None = None  # the same model for this run's own watchlist: a check against ``threshold``
    modelled_here_upper: float | None = None

    def as_json(self) -> dict[str, object]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def person_comparisons(
    stranger_rows: npt.ArrayLike, mated_rows: npt.ArrayLike, mated_person: Sequence[int]
) -> Comparisons:
    """The passes' per-person scores as vision.fpir_estimate's comparisons: ``stranger_rows`` (S, P) and
    ``mated_rows`` (W, P) hold each pass's best score against each of the P enrolled people (over its
    sightings' templates); ``mated_person`` the enrolled index of each watchlist pass's person. People
    0..P-1 are the enrolled (a watchlist pass goes with its person), P.. the strangers."""
    s = np.asarray(stranger_rows, dtype=np.float64)
    m = np.asarray(mated_rows, dtype=np.float64)
    enrolled = s.shape[1] if s.ndim == 2 else m.shape[1]
    own = np.asarray(mated_person, dtype=np.int64)
    imp: list[F64] = [s.reshape(-1)]
    template = [np.tile(np.arange(enrolled), len(s))]
    probe = [np.repeat(np.arange(len(s)) + enrolled, enrolled)]
    others = np.ones(m.shape, dtype=bool)
    others[np.arange(len(m)), own] = False
    imp.append(m[others])
    template.append(np.tile(np.arange(enrolled), len(m)).reshape(m.shape)[others])
    probe.append(np.repeat(own, enrolled).reshape(m.shape)[others])
    genuine = m[np.arange(len(m)), own]
    keep = [np.isfinite(x) for x in imp]
    return Comparisons(
        genuine=genuine[np.isfinite(genuine)],
        impostor=np.concatenate([x[k] for x, k in zip(imp, keep, strict=True)]),
        impostor_template=np.concatenate([x[k] for x, k in zip(template, keep, strict=True)]),
        impostor_probe=np.concatenate([x[k] for x, k in zip(probe, keep, strict=True)]),
        people=enrolled + len(s),
    )


def calibrate(
    scores: PassScores,
    *,
    enrolled: int,
    fpir: float = 0.01,
    resamples: int = 1000,
    seed: int = 0,
    comparisons: Comparisons | None = None,
    gallery: int = 200,
) -> TrackCalibration:
    """See the module docstring; deterministic for a given ``seed``."""
    alarm = scores.alarm
    point = _strictest_allowed(alarm, fpir)
    rng = np.random.default_rng(seed)
    drawn = [_strictest_allowed(alarm[rng.integers(0, len(alarm), len(alarm))], fpir) for _ in range(resamples)]
    upper = max(point, float(np.quantile(drawn, 0.95))) if drawn else point
    upper = math.ceil(upper * 1000 - 1e-6) / 1000
    out = TrackCalibration(
        fpir=fpir,
        strangers=len(alarm),
        watchlist=len(scores.hit),
        enrolled=enrolled,
        threshold=point,
        upper=upper,
        fnir_at_threshold=scores.fnir(point),
        fnir_at_upper=scores.fnir(upper),
        resamples=len(drawn),
    )
    if comparisons is None:
        return out
    est = estimate_threshold(comparisons, gallery=gallery, fpir=fpir, tail=TAIL, resamples=resamples, seed=seed)
    here = estimate_threshold(comparisons, gallery=enrolled, fpir=fpir, tail=TAIL, resamples=resamples, seed=seed)
    modelled_upper = math.ceil(est.upper * 1000) / 1000
    return replace(
        out,
        gallery=gallery,
        modelled=round(est.point, 4),
        modelled_upper=modelled_upper,
        fnir_at_modelled_upper=scores.fnir(modelled_upper),
        modelled_here=round(here.point, 4),
        modelled_here_upper=math.ceil(here.upper * 1000) / 1000,
    )
