"""Matcher maths on constructed unit vectors: thresholds, margins, negatives, batches and model checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.records import SampleMatrix
from vision.matcher import NO_MATCH, EmbeddingMismatch, Matcher, resolve_threshold

DIM = 8
MODEL = "facenet"


def unit(*values: float, dim: int = DIM) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


def towards(a: np.ndarray, b: np.ndarray, cos: float) -> np.ndarray:
    """A unit vector at cosine ``cos`` from unit ``a``, in the plane of a and b."""
    ortho = b - a * float(a @ b)
    ortho /= np.linalg.norm(ortho)
    out: np.ndarray = (cos * a + np.sqrt(1 - cos**2) * ortho).astype(np.float32)
    return out


E = np.eye(DIM, dtype=np.float32)


def two_people(**kw: object) -> Matcher:
    # Ann has two samples (e0 and a vector between e0 and e2), Bob one (e1).
    rows = np.stack([E[0], unit(1, 0, 1), E[1]])
    return Matcher(MODEL, [7, 7, 9], ["Ann", "Ann", "Bob"], rows, **kw)  # type: ignore[arg-type]


def test_best_sample_per_person_decides_and_runner_up_is_the_next_person() -> None:
    m = two_people(threshold=0.5, margin=0.1)
    q = unit(0, 0, 1)  # cos 0.707 to Ann's second sample, 0 to her first and to Bob
    got = m.match_one(q, model=MODEL)
    assert got.person_id == 7 and got.person == "Ann"
    assert got.score == pytest.approx(np.sqrt(0.5), abs=1e-6)
    assert got.runner_up == pytest.approx(0.0, abs=1e-6)


def test_below_threshold_is_unknown_with_its_score() -> None:
    m = two_people(threshold=0.8, margin=0.0)
    got = m.match_one(towards(E[1], E[3], 0.79), model=MODEL)
    assert got.person is None and got.score == pytest.approx(0.79, abs=1e-5)
    assert m.match_one(towards(E[1], E[3], 0.81), model=MODEL).person == "Bob"


def test_margin_over_the_runner_up_person_is_required() -> None:
    m = two_people(threshold=0.5, margin=0.1)
    between = unit(1, 1)  # 0.707 to Ann and to Bob: a tie
    tie = m.match_one(between, model=MODEL)
    assert tie.person is None and tie.score == pytest.approx(tie.runner_up, abs=1e-6)
    leaning = unit(1, 0.7)  # Ann 0.819, Bob 0.573: margin 0.246
    assert m.match_one(leaning, model=MODEL).person == "Ann"
    assert two_people(threshold=0.5, margin=0.3).match_one(leaning, model=MODEL).person is None


def test_two_samples_of_one_person_are_not_each_others_runner_up() -> None:
    rows = np.stack([E[0], towards(E[0], E[1], 0.99)])
    m = Matcher(MODEL, [1, 1], ["Ann", "Ann"], rows, threshold=0.5, margin=0.2)
    got = m.match_one(E[0], model=MODEL)
    assert got.person == "Ann" and got.runner_up is None


def test_a_negative_sample_suppresses_the_false_match_and_falls_to_the_next_person() -> None:
    # Bob is close to the query; his negative sample (a known false match) is closer still.
    q = E[2]
    bob = towards(q, E[1], 0.7)
    carl = towards(q, E[3], 0.6)
    rows = np.stack([bob, carl])
    plain = Matcher(MODEL, [2, 3], ["Bob", "Carl"], rows, threshold=0.5, margin=0.05)
    assert plain.match_one(q, model=MODEL).person == "Bob"
    negative = towards(q, E[4], 0.9)
    m = Matcher(MODEL, [2, 3], ["Bob", "Carl"], rows, negatives=([2], negative[None]), threshold=0.5, margin=0.05)
    got = m.match_one(q, model=MODEL)
    assert got.person == "Carl" and got.score == pytest.approx(0.6, abs=1e-5)
    assert got.runner_up is None  # Bob is out of the race for this face
    # A face nearer to Bob's positive than to his negative is still Bob.
    assert m.match_one(bob, model=MODEL).person == "Bob"


def test_a_suppressed_lone_person_makes_the_face_unknown() -> None:
    q = E[0]
    m = Matcher(MODEL, [5], ["Eve"], towards(q, E[1], 0.8)[None], negatives=([5], q[None]), threshold=0.5, margin=0.0)
    got = m.match_one(q, model=MODEL)
    assert got.person is None


def test_negative_threshold_suppresses_even_when_the_positive_is_closer() -> None:
    q = E[0]
    pos, neg = towards(q, E[1], 0.9), towards(q, E[2], 0.75)
    kw = {"negatives": ([5], neg[None]), "threshold": 0.5, "margin": 0.0}
    assert Matcher(MODEL, [5], ["Eve"], pos[None], **kw).match_one(q, model=MODEL).person == "Eve"  # type: ignore[arg-type]
    strict = Matcher(MODEL, [5], ["Eve"], pos[None], negative_threshold=0.7, **kw)  # type: ignore[arg-type]
    assert strict.match_one(q, model=MODEL).person is None


def test_other_model_or_dimension_is_refused_with_a_clear_error() -> None:
    m = two_people(threshold=0.5)
    with pytest.raises(EmbeddingMismatch, match="'dlib' embedding cannot be matched against the 'facenet'"):
        m.match_one(E[0], model="dlib")
    with pytest.raises(EmbeddingMismatch, match="128-D query cannot be matched against the 8-D"):
        m.match(np.ones((2, 128), np.float32), model=MODEL)
    with pytest.raises(EmbeddingMismatch, match="NaN"):
        m.match_one(np.full(DIM, np.nan, np.float32), model=MODEL)
    with pytest.raises(EmbeddingMismatch, match="dimension 4, the samples 8"):
        Matcher(MODEL, [7], ["Ann"], E[:1], negatives=([7], np.ones((1, 4))), threshold=0.5)


def test_empty_gallery_knows_no_one_but_still_checks_dimension() -> None:
    m = Matcher(MODEL, [], [], np.zeros((0, DIM), np.float32), threshold=0.5)
    assert m.match(np.eye(2, DIM, dtype=np.float32), model=MODEL) == [NO_MATCH] * 2
    with pytest.raises(EmbeddingMismatch):
        m.match_one(np.ones(3, np.float32), model=MODEL)


def test_queries_and_samples_are_normalised() -> None:
    rows = np.stack([E[0] * 5, E[1] * 0.1])
    m = Matcher(MODEL, [1, 2], ["Ann", "Bob"], rows, threshold=0.9, margin=0.1)
    got = m.match_one(E[0] * 42, model=MODEL)
    assert got.person == "Ann" and got.score == pytest.approx(1.0, abs=1e-6)


def test_from_matrices_reads_the_gallery_matrices_and_watchlist() -> None:
    samples = SampleMatrix(
        person_ids=np.array([3, 4, 3], dtype=np.int64),
        names=("Cy", "Di", "Cy"),
        embeddings=np.stack([E[0], E[1], E[2]]),
        watchlist=np.array([True, False, True]),
        revision=12,
    )
    negatives = SampleMatrix(np.array([4]), ("Di",), E[3][None], np.array([False]), 12)
    m = Matcher.from_matrices(MODEL, samples, negatives, threshold=0.5, margin=0.05)
    assert m.persons == 2 and m.samples == 3
    assert m.match_one(E[2], model=MODEL).person == "Cy"
    assert m.on_watchlist(3) and not m.on_watchlist(4) and not m.on_watchlist(None)
    assert m.match_one(unit(0, 1, 0, 1.2), model=MODEL).person is None  # nearer Di's negative than Di


def test_resolve_threshold_prefers_the_setting_then_the_calibrated_default() -> None:
    class Calibrated:
        name = "facenet"
        default_threshold = 0.42

    class Uncalibrated:
        name = "vggface2"
        default_threshold = None

    assert resolve_threshold(Calibrated()) == 0.42
    assert resolve_threshold(Calibrated(), 0.6) == 0.6
    with pytest.raises(ValueError, match="'vggface2' has no calibrated default threshold"):
        resolve_threshold(Uncalibrated())
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        resolve_threshold(Calibrated(), 1.5)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    persons=st.integers(1, 12),
    threshold=st.floats(-0.2, 0.9),
    margin=st.floats(0.0, 0.3),
)
def test_batch_equals_a_plain_loop_reference(seed: int, persons: int, threshold: float, margin: float) -> None:
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 4, size=persons)
    pids = np.repeat(rng.permutation(100)[:persons], per)
    rng.shuffle(pids)
    rows = rng.standard_normal((len(pids), 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    names = [f"p{p}" for p in pids]
    m = Matcher("m", pids, names, rows, threshold=threshold, margin=margin)
    queries = rng.standard_normal((5, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    got = m.match(queries, model="m")
    for q, match in zip(queries, got, strict=True):
        best: dict[int, float] = {}
        for p, r in zip(pids, rows, strict=True):
            best[int(p)] = max(best.get(int(p), -2.0), float(q @ r))
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        top_p, top_s = ranked[0]
        runner = ranked[1][1] if len(ranked) > 1 else None
        assert match.score == pytest.approx(top_s, abs=1e-5)
        assert match.runner_up == (None if runner is None else pytest.approx(runner, abs=1e-5))
        accepted = top_s >= threshold and (runner is None or top_s - runner >= margin)
        if abs(top_s - threshold) > 1e-5 and (runner is None or abs(top_s - runner - margin) > 1e-5):
            assert (match.person_id == top_p) if accepted else (match.person_id is None)


def test_mean_template_scoring_scores_a_person_by_the_mean_of_their_samples() -> None:
    rows = np.stack([E[0], E[1], E[2]])  # Ann: e0 and e1; Bob: e2
    kw = {"threshold": 0.9, "margin": 0.0}
    mean = Matcher(MODEL, [7, 7, 9], ["Ann", "Ann", "Bob"], rows, scoring="mean-template", **kw)  # type: ignore[arg-type]
    best = Matcher(MODEL, [7, 7, 9], ["Ann", "Ann", "Bob"], rows, **kw)  # type: ignore[arg-type]
    between = unit(1, 1)  # Ann's template exactly
    assert mean.person_scores(between[None], model=MODEL)[0] == pytest.approx([1.0, 0.0], abs=1e-6)
    assert best.person_scores(between[None], model=MODEL)[0] == pytest.approx([np.sqrt(0.5), 0.0], abs=1e-6)
    assert mean.match_one(between, model=MODEL).person == "Ann" and best.match_one(between, model=MODEL).person is None
    assert mean.person_scores(E[0][None], model=MODEL)[0, 0] == pytest.approx(np.sqrt(0.5), abs=1e-6)
    assert (best.scoring, mean.scoring) == ("best-sample", "mean-template")
    # the default is what the model was calibrated with
    assert Matcher("fusion-640", [1], ["A"], E[:1], threshold=0.5).scoring == "mean-template"
    assert Matcher("facenet-512", [1], ["A"], E[:1], threshold=0.5).scoring == "best-sample"
    with pytest.raises(ValueError, match="scoring must be one of"):
        Matcher(MODEL, [1], ["A"], E[:1], threshold=0.5, scoring="median")
    # an empty gallery still answers
    empty = Matcher(MODEL, [], [], np.zeros((0, DIM), np.float32), threshold=0.5, scoring="mean-template")
    assert empty.match(E[:1], model=MODEL) == [NO_MATCH]
