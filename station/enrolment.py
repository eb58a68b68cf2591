"""Storing a face as a gallery sample: one path for the CLI, the enrol dialog and the gallery page."""

from __future__ import annotations

from typing import Protocol

import cv2

from storage.gallery import Gallery
from vision.pipeline import FaceObservation
from vision.types import ImageBGR

SAMPLE_JPEG_QUALITY = 92


class Observer(Protocol):
    """What enrolment needs of the face pipeline (``vision.pipeline.FacePipeline``, or a lazy one)."""

    @property
    def model(self) -> str: ...

    def observe(self, image: ImageBGR) -> list[FaceObservation]: ...


def crop_jpeg(observation: FaceObservation, quality: int = SAMPLE_JPEG_QUALITY) -> bytes:
    """The aligned crop as JPEG bytes, or ValueError when it will not encode."""
    ok, buf = cv2.imencode(".jpg", observation.crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("the face crop would not encode as JPEG")
    return bytes(buf)


def enrol_observation(gallery: Gallery, person: str, observation: FaceObservation, source: str) -> int:
    """Store ``observation`` as a sample of ``person`` (created if new); returns the sample id."""
    return gallery.enrol_sample(
        person,
        model=observation.model,
        embedding=observation.embedding,
        crop_jpeg=crop_jpeg(observation),
        source=source,
        quality=observation.quality.score,
    )
