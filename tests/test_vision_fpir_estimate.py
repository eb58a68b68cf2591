"""vision.fpir_estimate: watchlist-size maths, the exponential tail, the resampling, on known distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vision.fpir_estimate import (
    estimate_threshold,
    fit_tail,
    fmr_for_fpir,
    fnir_at,
    fpir_for_fmr,
    template_comparisons,
)


def test_gallery_size_maths_round_trips() -> None:
    q = fmr_for_fpir(0.01, 200)
    assert q == pytest.approx(5.025e-5, rel=1e-3)
    assert fpir_for_fmr(q, 200) == pytest.approx(0.01)
    assert fpir_for_fmr(q, 1) == pytest.approx(q) and fpir_for_fmr(0.0, 500) == 0.0


def test_an_exponential_tail_is_recovered() -> None:
    rng = np.random.default_rng(0)
    scores = np.sort(rng.exponential(0.02, 400_000))  # P(s >= t) = exp(-t / 0.02)
    model = fit_tail(scores, tail=0.001)
    assert model.beta == pytest.approx(0.02, rel=0.15)
    assert model.p_u == pytest.approx(0.001, rel=0.05)
    t = 0.02 * math.log(1 / 1e-5)  # FMR 1e-5 analytically
    assert model.threshold(1e-5) == pytest.approx(t, abs=0.01)
    assert model.fmr(model.threshold(1e-5)) == pytest.approx(1e-5)


def _comparisons(people: int = 30, photos: int = 6, seed: int = 1):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    labels, rows = [], []
    for k in range(people):
        centre = rng.standard_normal(32)
        for _ in range(photos):
            v = centre + 0.6 * rng.standard_normal(32)
            rows.append(v / np.linalg.norm(v))
            labels.append(k)
    return template_comparisons(labels, np.asarray(rows, np.float32), 3)


def test_template_comparisons_count_every_rotation() -> None:
    c = _comparisons(people=5, photos=4)
    # each person: 4 rotations of a 3-photo template; 1 genuine photo and 16 impostor photos each
    assert len(c.genuine) == 5 * 4 * 1 and len(c.impostor) == 5 * 4 * 16
    assert c.people == 5 and set(np.unique(c.impostor_template)) == set(range(5))
    assert not np.any(c.impostor_template == c.impostor_probe)
    assert np.median(c.genuine) > np.median(c.impostor)
    assert fnir_at(c, -1.0) == 0.0 and fnir_at(c, 1.01) == 1.0


def test_the_upper_bound_sits_above_the_point_estimate_and_is_reproducible() -> None:
    c = _comparisons()
    a = estimate_threshold(c, gallery=200, fpir=0.01, resamples=200, seed=3)
    b = estimate_threshold(c, gallery=200, fpir=0.01, resamples=200, seed=3)
    assert a.upper == b.upper and a.resamples == 200
    assert a.point <= a.upper
    point, upper = a.fpir_at(a.upper)
    assert point <= 0.01 + 1e-9 and upper == pytest.approx(0.01, abs=0.003)
    # a bigger watchlist needs a higher threshold for the same share of strangers named
    assert estimate_threshold(c, gallery=1000, fpir=0.01, resamples=50).point > a.point
