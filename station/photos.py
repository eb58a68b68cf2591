"""Who is in a photo: one path for ``main.py identify`` and the API's ``POST /api/identify``, so both
answer a photo alike (each face's box, person or null, and score or null).

Photos are identified with the photo model (fusion-640 where dlib is installed) where the gallery
has samples of it, else with the live model; the decision is that model's calibrated threshold and
margin (the gallery's threshold is the live model's), or the one given.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from station.runtime import RecognitionSettings, load_matcher
from storage.gallery import Gallery
from vision.matcher import Match, Matcher
from vision.pipeline import FaceObservation
from vision.types import ImageBGR

log = logging.getLogger(__name__)


class PhotoPipeline(Protocol):
    @property
    def model(self) -> str: ...

    def observe(self, image: ImageBGR) -> list[FaceObservation]: ...


def choose_model(gallery: Gallery, asked: str | None) -> str:
    """The model to identify with: the one asked for, else the photo model where the gallery has samples of
    it, else the live model (a gallery enrolled before fusion-640, or named from live clusters only)."""
    from station.models import LIVE_MODEL, photo_model

    if asked:
        return asked
    photo = photo_model()
    if photo == LIVE_MODEL:
        return photo
    photo_people = set(gallery.sample_matrix(photo).names)
    live_people = set(gallery.sample_matrix(LIVE_MODEL).names)
    if not photo_people and live_people:
        log.warning("no %s samples in this gallery: identifying with %s (enrol again to store both)", photo, LIVE_MODEL)
        return LIVE_MODEL
    missing = sorted(live_people - photo_people)
    if missing:
        log.warning(
            "%d enrolled people have no %s sample and cannot be found in photos (%s%s): enrol a photo of them",
            len(missing),
            photo,
            ", ".join(missing[:3]),
            "…" if len(missing) > 3 else "",
        )
    return photo


def photo_settings(gallery: Gallery, model: str, threshold: float | None) -> RecognitionSettings:
    """The decision for photos: the gallery's recognition threshold is the live model's, so another
    model uses its own calibrated threshold and margin; ``threshold`` overrides either."""
    from station.models import LIVE_MODEL

    if model == LIVE_MODEL:
        return RecognitionSettings.from_gallery(gallery, model, threshold=threshold)
    base = RecognitionSettings.for_model(model)
    return base if threshold is None else RecognitionSettings(threshold=threshold, margin=base.margin)


def photo_matcher(gallery: Gallery, model: str, threshold: float | None = None) -> Matcher:
    """A matcher over the gallery's samples of ``model``, deciding as photos are decided."""
    return load_matcher(gallery, model, photo_settings(gallery, model, threshold))


def face_json(face: FaceObservation, match: Match) -> dict[str, Any]:
    """One face as ``identify`` prints it: the box, the person (or null), the score (null: compared with no one)."""
    return {
        "box": [round(float(v), 1) for v in face.detection.box],
        "person": match.person,
        "score": None if match.score is None else round(match.score, 4),
    }


def identify_faces(pipeline: PhotoPipeline, matcher: Matcher, image: ImageBGR) -> list[dict[str, Any]]:
    faces = pipeline.observe(image)
    matches: Sequence[Match] = matcher.match([f.embedding for f in faces], model=pipeline.model) if faces else []
    return [face_json(f, m) for f, m in zip(faces, matches, strict=True)]


class PhotoIdentifier:
    """Identifies photos for a running station (the API): its pipelines, a matcher rebuilt only when the
    gallery changed, one photo at a time (a photo's models are CPU-bound: two at once only take longer)."""

    def __init__(self, gallery: Gallery, live: PhotoPipeline, photo: PhotoPipeline | None) -> None:
        self.gallery = gallery
        self.live = live
        self.photo = photo
        self._lock = threading.Lock()
        self._matcher: tuple[int, str, Matcher] | None = None

    def pipeline(self) -> PhotoPipeline:
        model = choose_model(self.gallery, None) if self.photo is not None else self.live.model
        return self.photo if self.photo is not None and model == self.photo.model else self.live

    def _current_matcher(self, model: str) -> Matcher:
        revision = self.gallery.revision()
        if self._matcher is None or self._matcher[:2] != (revision, model):
            self._matcher = (revision, model, photo_matcher(self.gallery, model))
        return self._matcher[2]

    def identify(self, image: ImageBGR) -> list[dict[str, Any]]:
        with self._lock:
            pipeline = self.pipeline()
            return identify_faces(pipeline, self._current_matcher(pipeline.model), image)
