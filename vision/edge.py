"""Faces found on the camera host (``udp_sender.py --detect``) into the live engine's candidates.

The camera sends each face's box and landmarks in stream pixels and a JPEG crop cut from its
full-resolution picture (network/wire/faces.py). Here each crop is decoded, its landmarks mapped
into crop pixels, and it goes through the same :func:`vision.align.align` and
:func:`vision.quality.measure` as a face the station found itself, so the tracker, the tiles and
the sightings treat it alike: the candidate's box and landmarks stay in stream pixels (where the
tracker links and the tile paints), while its aligned crop and its quality come from the sharper
crop (quality's face size is the crop's, in pixels of the camera's own picture). The minimum face
size applies to that size too: a face 25 px tall in the stream but 75 px in the crop is big enough.

A crop that does not decode, or whose size is not the one announced, raises :class:`EdgeCropError`
for the whole frame, and the caller falls back to detecting that frame itself.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from network.wire.faces import EdgeFaces
from vision.align import Template, align
from vision.pipeline import FaceCandidate
from vision.quality import measure
from vision.types import Detection, ImageBGR

log = logging.getLogger(__name__)


class EdgeCropError(ValueError):
    """A crop sent by a camera that cannot be used: the frame is detected at the station instead."""


def decode_crop(data: bytes, size: tuple[int, int]) -> ImageBGR:
    """A crop's BGR pixels, or :class:`EdgeCropError` when it does not decode to ``size`` (w, h)."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise EdgeCropError(f"a {len(data)}-byte face crop does not decode")
    if (image.shape[1], image.shape[0]) != size:
        raise EdgeCropError(f"a face crop of {image.shape[1]}x{image.shape[0]} px, announced as {size[0]}x{size[1]}")
    return np.asarray(image, dtype=np.uint8)


def edge_candidates(faces: EdgeFaces, template: Template, model: str, *, min_face: float = 0.0) -> list[FaceCandidate]:
    """The camera's faces of one frame, aligned and measured, not embedded (see the module docstring)."""
    crops = [decode_crop(f.crop, f.crop_size) for f in faces.faces]  # all or none: a bad crop fails the frame
    out: list[FaceCandidate] = []
    for face, crop in zip(faces.faces, crops, strict=True):
        in_crop = Detection(box=face.crop_box(), landmarks=face.crop_landmarks(), confidence=face.confidence)
        if min(in_crop.box[2], in_crop.box[3]) < min_face:
            continue
        try:
            aligned = align(crop, in_crop.landmarks, template)
        except ValueError as exc:  # degenerate landmarks: nothing to align this face by
            log.debug("an edge face of frame %d skipped: %s", faces.frame_id, exc)
            continue
        where = Detection(box=face.box, landmarks=face.landmarks, confidence=face.confidence)
        out.append(FaceCandidate(detection=where, quality=measure(in_crop, aligned), crop=aligned, model=model))
    return out
