"""Identification on ../shared/faces/identities (62 people × 10 LFW photos), FaceNet and fusion-640.

Every photo goes through the one pipeline (detect → align → embed), computed once per session and
model by the fixtures below and shared by the tests here; nothing is cached on disk. Persons are
sorted by name; each person's first 5 photos are enrolled and the other 5 identified. Matching is
vision.matcher.Matcher (best sample per person, threshold + margin over the runner-up). The ten
people left out as strangers (``people[5::6]``) are never used by vision.calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tests.conftest import FACES, need
from vision.embedders import load_embedder
from vision.matcher import Matcher, resolve_threshold
from vision.pipeline import FacePipeline, read_image

IDS = FACES / "identities"


@dataclass(frozen=True)
class IdentityEmbeddings:
    names: tuple[str, ...]  # the person of each row
    embeddings: np.ndarray  # (620, 512) unit rows
    detected: int
    model: str

    def rows(self, people: list[str], photos: slice) -> tuple[list[str], np.ndarray]:
        picked = [i for p in people for i in [j for j, n in enumerate(self.names) if n == p][photos]]
        return [self.names[i] for i in picked], self.embeddings[picked]


def embed_identities(model: str) -> IdentityEmbeddings:
    paths = sorted(need(IDS).glob("*/*.jpg"))
    assert len(paths) == 620
    pipeline = FacePipeline(embedder=load_embedder(model))
    names, rows, detected = [], [], 0
    for start in range(0, len(paths), 32):
        chunk = paths[start : start + 32]
        images = [read_image(p) for p in chunk]
        assert all(i is not None for i in images)
        for path, obs in zip(chunk, pipeline.central_faces(images), strict=True):  # type: ignore[arg-type]
            names.append(path.parent.name)
            rows.append(obs.embedding)
            detected += obs.detected
    return IdentityEmbeddings(tuple(names), np.asarray(rows), detected, pipeline.model)


@pytest.fixture(scope="session")
def identities() -> IdentityEmbeddings:
    return embed_identities("facenet-512")


@pytest.fixture(scope="session")
def fused_identities() -> IdentityEmbeddings:
    pytest.importorskip("dlib")
    return embed_identities("fusion-640")


def matcher_for(data: IdentityEmbeddings, people: list[str], threshold: float, margin: float) -> Matcher:
    names, rows = data.rows(people, slice(0, 5))
    ids = {p: k for k, p in enumerate(people)}
    return Matcher(data.model, [ids[n] for n in names], names, rows, threshold=threshold, margin=margin)


@pytest.mark.slow
def test_known_people_top1(identities: IdentityEmbeddings) -> None:
    people = sorted(set(identities.names))
    assert len(people) == 62 and identities.detected >= 615
    closed_set = matcher_for(identities, people, threshold=-1.0, margin=0.0)  # rank-1: always the best person
    names, probes = identities.rows(people, slice(5, 10))
    answers = closed_set.match(probes, model=identities.model)
    top1 = np.mean([a.person == n for a, n in zip(answers, names, strict=True)])
    assert top1 >= 0.97, f"top-1 {top1:.4f}"  # measured 0.9968 (309/310)


@pytest.mark.slow
def test_unknown_people_are_rarely_accepted(identities: IdentityEmbeddings) -> None:
    """Ten people (``people[5::6]``) left out of the gallery; their 100 photos are strangers.

    The issue's target is at most 2% accepted. At FaceNet's calibrated 1:N threshold (0.644, fixed
    on the calibration pool, which leaves these people out, see vision.calibration) with its 0.05
    margin this split measures 3% (3/100; 5% at the earlier 0.639): the target is missed, and this
    guards the measured level instead of tuning the threshold on the people it is tested with.
    """
    people = sorted(set(identities.names))
    left_out = people[5::6][:10]
    enrolled = [p for p in people if p not in left_out]
    embedder = load_embedder("facenet-512")
    open_set = matcher_for(identities, enrolled, threshold=resolve_threshold(embedder), margin=0.05)
    _, strangers = identities.rows(left_out, slice(0, 10))
    accepted = np.mean([a.person is not None for a in open_set.match(strangers, model=identities.model)])
    assert accepted <= 0.06, f"{accepted:.3f} of unknown faces accepted as someone (target 0.02)"
    # the price of that threshold, on the enrolled people's other photos
    names, probes = identities.rows(enrolled, slice(5, 10))
    answers = open_set.match(probes, model=identities.model)
    correct = np.mean([a.person == n for a, n in zip(answers, names, strict=True)])
    wrong = np.mean([a.person is not None and a.person != n for a, n in zip(answers, names, strict=True)])
    assert wrong <= 0.01, f"{wrong:.3f} of known faces named as someone else"
    assert correct >= 0.80, f"only {correct:.3f} of known faces recognised at the open-set threshold"


def open_set_figures(data: IdentityEmbeddings, threshold: float, margin: float) -> tuple[float, float, float]:
    """(strangers accepted, known faces named right, known faces named wrong) on the split above."""
    people = sorted(set(data.names))
    left_out = people[5::6][:10]
    enrolled = [p for p in people if p not in left_out]
    open_set = matcher_for(data, enrolled, threshold=threshold, margin=margin)
    _, strangers = data.rows(left_out, slice(0, 10))
    accepted = float(np.mean([a.person is not None for a in open_set.match(strangers, model=data.model)]))
    names, probes = data.rows(enrolled, slice(5, 10))
    answers = open_set.match(probes, model=data.model)
    correct = float(np.mean([a.person == n for a, n in zip(answers, names, strict=True)]))
    wrong = float(np.mean([a.person is not None and a.person != n for a, n in zip(answers, names, strict=True)]))
    return accepted, correct, wrong


@pytest.mark.slow
def test_fused_model_top1_and_strangers(fused_identities: IdentityEmbeddings) -> None:
    """fusion-640 at its calibrated operating point (mean template, 0.879, margin 0.015: all fixed on
    the calibration pool, which leaves these people out).

    The issue's target is at most 2% of strangers accepted. Measured 3% (3/100): two photos of
    Junichiro Koizumi named Roh Moo-hyun and one of Vicente Fox named Saddam Hussein, look-alike
    pairs that FaceNet alone confuses too. The target is missed by one photo; this guards the
    measured level. Known faces: 97.7% named right (FaceNet at its threshold: 95.8%), none wrong.
    """
    data = fused_identities
    people = sorted(set(data.names))
    assert data.detected >= 615
    closed_set = matcher_for(data, people, threshold=-1.0, margin=0.0)
    names, probes = data.rows(people, slice(5, 10))
    top1 = np.mean([a.person == n for a, n in zip(closed_set.match(probes, model=data.model), names, strict=True)])
    assert top1 >= 0.99, f"top-1 {top1:.4f}"
    embedder = load_embedder("fusion-640")
    accepted, correct, wrong = open_set_figures(data, resolve_threshold(embedder), embedder.default_margin)
    assert accepted <= 0.03, f"{accepted:.3f} of unknown faces accepted (target 0.02)"
    assert wrong <= 0.01, f"{wrong:.3f} of known faces named as someone else"
    assert correct >= 0.97, f"only {correct:.3f} of known faces recognised"
