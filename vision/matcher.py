"""1:N identification: who, of everyone enrolled for one model, is this face?

Every sample of every person sits in one unit-normalised float32 matrix, kept transposed
(dim × samples, C order) so one query is a single BLAS matrix-vector product and a batch
is one matrix product. Samples are grouped by person so each person's best sample score
comes from one ``np.maximum.reduceat``.

A person's score is their best sample's cosine ("best-sample"), or, for a model calibrated that
way (fusion-640), the cosine to their template, the normalised mean of their unit samples
("mean-template": one column per person, and steadier against a stranger than the best of a few
samples; bench/accuracy.py). A face is someone when the best person's score reaches ``threshold``
and beats the runner-up person by ``margin``; otherwise it is unknown. Negative samples ("this is not
X") suppress X for a query that is closer to one of X's negatives than to X's best
sample, or that reaches ``negative_threshold`` on one of them.

Embeddings of different models are never compared: a query of another model or another
dimension raises :class:`EmbeddingMismatch`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from vision.types import FloatArray

IntArray = npt.NDArray[np.int64]

DEFAULT_MARGIN = 0.05
SCORINGS = ("best-sample", "mean-template")


def model_scoring(model: str) -> str:
    """How ``model``'s thresholds were calibrated to score a person (vision.embedders.calibrated)."""
    from vision.embedders.calibrated import calibration

    calibrated = calibration(model)
    return calibrated.scoring if calibrated is not None else "best-sample"


def limit_blas_threads(threads: int) -> bool:
    """Cap numpy's BLAS threads for the whole process; returns False when threadpoolctl is not installed.

    The recognition service runs matching on several worker threads of its own; OpenBLAS's extra
    threads on top of them only fight over a small CPU (one 100k-sample query: about 8 ms with one
    BLAS thread against about 20 ms with two, on a busy 2-core machine).
    """
    if threads < 1:
        raise ValueError(f"BLAS threads must be >= 1, got {threads}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    threadpool_limits(limits=threads, user_api="blas")
    return True


class EmbeddingMismatch(ValueError):
    """A query embedding of another model or dimension than the gallery matrix it was matched against."""


@dataclass(frozen=True, slots=True)
class Match:
    """The answer for one face: a person (or None for unknown), the best score and the runner-up's score.

    ``score`` is the best eligible person's score, also when the face is unknown (None when it was compared
    with no one: an empty gallery, or every person suppressed by a negative sample); ``runner_up`` is the
    next person's (None when there is none).
    """

    person_id: int | None
    person: str | None
    score: float | None
    runner_up: float | None


NO_MATCH = Match(None, None, None, None)  # compared with no one


class SampleMatrixLike(Protocol):
    """What :meth:`Matcher.from_matrices` reads of ``storage.records.SampleMatrix`` (one row per sample)."""

    @property
    def person_ids(self) -> npt.NDArray[np.int64]: ...
    @property
    def names(self) -> Sequence[str]: ...
    @property
    def embeddings(self) -> npt.NDArray[np.float32]: ...
    @property
    def watchlist(self) -> npt.NDArray[np.bool_]: ...


class NegativeMatrixLike(Protocol):
    """What :meth:`Matcher.from_matrices` reads of the gallery's negative samples (one row per sample)."""

    @property
    def person_ids(self) -> npt.NDArray[np.int64]: ...
    @property
    def embeddings(self) -> npt.NDArray[np.float32]: ...


class CalibratedModel(Protocol):
    """A model that may know its calibrated 1:N threshold (None: uncalibrated, e.g. vggface2-2048)."""

    @property
    def name(self) -> str: ...

    @property
    def default_threshold(self) -> float | None: ...


def resolve_threshold(embedder: CalibratedModel, setting: float | None = None) -> float:
    """The threshold to use: the user's setting if given, else the embedder's calibrated ``default_threshold``."""
    if setting is not None:
        return _check_threshold(float(setting))
    default = embedder.default_threshold
    if default is None:
        raise ValueError(f"model {embedder.name!r} has no calibrated default threshold: set one explicitly")
    return _check_threshold(float(default))


def _check_threshold(value: float) -> float:
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"a cosine threshold must lie in [-1, 1], got {value}")
    return value


def _unit_rows(matrix: npt.ArrayLike, what: str) -> FloatArray:
    rows = np.asarray(matrix, dtype=np.float32)
    if rows.ndim != 2:
        raise EmbeddingMismatch(f"{what} must be a 2-D (count, dim) array, got shape {rows.shape}")
    if not np.all(np.isfinite(rows)):
        raise EmbeddingMismatch(f"{what} contain NaN or infinite values")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    out: FloatArray = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return out


