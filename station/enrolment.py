"""Storing a face as a gallery sample: one path for the CLI, the enrol dialog and the gallery page."""

from __future__ import annotations

import cv2

from storage.gallery import Gallery
from vision.pipeline import FaceObservation

SAMPLE_JPEG_QUALITY = 92


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
