"""What the enrol dialog tells the operator about a face before it is stored (no Qt: runs in a job).

A face is refused when its quality is below the enrolment limits (with the reason). It is
flagged, not refused, when it nearly duplicates a stored sample, or when it already matches
someone else above the recognition threshold: the operator decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from station.enrolment import Companion, enrol_observation
from storage.gallery import Gallery
from vision.pipeline import FaceObservation
from vision.quality import QualityLimits
from vision.types import ImageBGR

DUPLICATE_SIMILARITY = 0.95  # cosine; two photos of one face from one session score ~0.8-0.9


@dataclass(frozen=True)
class FaceAssessment:
    """One candidate sample and what the checks found."""

    observation: FaceObservation
    reject_reason: str | None
    duplicate_of: str | None  # the person whose stored sample this nearly repeats
    duplicate_similarity: float
    best_match: str | None  # the enrolled person this face already matches, if any
    best_score: float
    sharpness: float  # 0..1 meters for the dialog
    size: float
    frontal: float

    def warnings(self, assigned: str) -> list[str]:
        out = []
        if self.reject_reason:
            out.append(self.reject_reason)
        if self.duplicate_of is not None:
            out.append(f"near-duplicate of a sample of {self.duplicate_of} ({self.duplicate_similarity:.2f})")
        if self.best_match is not None and self.best_match != assigned.strip():
            out.append(f"already matches {self.best_match} ({self.best_score:.2f})")
        return out


def assess(
    observation: FaceObservation, gallery: Gallery, threshold: float, limits: QualityLimits | None = None
) -> FaceAssessment:
    lim = limits or QualityLimits()
    q = observation.quality
    samples = gallery.sample_matrix(observation.model)
    duplicate_of, duplicate_sim, best_match, best_score = None, 0.0, None, 0.0
    if len(samples.person_ids):
        sims = samples.embeddings @ observation.embedding.astype(np.float32)
        top = int(np.argmax(sims))
        if sims[top] >= DUPLICATE_SIMILARITY:
            duplicate_of, duplicate_sim = samples.names[top], float(sims[top])
        if sims[top] >= threshold:
            best_match, best_score = samples.names[top], float(sims[top])
    return FaceAssessment(
        observation=observation,
        reject_reason=q.reject_reason(lim),
        duplicate_of=duplicate_of,
        duplicate_similarity=duplicate_sim,
        best_match=best_match,
        best_score=best_score,
        sharpness=float(min(1.0, q.blur / (4 * lim.min_blur))),
        size=float(min(1.0, q.face_size / (3 * lim.min_face))),
        frontal=float(max(0.0, 1.0 - max(abs(q.yaw) / lim.max_yaw, abs(q.roll) / lim.max_roll))),
    )


def enrol(
    gallery: Gallery,
    person: str,
    assessment: FaceAssessment,
    source: str,
    *,
    anyway: bool = False,
    image: ImageBGR | None = None,
    companions: Sequence[Companion] = (),
) -> int:
    """Store one assessed face as a sample of ``person`` (and, given the ``image`` it was found in, a
    sample of each companion model). A face below the quality limits is refused, unless ``anyway``: then
    it is stored as a weak sample and the audit log says why it was below the bar."""
    if assessment.reject_reason and not anyway:
        raise ValueError(f"not enrolled: {assessment.reject_reason}")
    return enrol_observation(
        gallery,
        person,
        assessment.observation,
        source,
        below_bar=assessment.reject_reason,
        image=image,
        companions=companions,
    )