class Matcher:
    """Identifies faces of one model against every enrolled sample of that model (immutable once built)."""

    def __init__(
        self,
        model: str,
        person_ids: Sequence[int] | npt.ArrayLike,
        names: Sequence[str],
        embeddings: npt.ArrayLike,
        *,
        negatives: tuple[Sequence[int] | npt.ArrayLike, npt.ArrayLike] | None = None,
        threshold: float,
        margin: float = DEFAULT_MARGIN,
        negative_threshold: float | None = None,
        watchlist: Collection[int] = (),
        dim: int | None = None,
        scoring: str | None = None,
    ) -> None:
        """``person_ids``/``names`` give the person of each embedding row; ``negatives`` is (person_ids, rows).

        ``dim`` is only needed for an empty gallery, so that queries can still be checked. ``scoring``
        defaults to the one ``model`` was calibrated with (:func:`model_scoring`).
        """
        self.model = model
        self.scoring = model_scoring(model) if scoring is None else scoring
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {', '.join(SCORINGS)}, got {self.scoring!r}")
        self.threshold = _check_threshold(float(threshold))
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = float(margin)
        self.negative_threshold = None if negative_threshold is None else _check_threshold(float(negative_threshold))
        pids = np.asarray(person_ids, dtype=np.int64).reshape(-1)
        raw = np.asarray(embeddings, dtype=np.float32)
        if raw.size == 0:  # an empty gallery: keep its dimension if known, so queries are still checked
            raw = raw.reshape(0, dim if dim is not None else (raw.shape[-1] if raw.ndim == 2 else 0))
        rows = _unit_rows(raw, f"{model} embeddings")
        if len(pids) != len(rows) or len(names) != len(rows):
            raise ValueError(f"{len(rows)} embeddings but {len(pids)} person ids and {len(names)} names")
        if dim is not None and len(rows) and rows.shape[1] != dim:
            raise EmbeddingMismatch(f"{model} embeddings have dimension {rows.shape[1]}, expected {dim}")
        # None only for an empty gallery of unknown dimension: it accepts any query and knows no one.
        self.dim: int | None = int(rows.shape[1]) if rows.shape[1] > 0 else dim
        order = np.argsort(pids, kind="stable")
        pids, rows = pids[order], rows[order]
        name_arr = [names[i] for i in order]
        self._persons, self._starts = np.unique(pids, return_index=True)
        self._names = tuple(name_arr[i] for i in self._starts)
        self._index = {int(p): i for i, p in enumerate(self._persons)}
        self._samples_t: FloatArray = np.ascontiguousarray(rows.T)  # (dim, samples): one gemv per query
        self._templates_t: FloatArray | None = None  # (dim, persons), for "mean-template"
        if self.scoring == "mean-template" and len(rows):
            sums = np.add.reduceat(rows, self._starts, axis=0)
            self._templates_t = np.ascontiguousarray(_unit_rows(sums, f"{model} templates").T)
        self._watchlist = frozenset(int(p) for p in watchlist)
        self._negatives_t: FloatArray | None = None
        self._neg_starts: IntArray = np.zeros(0, dtype=np.int64)
        self._neg_cols: IntArray = np.zeros(0, dtype=np.int64)  # the person column each negative group belongs to
        if negatives is not None:
            self._set_negatives(*negatives)

    def _set_negatives(self, person_ids: Sequence[int] | npt.ArrayLike, embeddings: npt.ArrayLike) -> None:
        pids = np.asarray(person_ids, dtype=np.int64).reshape(-1)
        if pids.size == 0:
            return
        rows = _unit_rows(embeddings, f"{self.model} negative embeddings")
        if len(rows) != len(pids):
            raise ValueError(f"{len(rows)} negative embeddings but {len(pids)} person ids")
        if self.dim is not None and rows.shape[1] != self.dim:
            raise EmbeddingMismatch(
                f"{self.model} negative embeddings have dimension {rows.shape[1]}, the samples {self.dim}"
            )
        keep = np.isin(pids, self._persons)  # negatives of a person with no positive sample cannot matter
        pids, rows = pids[keep], rows[keep]
        if pids.size == 0:
            return
        order = np.argsort(pids, kind="stable")
        pids, rows = pids[order], rows[order]
        groups, starts = np.unique(pids, return_index=True)
        self._negatives_t = np.ascontiguousarray(rows.T)
        self._neg_starts = starts.astype(np.int64)
        self._neg_cols = np.searchsorted(self._persons, groups).astype(np.int64)

    @classmethod
    def from_matrices(
        cls,
        model: str,
        samples: SampleMatrixLike,
        negatives: NegativeMatrixLike | None = None,
        *,
        threshold: float,
        margin: float = DEFAULT_MARGIN,
        negative_threshold: float | None = None,
        dim: int | None = None,
        scoring: str | None = None,
    ) -> Matcher:
        """Build from ``Gallery.sample_matrix(model)`` and ``Gallery.negative_matrix(model)``."""
        pids = np.asarray(samples.person_ids, dtype=np.int64)
        flags = np.asarray(samples.watchlist, dtype=bool).reshape(-1)
        watch = set(pids[flags].tolist()) if flags.size == pids.size else set()
        neg = None if negatives is None else (negatives.person_ids, negatives.embeddings)
        return cls(
            model,
            pids,
            tuple(samples.names),
            samples.embeddings,
            negatives=neg,
            threshold=threshold,
            margin=margin,
            negative_threshold=negative_threshold,
            watchlist=watch,
            dim=dim,
            scoring=scoring,
        )

    # ------------------------------------------------------------------ queries

    @property
    def persons(self) -> int:
        return len(self._persons)

    @property
    def samples(self) -> int:
        return int(self._samples_t.shape[1])

    def name_of(self, person_id: int) -> str | None:
        i = self._index.get(person_id)
        return None if i is None else self._names[i]

    def knows(self, person_id: int) -> bool:
        """Whether ``person_id`` has samples of this model."""
        return person_id in self._index

    def on_watchlist(self, person_id: int | None) -> bool:
        return person_id is not None and person_id in self._watchlist

    def match_one(self, embedding: npt.ArrayLike, *, model: str) -> Match:
        """Identify one face embedding of ``model``."""
        query = np.asarray(embedding, dtype=np.float32)
        if query.ndim != 1:
            raise EmbeddingMismatch(f"one embedding must be a 1-D vector, got shape {query.shape}")
        return self.match(query[None, :], model=model)[0]

    def match(self, embeddings: npt.ArrayLike, *, model: str) -> list[Match]:
        """Identify a batch of face embeddings of ``model``, (count, dim), with one matrix product."""
        if model != self.model:
            raise EmbeddingMismatch(f"a {model!r} embedding cannot be matched against the {self.model!r} gallery")
        queries = _unit_rows(embeddings, f"{model} query embeddings")
        if self.dim is not None and queries.shape[1] != self.dim:
            raise EmbeddingMismatch(
                f"a {queries.shape[1]}-D query cannot be matched against the {self.dim}-D {self.model!r} gallery"
            )
        if len(queries) == 0:
            return []
        if self.persons == 0:
            return [NO_MATCH for _ in range(len(queries))]
        per_person = self._person_scores(queries)
        return [self._decide(row) for row in per_person]

    def person_scores(self, embeddings: npt.ArrayLike, *, model: str) -> FloatArray:
        """(count, persons) best-sample cosine per person, with suppressed persons at -inf (for tools and tests)."""
        if model != self.model:
            raise EmbeddingMismatch(f"a {model!r} embedding cannot be matched against the {self.model!r} gallery")
        queries = _unit_rows(embeddings, f"{model} query embeddings")
        if self.dim is not None and queries.shape[1] != self.dim:
            raise EmbeddingMismatch(f"a {queries.shape[1]}-D query against the {self.dim}-D {self.model!r} gallery")
        return self._person_scores(queries)

    def _person_scores(self, queries: FloatArray) -> FloatArray:
        best: FloatArray
        if self._templates_t is not None:
            best = queries @ self._templates_t  # (queries, persons)
        else:
            sims = queries @ self._samples_t  # (queries, samples)
            best = np.maximum.reduceat(sims, self._starts, axis=1)  # (queries, persons)
        if self._negatives_t is not None:
            neg = np.maximum.reduceat(queries @ self._negatives_t, self._neg_starts, axis=1)  # (queries, groups)
            pos = best[:, self._neg_cols]
            suppressed = neg >= pos
            if self.negative_threshold is not None:
                suppressed |= neg >= self.negative_threshold
            rows, cols = np.nonzero(suppressed)
            best[rows, self._neg_cols[cols]] = -np.inf
        return best

    def _decide(self, scores: FloatArray) -> Match:
        if len(scores) == 1:
            top, second = 0, -1
        else:
            two = np.argpartition(-scores, 1)[:2]
            top, second = (int(two[0]), int(two[1])) if scores[two[0]] >= scores[two[1]] else (int(two[1]), int(two[0]))
        best = float(scores[top])
        runner = float(scores[second]) if second >= 0 and np.isfinite(scores[second]) else None
        if not np.isfinite(best):  # every person suppressed
            return NO_MATCH
        if best >= self.threshold and (runner is None or best - runner >= self.margin):
            pid = int(self._persons[top])
            return Match(pid, self._names[top], best, runner)
        return Match(None, None, best, runner)


