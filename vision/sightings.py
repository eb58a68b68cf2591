"""Turn ended tracks into the gallery's sighting records (the one place vision meets storage's write side)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from storage.records import Box, NewSighting, SnapshotFace
from vision.tracker import TrackRecord

log = logging.getLogger(__name__)

CROP_JPEG_QUALITY = 90
SNAPSHOT_JPEG_QUALITY = 85
SNAPSHOT_MAX_WIDTH = 960


def encode_crop(crop: np.ndarray | None) -> bytes:
    """The best crop as JPEG bytes (empty when the track has none or it does not encode)."""
    if crop is None or crop.size == 0:
        return b""
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, CROP_JPEG_QUALITY])
    return buf.tobytes() if ok else b""


def snapshot_of(record: TrackRecord, max_width: int = SNAPSHOT_MAX_WIDTH) -> tuple[bytes, Box | None]:
    """The evidence snapshot of an ended track: the whole frame of its best moment as JPEG, at most
    ``max_width`` pixels wide, and the face's box in the snapshot's pixels; (b"", None) when the frame
    was not kept. A received JPEG that is narrow enough is kept as it came (no second encoding)."""
    jpeg, scale = _snapshot(record, max_width)
    if not jpeg:
        return b"", None
    return jpeg, _scaled(record.box, scale)


def _scaled(box: Sequence[float], scale: float) -> Box:
    x, y, w, h = (float(v) for v in box)
    return (x * scale, y * scale, w * scale, h * scale)


def _snapshot(record: TrackRecord, max_width: int) -> tuple[bytes, float]:
    """The snapshot's JPEG (b"" when none) and the scale from the frame's pixels to its own."""
    ref = None if record.moment is None else record.moment.frame
    if ref is None:
        return b"", 1.0
    if ref.jpeg is not None and 0 < ref.width <= max_width:
        return ref.jpeg, 1.0
    image: np.ndarray | None = ref.image
    if image is None and ref.jpeg is not None:
        image = cv2.imdecode(np.frombuffer(ref.jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return b"", 1.0
    height, width = image.shape[:2]
    scale = min(1.0, max_width / float(width))
    if scale < 1.0:
        image = cv2.resize(image, (max_width, max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_JPEG_QUALITY])
    if not ok:
        log.warning("the snapshot of track %s would not encode", record.track_id)
        return b"", 1.0
    return buf.tobytes(), scale


def to_new_sighting(record: TrackRecord) -> NewSighting:
    """One ended track as a ``NewSighting`` for ``Gallery.record_sightings``, with its evidence snapshot."""
    embedding = None if record.embedding is None else np.asarray(record.embedding, dtype=np.float32).reshape(-1)
    snapshot, scale = _snapshot(record, SNAPSHOT_MAX_WIDTH)
    moment = record.moment
    # every tracked face of the snapshot's frame (this one among them), for erasure in others' snapshots
    faces = () if not snapshot or moment is None else tuple(SnapshotFace(t, _scaled(b, scale)) for t, b in moment.faces)
    return NewSighting(
        camera=record.camera,
        start=float(record.start),
        end=float(record.end),
        person_id=record.person_id,
        score=record.score,
        state=record.decision.state.value,
        box=(float(record.box[0]), float(record.box[1]), float(record.box[2]), float(record.box[3])),
        crop_jpeg=encode_crop(record.crop),
        embedding=embedding,
        model=record.model,
        track=record.track_id,
        quality=float(record.quality) if math.isfinite(record.quality) else None,
        snapshot_jpeg=snapshot,
        snapshot_box=_scaled(record.box, scale) if snapshot else None,
        snapshot_faces=faces,
        snapshot_at=None if not snapshot or moment is None else float(moment.at),
    )


def sighting_sink(
    record_sightings: Callable[[Sequence[NewSighting]], object],
) -> Callable[[Sequence[TrackRecord]], None]:
    """Wrap ``gallery.record_sightings`` as the recognition service's sighting sink."""

    def sink(records: Sequence[TrackRecord]) -> None:
        if records:
            record_sightings([to_new_sighting(r) for r in records])

    return sink
