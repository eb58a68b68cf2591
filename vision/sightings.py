"""Turn ended tracks into the gallery's sighting records (the one place vision meets storage's write side)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from storage.records import NewSighting
from vision.tracker import TrackRecord

log = logging.getLogger(__name__)

CROP_JPEG_QUALITY = 90


def encode_crop(crop: np.ndarray | None) -> bytes:
    """The best crop as JPEG bytes (empty when the track has none or it does not encode)."""
    if crop is None or crop.size == 0:
        return b""
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, CROP_JPEG_QUALITY])
    return buf.tobytes() if ok else b""


def to_new_sighting(record: TrackRecord) -> NewSighting:
    """One ended track as a ``NewSighting`` for ``Gallery.record_sightings``."""
    embedding = None if record.embedding is None else np.asarray(record.embedding, dtype=np.float32).reshape(-1)
    return NewSighting(
        camera=record.camera,
        start=float(record.start),
        end=float(record.end),
        person_id=record.person_id,
        score=float(record.score),
        box=(float(record.box[0]), float(record.box[1]), float(record.box[2]), float(record.box[3])),
        crop_jpeg=encode_crop(record.crop),
        embedding=embedding,
        model=record.model,
        track=record.track_id,
    )


def sighting_sink(
    record_sightings: Callable[[Sequence[NewSighting]], object],
) -> Callable[[Sequence[TrackRecord]], None]:
    """Wrap ``gallery.record_sightings`` as the recognition service's sighting sink."""

    def sink(records: Sequence[TrackRecord]) -> None:
        if records:
            record_sightings([to_new_sighting(r) for r in records])

    return sink