def template_decider(matcher: Matcher | None) -> Callable[[FloatArray], Match] | None:
    """A track's ``decide``: its template (one unit row) matched like any query, None without a matcher.
    Make it once per matcher: the tracker decides again when it is handed a different callable."""
    if matcher is None:
        return None

    def decide(template: FloatArray, m: Matcher = matcher) -> Match:
        return m.match(template[None, :], model=m.model)[0]

    return decide


class GalleryLike(Protocol):
    """What the service needs of ``storage.gallery.Gallery`` to rebuild its matcher."""

    def sample_matrix(self, model: str) -> SampleMatrixLike: ...
    def negative_matrix(self, model: str) -> NegativeMatrixLike: ...
    def revision(self) -> int: ...


def gallery_loader(
    gallery: GalleryLike,
    model: str,
    *,
    threshold: float,
    margin: float = DEFAULT_MARGIN,
    negative_threshold: float | None = None,
    dim: int | None = None,
) -> Callable[[], Matcher]:
    """A callable that builds a fresh matcher from the gallery's current samples of ``model``."""

    def load() -> Matcher:
        return Matcher.from_matrices(
            model,
            gallery.sample_matrix(model),
            gallery.negative_matrix(model),
            threshold=threshold,
            margin=margin,
            negative_threshold=negative_threshold,
            dim=dim,
        )

    return load
