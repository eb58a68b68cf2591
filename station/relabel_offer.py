"""A history that corrects itself, on the station's side: when a person is enrolled, or an unknown cluster is
named, the stored sighting embeddings (``Gallery.search_by_face``, storage/faceindex.py) are searched for past
unknown sightings that now match that person at the current strictness, best first.

"Now match" is the live decision itself: the candidates the face index finds near the person's samples are
matched by the same :class:`vision.matcher.Matcher` the recogniser runs (threshold, margin over the
runner-up, negative samples), built from the gallery as it is now; only those it names as the person are
offered. The gallery relabels the ones the operator accepts (``Gallery.relabels``: audited, reversible).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from station.runtime import RecognitionSettings, load_matcher
from storage.gallery import Gallery, PersonRef
from storage.records import Sighting

NEIGHBOURS = 500  # stored sightings looked at per enrolled sample of the person
MAX_SAMPLES = 20  # the person's samples searched with (their newest)


@dataclass(frozen=True)
class RelabelCandidate:
    """A past unknown sighting the person's face now matches, with the score the matcher gives it."""

    sighting: Sighting
    score: float


def find_candidates(
    gallery: Gallery, person: PersonRef, model: str, settings: RecognitionSettings, *, limit: int = 200
) -> list[RelabelCandidate]:
    """The person's past unknown sightings of ``model``, best first (at most ``limit``)."""
    pid = gallery.person(person).id
    samples = gallery.sample_matrix(model)
    mine = samples.embeddings[samples.person_ids == pid][-MAX_SAMPLES:]
    if len(mine) == 0:
        return []
    near: dict[int, Sighting] = {}
    for embedding in mine:
        for sighting, similarity in gallery.search_by_face(embedding, model, NEIGHBOURS, audit=False):
            if similarity < settings.threshold:
                break  # best first: the rest are further away
            if sighting.person_id is None and sighting.model == model:
                near[sighting.id] = sighting
    return _decided(gallery, pid, model, settings, list(near.values()))[:limit]


def _decided(
    gallery: Gallery, pid: int, model: str, settings: RecognitionSettings, candidates: Sequence[Sighting]
) -> list[RelabelCandidate]:
    """Those of ``candidates`` the live matcher names as person ``pid`` now, best first."""
    stored = [(s, gallery.sighting_embedding(s.id)) for s in candidates]
    kept = [(s, e[1]) for s, e in stored if e is not None and e[0] == model]
    if not kept:
        return []
    matcher = load_matcher(gallery, model, settings)
    matches = matcher.match(np.stack([e for _, e in kept]), model=model)
    out = [
        RelabelCandidate(s, m.score)
        for (s, _), m in zip(kept, matches, strict=True)
        if m.person_id == pid and m.score is not None
    ]
    return sorted(out, key=lambda c: -c.score)
