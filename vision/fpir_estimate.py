"""How often a 1:N threshold names a stranger, for a watchlist larger than the photos it is measured on.

A stranger is named when any of the G enrolled people scores at least the threshold t against
them. With per-person false-match rate FMR(t) (one photo against one other person's template),
the share of strangers named is about ``1 - (1 - FMR(t))**G``: exact when the G scores are
independent, and an overestimate when some strangers look like many people and others like no one
(Jensen's inequality), so it errs toward naming fewer strangers than it says.

FMR at the small rates a 1% FPIR needs (5e-5 for G = 200) lies beyond the few hundred thousand
comparisons that 50 people give, so the upper tail of the impostor scores is modelled as
exponential above the score ``u`` that a fraction ``tail`` of them exceed (peaks over threshold;
its scale is the mean excess over ``u``). People are resampled with replacement (a person's
photos and templates go together, since a look-alike pair of people is one event, not many) to
give the estimate's spread; the calibrated threshold is the upper end of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vision.types import FloatArray

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Comparisons:
    """Every photo against every enrolled template: its own person's (genuine) and the others' (impostor).

    A template is ``enrol`` photos of one person, the Matcher's per-person score is the best of its
    samples; each person is enrolled once per rotation of their photos (photos r .. r + enrol - 1),
    and a genuine comparison never uses a photo of the template itself.
    """

    genuine: F64
    impostor: F64
    impostor_template: I64  # person of the template
    impostor_probe: I64  # person of the photo
    people: int


# (template rows (enrol, dim), probe rows (n, dim)) -> the n scores
TemplateScore = Callable[[F64, F64], F64]


def best_sample(template: F64, probes: F64) -> F64:
    """The matcher's per-person score: the best cosine over the person's samples."""
    scores: F64 = (probes @ template.T).max(axis=1)
    return scores


def mean_template(template: F64, probes: F64) -> F64:
    """The "mean-template" score: the cosine to the normalised mean of the person's samples."""
    mean = template.sum(axis=0)
    scores: F64 = probes @ (mean / max(float(np.linalg.norm(mean)), 1e-12))
    return scores


SCORES: dict[str, TemplateScore] = {"best-sample": best_sample, "mean-template": mean_template}


def template_comparisons(
    person_of_row: Sequence[int], rows: FloatArray, enrol: int, score: TemplateScore = best_sample
) -> Comparisons:
    """All comparisons of unit ``rows`` (person index per row) for templates of ``enrol`` photos."""
    labels = np.asarray(person_of_row, dtype=np.int64)
    x = np.asarray(rows, dtype=np.float64)
    people = int(labels.max()) + 1 if len(labels) else 0
    genuine: list[F64] = []
    impostor: list[F64] = []
    owner: list[I64] = []
    probe: list[I64] = []
    for person in range(people):
        own = np.flatnonzero(labels == person)
        if len(own) <= enrol:
            continue  # nothing left to probe with
        others = labels != person
        for start in range(len(own)):
            picked = own[[(start + j) % len(own) for j in range(enrol)]]
            scores = score(x[picked], x)
            genuine.append(scores[np.setdiff1d(own, picked)])
            impostor.append(scores[others])
            owner.append(np.full(int(others.sum()), person, dtype=np.int64))
            probe.append(labels[others])
    if not impostor:
        raise ValueError(f"no person has more than {enrol} photos: nothing to calibrate on")
    return Comparisons(
        genuine=np.concatenate(genuine),
        impostor=np.concatenate(impostor),
        impostor_template=np.concatenate(owner),
        impostor_probe=np.concatenate(probe),
        people=people,
    )


def fmr_for_fpir(fpir: float, gallery: int) -> float:
    """The per-person false-match rate at which a ``gallery``-person watchlist names ``fpir`` of strangers."""
    return float(1.0 - (1.0 - fpir) ** (1.0 / gallery))


def fpir_for_fmr(fmr: float, gallery: int) -> float:
    return float(1.0 - (1.0 - min(max(fmr, 0.0), 1.0)) ** gallery)


