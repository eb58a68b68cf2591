"""Faces found on the camera host (``udp_sender.py --detect``) into the live engine's face records.

The camera sends each face's box and landmarks in stream pixels and a JPEG crop cut from its
full-resolution picture. Here each crop is decoded, its landmarks mapped into crop pixels, and it goes
through the same :func:`vision.align.align` and :func:`vision.quality.measure` as a face the station found
itself, so the tracker, the tiles and the sightings treat it alike: the face's box and landmarks stay in
stream pixels (where the tracker links and the tile paints), while its aligned crop and its quality come
from the sharper crop (quality's face size is the crop's, in pixels of the camera's own picture). The
minimum face size applies to that size too: a face 25 px tall in the stream but 75 px in the crop is big
enough.

A crop that does not decode, or whose size is not the one announced, raises
:class:`~vision.frames.FrameDecodeError` for the whole frame, and the caller detects that frame itself.
"""

from __future__ import annotations

import logging

from vision.align import Template, align
from vision.faces import Face
from vision.frames import CameraFace, CameraFaces, FrameDecodeError, decode_jpeg
from vision.quality import measure
from vision.types import ImageBGR

log = logging.getLogger(__name__)


def decode_crop(face: CameraFace) -> ImageBGR:
    """A crop's BGR pixels, or :class:`FrameDecodeError` when it does not decode to its announced size."""
    try:
        image = decode_jpeg(face.crop_jpeg)
    except FrameDecodeError:
        raise FrameDecodeError(f"a {len(face.crop_jpeg)}-byte face crop does not decode") from None
    w, h = face.crop_size
    if (image.shape[1], image.shape[0]) != (w, h):
        raise FrameDecodeError(f"a face crop of {image.shape[1]}x{image.shape[0]} px, announced as {w}x{h}")
    return image


def camera_candidates(faces: CameraFaces, template: Template, model: str, *, min_face: float = 0.0) -> list[Face]:
    """The camera's faces of one frame, aligned and measured, not embedded (see the module docstring)."""
    crops = [decode_crop(f) for f in faces.faces]  # all or none: a bad crop fails the frame
    out: list[Face] = []
    for face, crop in zip(faces.faces, crops, strict=True):
        in_crop = face.in_crop()
        if min(in_crop.box[2], in_crop.box[3]) < min_face:
            continue
        try:
            aligned = align(crop, in_crop.landmarks, template)
        except ValueError as exc:  # degenerate landmarks: nothing to align this face by
            log.debug("a camera's face skipped: %s", exc)
            continue
        out.append(Face(detection=face.detection, quality=measure(in_crop, aligned), model=model, crop=aligned))
    return out
