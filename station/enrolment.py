"""Storing a face as a gallery sample: one path for the CLI, the enrol dialog and the gallery page."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import cv2

from storage.gallery import Gallery
from vision.pipeline import FaceObservation
from vision.types import Detection, ImageBGR, VisionError

log = logging.getLogger(__name__)

SAMPLE_JPEG_QUALITY = 92


class Observer(Protocol):
    """What enrolment needs of the face pipeline (``vision.pipeline.FacePipeline``, or a lazy one)."""

    @property
    def model(self) -> str: ...

    def observe(self, image: ImageBGR) -> list[FaceObservation]: ...


class Companion(Protocol):
    """Another model's pipeline, for the sample an enrolment stores beside the live model's (station/models.py)."""

    @property
    def model(self) -> str: ...

    def observe_detections(self, image: ImageBGR, detections: list[Detection]) -> list[FaceObservation]: ...


def crop_jpeg(observation: FaceObservation, quality: int = SAMPLE_JPEG_QUALITY) -> bytes:
    """The aligned crop as JPEG bytes, or ValueError when it will not encode."""
    ok, buf = cv2.imencode(".jpg", observation.crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("the face crop would not encode as JPEG")
    return bytes(buf)


def enrol_observation(
    gallery: Gallery,
    person: str,
    observation: FaceObservation,
    source: str,
    *,
    below_bar: str | None = None,
    image: ImageBGR | None = None,
    companions: Sequence[Companion] = (),
) -> int:
    """Store ``observation`` as a sample of ``person`` (created if new); returns the sample id.

    ``below_bar`` is the reason the face failed the enrolment quality checks when the operator enrolled
    it anyway ("face too small"); the audit log records it with the measured quality. With the
    ``image`` the face was found in, each of ``companions`` (the photo model) aligns and embeds the
    same detection and stores its own sample too; one that cannot (its model failed to load) is logged
    and the live sample stays.
    """
    sample = _enrol(gallery, person, observation, source, below_bar)
    if image is not None:
        for companion in companions:
            if companion.model == observation.model:
                continue
            try:
                (other,) = companion.observe_detections(image, [observation.detection])
            except (VisionError, ValueError) as exc:
                log.warning("no %s sample for %s from %s: %s", companion.model, person, source, exc)
                continue
            _enrol(gallery, person, other, source, below_bar, image_id=sample)
    return sample


def _enrol(
    gallery: Gallery,
    person: str,
    observation: FaceObservation,
    source: str,
    below_bar: str | None,
    *,
    image_id: int | None = None,
) -> int:
    return gallery.enrol_sample(
        person,
        model=observation.model,
        embedding=observation.embedding,
        crop_jpeg=crop_jpeg(observation),
        source=source,
        quality=observation.quality.score,
        audit=None if below_bar is None else weak_details(observation, below_bar),
        image_id=image_id,  # the companion's sample of the same photo: one entry on the Gallery page
    )


def weak_details(observation: FaceObservation, reason: str) -> dict[str, object]:
    """What the audit log says of a sample enrolled below the quality bar: that it was, why, and the measures."""
    q = observation.quality
    return {
        "below_quality_bar": True,
        "reason": reason,
        "face_px": round(q.face_size, 1),
        "blur": round(q.blur, 1),
        "yaw": round(q.yaw, 2),
        "roll": round(q.roll, 1),
    }