@dataclass(frozen=True, slots=True)
class TailModel:
    """The modelled upper tail: a share ``p_u`` of impostor scores lies above ``u``, exponential with scale ``beta``."""

    u: float
    beta: float
    p_u: float

    def fmr(self, threshold: float) -> float:
        """Share of impostor comparisons at or above ``threshold`` (meaningful from ``u`` up)."""
        return self.p_u * math.exp(-max(threshold - self.u, 0.0) / self.beta)

    def threshold(self, fmr: float) -> float:
        """The threshold with this FMR, for an ``fmr`` below ``p_u`` (else ``u``)."""
        return self.u + self.beta * math.log(self.p_u / fmr) if fmr < self.p_u else self.u


def fit_tail(sorted_scores: F64, weights: F64 | None = None, tail: float = 0.001) -> TailModel:
    """The tail of ascending impostor scores, optionally weighted (for a resample of people)."""
    w = np.ones(len(sorted_scores)) if weights is None else np.asarray(weights, dtype=np.float64)
    cumulative = np.cumsum(w)
    total = float(cumulative[-1]) if len(cumulative) else 0.0
    if total <= 0:
        raise ValueError("no impostor comparisons")
    # u: the lowest score with at most `tail` of the weight strictly above it
    i = min(int(np.searchsorted(cumulative, (1.0 - tail) * total, side="left")), len(sorted_scores) - 1)
    u = float(sorted_scores[i])
    above = sorted_scores > u
    weight_above = float(w[above].sum())
    beta = float(np.sum(w[above] * (sorted_scores[above] - u)) / weight_above) if weight_above > 0 else 0.0
    return TailModel(u=u, beta=max(beta, 1e-4), p_u=max(weight_above, 0.5) / total)


def empirical_fmr(sorted_scores: F64, threshold: float) -> float:
    """Share of ascending impostor scores at or above ``threshold``."""
    return float(len(sorted_scores) - np.searchsorted(sorted_scores, threshold, side="left")) / len(sorted_scores)


@dataclass(frozen=True, slots=True)
class ThresholdEstimate:
    """The FPIR-``fpir`` threshold for a ``gallery``-person watchlist: point estimate and its resampled spread."""

    point: float
    upper: float  # the ``confidence`` quantile over resamples of people
    gallery: int
    fpir: float
    confidence: float
    point_model: TailModel
    resampled: tuple[TailModel, ...]
    sorted_impostor: F64

    @property
    def resamples(self) -> int:
        return len(self.resampled)

    def fpir_at(self, threshold: float) -> tuple[float, float]:
        """(estimated FPIR, its ``confidence`` upper bound) at ``threshold``.

        Below the tail's start the measured share is used (there are enough comparisons there).
        """
        if threshold < self.point_model.u:
            point = fpir_for_fmr(empirical_fmr(self.sorted_impostor, threshold), self.gallery)
            return point, point
        point = fpir_for_fmr(self.point_model.fmr(threshold), self.gallery)
        spread = [fpir_for_fmr(m.fmr(threshold), self.gallery) for m in self.resampled]
        upper = float(np.quantile(spread, self.confidence)) if spread else point
        return point, max(point, upper)


def estimate_threshold(
    comparisons: Comparisons,
    *,
    gallery: int = 200,
    fpir: float = 0.01,
    tail: float = 0.001,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ThresholdEstimate:
    """See the module docstring; deterministic for a given ``seed``."""
    target = fmr_for_fpir(fpir, gallery)
    order = np.argsort(comparisons.impostor, kind="stable")
    scores = comparisons.impostor[order]
    owner, probe = comparisons.impostor_template[order], comparisons.impostor_probe[order]
    point_model = fit_tail(scores, tail=tail)
    rng = np.random.default_rng(seed)
    models = []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, comparisons.people, comparisons.people), minlength=comparisons.people)
        weights = (counts[owner] * counts[probe]).astype(np.float64)
        if weights.sum() > 0:
            models.append(fit_tail(scores, weights, tail=tail))
    thresholds = [m.threshold(target) for m in models]
    point = point_model.threshold(target)
    upper = float(np.quantile(thresholds, confidence)) if thresholds else point
    return ThresholdEstimate(
        point=point,
        upper=max(point, upper),
        gallery=gallery,
        fpir=fpir,
        confidence=confidence,
        point_model=point_model,
        resampled=tuple(models),
        sorted_impostor=scores,
    )


def fnir_at(comparisons: Comparisons, threshold: float) -> float:
    """Share of genuine comparisons below ``threshold`` (a photo of an enrolled person not reaching it)."""
    return float(np.mean(comparisons.genuine < threshold))
