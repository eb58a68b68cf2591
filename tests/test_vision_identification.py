"""The open-set 1:N protocol (vision.identification): FNIR/FPIR/DET maths on scores with known answers,
the leave-people-out folds on constructed embeddings, the DET SVG, and one small real run."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FACES, need
from vision.det_svg import DetSeries, det_svg, result_svg
from vision.identification import (
    PersonFaces,
    ProtocolError,
    Searches,
    det_curve,
    evaluate_identification,
    fnir,
    fnir_at_fpir,
    fpir,
    named,
    rank1,
    run_protocol,
    searches_from_scores,
    threshold_at_fpir,
)
from vision.matcher import Matcher

LOWEST = -1.0  # the runner-up of a lone person in the evaluation's arrays

IDS = FACES / "identities"


def searches(top: list[float], runner: list[float] | None = None, correct: list[bool] | None = None) -> Searches:
    n = len(top)
    return Searches(
        np.asarray(top, dtype=float),
        np.asarray(runner if runner is not None else [LOWEST] * n, dtype=float),
        np.asarray(correct if correct is not None else [False] * n, dtype=bool),
    )


def test_searches_from_a_score_matrix() -> None:
    scores = np.array([[0.9, 0.2, 0.4], [0.1, 0.3, 0.8], [-np.inf, -np.inf, -np.inf], [0.5, 0.6, 0.1]])
    s = searches_from_scores(scores, [0, 0, 1, -1])
    assert s.top.tolist()[:2] == [0.9, 0.8] and s.runner.tolist()[:2] == [0.4, 0.3]
    assert s.correct.tolist() == [True, False, False, False]  # row 1 names person 2, not its mate 0
    assert not np.isfinite(s.top[2])  # no face: never named
    lone = searches_from_scores(np.array([[0.7]]), [0])
    assert lone.runner.tolist() == [LOWEST] and lone.correct.tolist() == [True]


def test_threshold_at_fpir_allows_floor_of_the_share_and_breaks_ties_safely() -> None:
    strangers = searches([0.1 * k for k in range(1, 11)])  # 0.1 .. 1.0
    t = threshold_at_fpir(strangers, 0.1, 0.0)  # one of ten may be named: the 1.0
    assert 0.9 < t <= 0.9 + 1e-9 and fpir(strangers, t, 0.0) == pytest.approx(0.1)
    assert fpir(strangers, threshold_at_fpir(strangers, 0.05, 0.0), 0.0) == 0.0  # floor(0.5) = 0
    assert threshold_at_fpir(strangers, 1.0, 0.0) == -1.0  # everyone may be named
    tied = searches([0.5, 0.5, 0.5, 0.2])
    assert fpir(tied, threshold_at_fpir(tied, 0.5, 0.0), 0.0) == 0.0  # two allowed, but three tie: none


def test_fnir_counts_unknown_and_wrong_person_as_misses() -> None:
    mated = searches([0.9, 0.8, 0.7, 0.95, -math.inf], correct=[True, True, True, False, False])
    # at 0.75: 0.9 and 0.8 named right; 0.7 unknown; 0.95 names the wrong person; no face
    assert fnir(mated, 0.75, 0.0) == pytest.approx(3 / 5)
    assert rank1(mated) == pytest.approx(3 / 5)
    strangers = searches([0.85, 0.6, 0.3, 0.2])
    value, t = fnir_at_fpir(mated, strangers, 0.25, 0.0)  # one stranger may be named: t just above 0.6
    assert 0.6 < t < 0.7 and value == pytest.approx(2 / 5)


def test_margin_over_the_runner_up_blocks_a_near_tie() -> None:
    s = searches([0.9, 0.9], runner=[0.88, 0.5], correct=[True, True])
    assert named(s, 0.8, 0.05).tolist() == [False, True]
    assert fnir(s, 0.8, 0.05) == pytest.approx(0.5) and fnir(s, 0.8, 0.0) == 0.0


def test_det_curve_runs_from_strictest_to_loosest_and_is_monotone() -> None:
    rng = np.random.default_rng(3)
    mated = searches(list(rng.normal(0.7, 0.1, 200)), correct=list(rng.random(200) < 0.97))
    strangers = searches(list(rng.normal(0.3, 0.1, 300)))
    points = det_curve(mated, strangers, 0.0)
    assert points[0].fpir == 0.0 and points[0].fnir == 1.0
    assert points[-1].fpir == 1.0 and points[-1].fnir == pytest.approx(1.0 - np.mean(mated.correct))
    f = [p.fpir for p in points]
    m = [p.fnir for p in points]
    assert f == sorted(f) and m == sorted(m, reverse=True)
    for p in points[1::37]:  # every point is the pair (FPIR, FNIR) at its threshold
        assert p.fpir == pytest.approx(fpir(strangers, p.threshold, 0.0))
        assert p.fnir == pytest.approx(fnir(mated, p.threshold, 0.0))


def _people(rng: np.random.Generator, count: int, photos: int, dim: int = 16, noise: float = 0.3) -> list[PersonFaces]:
    out = []
    for k in range(count):
        centre = rng.standard_normal(dim)
        rows = [(centre + noise * rng.standard_normal(dim)).astype(np.float32) for _ in range(photos)]
        rows = [r / np.linalg.norm(r) for r in rows]
        out.append(PersonFaces(f"p{k:02d}", tuple(rows[:3]), 0, tuple(rows[3:]), tuple(rows)))
    return out


def _build(threshold: float, margin: float):  # type: ignore[no-untyped-def]
    def build(pids, names, rows):  # type: ignore[no-untyped-def]
        return Matcher("m", pids, names, rows, threshold=threshold, margin=margin, dim=16)

    return build


def test_leave_people_out_makes_everyone_a_stranger_once() -> None:
    people = _people(np.random.default_rng(0), count=10, photos=6)
    out = run_protocol(people, None, model="m", dim=16, build_matcher=_build(0.5, 0.0), folds=4)
    assert out.folds == 4
    assert len(out.strangers) == 10 * 6  # every photo of every person, once
    # person i sits out fold i % 4; its 3 mated photos are searched in the other 3 folds
    assert len(out.mated) == 10 * 3 * 3 and out.mated_probes == 30
    assert rank1(out.mated) > 0.95  # well-separated people
    # the shipped decision (Matcher.match) agrees with the searches at its own threshold and margin
    assert out.shipped_hits == int(np.sum(named(out.mated, 0.5, 0.0) & out.mated.correct))
    assert out.shipped_strangers_named == int(np.sum(named(out.strangers, 0.5, 0.0)))
    one_each = run_protocol(people, None, model="m", dim=16, build_matcher=_build(0.5, 0.0), folds=100)
    assert one_each.folds == 10  # at most one fold per person


def test_a_strangers_set_is_searched_against_everyone_and_unenrolled_people_are_missed() -> None:
    rng = np.random.default_rng(1)
    people = _people(rng, count=5, photos=5)
    lost = PersonFaces("nobody", (), 3, people[0].mated, people[0].all_probes)  # every enrolment photo refused
    others = [p.all_probes[0] for p in _people(rng, count=7, photos=1)] + [None]  # and one photo without a face
    out = run_protocol([*people[1:], lost], others, model="m", dim=16, build_matcher=_build(0.5, 0.05))
    assert out.folds == 1 and out.enrolled_people == 4 and len(out.strangers) == 8
    assert not np.isfinite(out.strangers.top[-1])
    assert not out.mated.correct[-2:].any()  # the unenrolled person's searches are misses
    with pytest.raises(ProtocolError, match="too few"):
        run_protocol([lost], None, model="m", dim=16, build_matcher=_build(0.5, 0.0))


def test_det_svg_is_well_formed_and_marks_the_operating_point() -> None:
    rng = np.random.default_rng(4)
    mated = searches(list(rng.normal(0.7, 0.1, 50)), correct=[True] * 50)
    strangers = searches(list(rng.normal(0.3, 0.1, 80)))
    svg = det_svg(
        [DetSeries("model <a>", det_curve(mated, strangers, 0.0), (0.0125, 0.08))], "DET", strangers=80, mated=50
    )
    root = ET.fromstring(svg)
    tags = {el.tag.split("}")[-1] for el in root.iter()}
    assert {"svg", "polyline", "circle", "text"} <= tags
    assert "model &lt;a&gt;" in svg  # labels are escaped


def _folder(tmp_path: Path, people: list[str], photos: slice) -> Path:
    """Symlinks to the shared photos (the data stays in ../shared)."""
    root = tmp_path / "roster"
    for person in people:
        (root / person).mkdir(parents=True)
        for path in sorted((IDS / person).glob("*.jpg"))[photos]:
            (root / person / path.name).symlink_to(path)
    return root


@pytest.mark.slow
def test_a_small_real_run_through_the_pipeline(tmp_path: Path) -> None:
    people = sorted(p.name for p in need(IDS).iterdir())
    roster = _folder(tmp_path, people[:4], slice(0, 6))
    strangers = tmp_path / "strangers"
    (strangers / "other").mkdir(parents=True)
    for path in sorted((IDS / people[4]).glob("*.jpg"))[:5]:
        (strangers / "other" / path.name).symlink_to(path)
    cache = tmp_path / "cache"
    result = evaluate_identification(roster, 3, strangers, "facenet-512", cache_dir=cache)
    data = result.as_json()
    assert {"rank1", "fnir", "fpir", "fnir_at_fpir_0.01", "fnir_at_fpir_0.001", "mated", "strangers"} <= set(data)
    assert {"threshold", "margin", "model", "people", "enrolled_samples", "protocol"} <= set(data)
    assert (result.mated, result.strangers, result.people) == (12, 5, 4)
    assert result.enrolled_samples + result.enrol_rejected == 12 and result.enrol_rejected <= 1
    assert result.model == "facenet-512" and result.rank1 >= 11 / 12
    from vision.embedders.facenet import FaceNetModel

    assert result.threshold == FaceNetModel.default_threshold and result.margin == FaceNetModel.default_margin
    assert result.misidentified / result.mated <= result.fnir <= 1.0
    assert len(list(cache.glob("*.npz"))) == 29  # one per distinct photo: embedded once
    # again from the cache, leave-people-out this time (4 people: one per fold)
    again = evaluate_identification(roster, 3, None, "facenet-512", cache_dir=cache)
    assert again.strangers == 24 and again.mated == 4 * 3 * 3 and "leave-people-out" in again.protocol
    ET.fromstring(result_svg(result))
    with pytest.raises(ProtocolError, match="on the roster"):
        evaluate_identification(roster, 3, roster, "facenet-512", cache_dir=cache)
