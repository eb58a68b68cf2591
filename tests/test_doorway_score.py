"""bench/doorway_score.py's arithmetic on synthetic sighting lists (no video, no models: milliseconds), and
the doorway sets' make-up from the listing of ../shared/faces (no photo is read)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bench.doorway_score import (
    Cause,
    Kind,
    PassScores,
    Sighting,
    Span,
    attribute,
    calibrate,
    det_curve,
    epoch,
    parse_sightings,
    person_comparisons,
    score_run,
)
from tests.conftest import FACES, need

THRESHOLD, MARGIN = 0.644, 0.05

W, S = Kind.WATCHLIST, Kind.STRANGER
# one person after another, 8 frames apart (frames inclusive)
SPANS = [
    Span(0, W, "Ann", 10, 27),
    Span(1, S, "Xavier", 36, 53),
    Span(2, W, "Bob", 62, 79),
    Span(3, S, "Yuri", 88, 105),
    Span(4, W, "Cid", 114, 131),
    Span(5, S, "Zoe", 140, 157),
    Span(6, W, "Dee", 166, 183),
    Span(7, W, "Eve", 192, 209),
    Span(8, W, "Fay", 218, 235),
    Span(9, S, "Gus", 244, 261),
]


def sighting(track: str, person: str | None, score: float, first: int, last: int, **kw: object) -> Sighting:
    return Sighting(track, person, score, first, last, **kw)  # type: ignore[arg-type]


SIGHTINGS = [
    # Ann's named track runs on through the gap onto Xavier: an identity switch, Xavier named
    sighting("t1", "Ann", 0.81, 10, 53, candidate="Ann", runner_up=0.30, looks=3),
    # Bob just under the threshold: a miss, the right candidate
    sighting("t2", None, 0.631, 62, 79, candidate="Bob", runner_up=0.31, looks=2),
    # Yuri named as Cid by a track of his own: named outright
    sighting("t3", "Cid", 0.70, 88, 105, candidate="Cid", runner_up=0.40, looks=2),
    # Cid named right, and a second track of his pass names Ann: right, and named wrong
    sighting("t4", "Cid", 0.90, 114, 131, candidate="Cid", runner_up=0.20, looks=4),
    sighting("t5", "Ann", 0.66, 120, 125, candidate="Ann", runner_up=0.50, looks=1),
    # Zoe: no track at all (nobody named: right)
    # Dee's track's best candidate is someone else, unnamed: not recognised
    sighting("t6", None, 0.20, 166, 183, candidate="Ann", runner_up=0.10, looks=1),
    # Eve: no track overlaps her pass
    # Fay's face only joined an unnamed track that also covers Gus: merged
    sighting("t7", None, 0.35, 218, 261, candidate="Cid", runner_up=0.30, looks=2),
]


def test_attribution_overlaps_by_shared_frames() -> None:
    att = attribute(SPANS, SIGHTINGS)
    assert att.of_sighting[0] == (0, 1)  # t1 spans Ann's and Xavier's passes
    assert att.of_pass[4] == (3, 4)  # Cid's pass: t4 and t5
    assert att.of_pass[5] == () and att.of_pass[7] == ()
    assert att.spanning(0) and att.spanning(6) and not att.spanning(1)
    edge = attribute(SPANS, [sighting("e", None, 0.1, 27, 36)])  # touches Ann's last frame and Xavier's first
    assert edge.of_sighting[0] == (0, 1)
    gap = attribute(SPANS, [sighting("g", None, 0.1, 28, 35)])  # only the grey gap between them
    assert gap.of_sighting[0] == ()


def test_fnir_fpir_and_causes_at_the_operating_point() -> None:
    report = score_run(SPANS, SIGHTINGS, THRESHOLD, MARGIN)
    assert (report.watchlist, report.strangers) == (6, 4)
    # missed: Bob (under), Dee (not recognised), Eve (no track), Fay (merged); Ann and Cid named right
    assert report.missed == 4 and report.fnir == pytest.approx(4 / 6)
    # named: Xavier (switch), Yuri (outright); Zoe and Gus not (t7 is unnamed)
    assert report.alarms == 2 and report.fpir == pytest.approx(2 / 4)
    assert report.causes(Kind.STRANGER) == {"switch": 1, "named outright": 1}
    assert report.causes(Kind.WATCHLIST) == {"under threshold": 1, "not recognised": 1, "no track": 1, "merged": 1}
    by_pass = {o.span.index: o for o in report.outcomes}
    assert by_pass[2].cause is Cause.UNDER and by_pass[2].score == pytest.approx(0.631)
    assert by_pass[3].cause is Cause.OUTRIGHT and by_pass[3].names == ("Cid",)
    assert by_pass[4].right and by_pass[4].named_wrong and by_pass[4].names == ("Ann", "Cid")
    assert report.watchlist_named_wrong == 1
    assert report.switches == 1  # t1: a named track over two passes
    assert report.spanning == 2  # t1 and t7
    assert report.sightings == 7 and report.named_sightings == 4
    assert sorted(report.looks) == [1, 1, 2, 2, 2, 3, 4]
    assert report.sweep_disagrees == 0  # the sweep at the threshold gives the engine's outcomes


def test_a_wrong_named_track_spilling_into_a_watchlist_pass_is_a_switch_miss() -> None:
    spans = [Span(0, W, "Ann", 10, 27), Span(1, W, "Bob", 36, 53)]
    report = score_run(spans, [sighting("t", "Ann", 0.8, 10, 53, candidate="Ann", runner_up=0.2)], THRESHOLD, MARGIN)
    assert report.missed == 1 and report.causes(Kind.WATCHLIST) == {"switch": 1}
    assert report.switches == 1


def test_the_det_sweep_turns_each_pass_at_its_score() -> None:
    report = score_run(SPANS, SIGHTINGS, THRESHOLD, MARGIN)
    scores = report.scores
    # Xavier turns at t1's 0.81, Yuri at 0.70, Gus at t7's 0.35 (margin 0.05 holds), Zoe never
    assert list(scores.alarm) == [0.81, 0.70, -math.inf, 0.35]
    # Ann at 0.81 (t1), Bob at 0.631, Cid at 0.90, Dee/Eve/Fay never (their tracks' candidates are others)
    assert list(scores.hit) == [0.81, 0.631, 0.90, -math.inf, -math.inf, -math.inf]
    assert scores.fpir(THRESHOLD) == report.fpir and scores.fnir(THRESHOLD) == report.fnir
    assert scores.fnir(0.63) == pytest.approx(3 / 6)  # Bob named below 0.631
    points = det_curve(scores)
    assert points[0].threshold == math.inf and (points[0].fpir, points[0].fnir) == (0.0, 1.0)
    assert all(a.fpir <= b.fpir and a.fnir >= b.fnir for a, b in itertools.pairwise(points))
    assert (points[-1].fpir, points[-1].fnir) == (0.75, 0.5)  # the lowest score: everything that can turn has


def test_the_margin_keeps_a_close_runner_up_from_naming() -> None:
    close = sighting("c", None, 0.70, 36, 53, candidate="Ann", runner_up=0.68)  # 0.02 over the runner-up
    assert close.name_at(0.6, MARGIN) is None and close.name_at(0.6, 0.0) == "Ann"
    blind = sighting("b", None, 0.70, 36, 53)  # no candidate known: it names "someone" at a low threshold
    spans = [Span(1, S, "Xavier", 36, 53)]
    assert score_run(spans, [blind], 0.6, MARGIN).scores.fpir(0.6) == 1.0


def test_sighting_lines_become_frame_ranges() -> None:
    start = epoch("2026-01-01T00:00:00Z")
    lines: list[dict[str, object]] = [
        {"event": "scan", "frames": 300},
        {
            "event": "sighting",
            "camera": "door",
            "person": "Ann",
            "score": 0.81,
            "start": "2026-01-01T00:00:00.667Z",
            "end": "2026-01-01T00:00:01.800Z",
            "track": "door-4",
            "frames": 18,
            "looks": 3,
        },
        {"event": "sighting", "person": None, "score": None, "start": "2026-01-01T00:00:02.400+00:00",
         "end": "2026-01-01T00:00:03.533Z", "track": "door-5", "frames": 18},
    ]  # fmt: skip
    first, second = parse_sightings(lines, start, 15.0)
    assert (first.track, first.person, first.score, first.first, first.last) == ("door-4", "Ann", 0.81, 10, 27)
    assert (first.frames, first.looks) == (18, 3)
    assert (second.person, second.score, second.first, second.last, second.looks) == (None, None, 36, 53, None)


def test_calibration_finds_the_strictest_threshold_for_the_target() -> None:
    rng = np.random.default_rng(5)
    alarm = np.concatenate([[0.90, 0.80, 0.75, 0.70], rng.uniform(0.1, 0.6, 96)])  # 100 stranger passes
    scores = PassScores(alarm, np.asarray([0.95, 0.85, 0.78, 0.72, 0.65, -math.inf]))
    cal = calibrate(scores, enrolled=6, fpir=0.01, resamples=200)
    # 1% of 100: one stranger pass may be named: just above the second highest (0.80)
    assert cal.threshold == pytest.approx(0.801)
    assert scores.fpir(cal.threshold) <= 0.01 and scores.fpir(cal.threshold - 0.002) > 0.01
    assert cal.upper >= cal.threshold and cal.resamples == 200
    assert cal.fnir_at_threshold == pytest.approx(4 / 6)  # 0.95 and 0.85 reach 0.801
    assert cal == calibrate(scores, enrolled=6, fpir=0.01, resamples=200)  # seeded
    five = calibrate(scores, enrolled=6, fpir=0.05, resamples=50).threshold  # 5 of 100 may be named
    sixth = float(np.sort(alarm)[::-1][5])
    assert sixth < five <= sixth + 0.001 and scores.fpir(five) == 0.05


def test_person_comparisons_pair_each_pass_with_each_enrolled_person() -> None:
    strangers = np.asarray([[0.1, 0.2, 0.3], [0.4, -np.inf, 0.6]])  # 2 stranger passes × 3 people
    mated = np.asarray([[0.9, 0.2, 0.1], [0.3, 0.8, 0.5]])  # passes of people 0 and 1
    c = person_comparisons(strangers, mated, [0, 1])
    assert c.people == 5 and sorted(c.genuine) == [0.8, 0.9]
    assert len(c.impostor) == 5 + 4  # the -inf (suppressed) pair is left out
    pairs = set(zip(c.impostor_template.tolist(), c.impostor_probe.tolist(), c.impostor.tolist(), strict=True))
    assert (2, 4, 0.6) in pairs and (0, 1, 0.3) in pairs and (1, 0, 0.2) in pairs
    assert all(t != p for t, p, _ in pairs)  # nobody is their own impostor


def test_the_two_sets_share_no_person_and_are_built_the_same_way() -> None:
    need(FACES / "identities")
    need(FACES / "lfw_pairs_fold1" / "images")
    from bench.doorway_data import GAP_FRAMES, PassKind, SetName, build_set

    design, heldout = build_set(SetName.DESIGN), build_set(SetName.HELDOUT)
    assert build_set(SetName.DESIGN) == design  # fixed seeds
    people = [{p.person for p in s.passes} for s in (design, heldout)]
    assert not people[0] & people[1]
    for s in (design, heldout):
        assert s.watchlist_passes == len(s.enrolled) == 31
        assert {p.person for p in s.passes if p.kind is PassKind.WATCHLIST} == set(s.enrolled)
        for p in s.passes:
            if p.kind is PassKind.WATCHLIST:
                assert len(p.photos) == 3 and not set(p.photos) & set(s.enrolled[p.person])
                assert p.last - p.first + 1 == 18
        gaps = [b.first - a.last - 1 for a, b in itertools.pairwise(s.passes)]
        assert set(gaps) == {GAP_FRAMES}
    assert design.stranger_passes + heldout.stranger_passes == 427
