"""What the live engine takes in: one camera frame, and the faces a camera found itself, in vision's own types.

The station turns the receiver's frames (``network.frames.Frame``) and the wire's FACES messages into these
(station/frame_feed.py), so the engine does not depend on the network layer or its wire format. A frame
arrives as JPEG bytes (a camera) or as pixels (recorded footage); :func:`decode_jpeg` is the one decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.types import Box, Detection, ImageBGR, Landmarks


class FrameDecodeError(ValueError):
    """A frame or a face crop whose JPEG bytes do not decode."""


def decode_jpeg(data: bytes) -> ImageBGR:
    """BGR pixels of JPEG bytes, or :class:`FrameDecodeError`."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        raise FrameDecodeError("not a JPEG (missing start-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameDecodeError(f"corrupt JPEG ({len(data)} bytes)")
    return np.asarray(image, dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class CameraFace:
    """A face the camera host found: where in the stream frame, and a sharp JPEG crop of it.

    ``crop_rect`` is the region of the stream frame the crop shows (stream px), ``crop_size`` the crop's
    (width, height) in its own pixels (cut from the camera's full-resolution picture).
    """

    detection: Detection
    crop_jpeg: bytes = field(repr=False)
    crop_rect: Box
    crop_size: tuple[int, int]

    def in_crop(self) -> Detection:
        """The detection mapped into the crop's pixels."""
        rx, ry, rw, rh = self.crop_rect
        sx, sy = self.crop_size[0] / rw, self.crop_size[1] / rh
        x, y, w, h = self.detection.box
        p = [((px - rx) * sx, (py - ry) * sy) for px, py in self.detection.landmarks]
        marks: Landmarks = (p[0], p[1], p[2], p[3], p[4])
        return Detection(
            box=((x - rx) * sx, (y - ry) * sy, w * sx, h * sy), landmarks=marks, confidence=self.detection.confidence
        )


@dataclass(frozen=True, slots=True)
class CameraFaces:
    """Every face the camera found in one frame; ``stream_size`` is that frame's (width, height)."""

    stream_size: tuple[int, int]
    faces: tuple[CameraFace, ...]


@dataclass(frozen=True, slots=True)
class CameraFrame:
    """One frame of one camera as the engine takes it: JPEG bytes (a camera) or pixels (recorded footage),
    with the camera's own faces when it detects itself. Times are epoch seconds; ``captured_at`` is the
    camera's clock, ``received_at`` the station's."""

    camera: str
    frame_id: int
    captured_at: float
    received_at: float
    jpeg: bytes | None = field(default=None, repr=False)
    image: ImageBGR | None = field(default=None, repr=False)
    faces: CameraFaces | None = field(default=None, repr=False)
    serial: int = 0

    def pixels(self) -> ImageBGR:
        """The frame's pixels (decoded here when it came as JPEG); FrameDecodeError when they do not decode."""
        if self.image is not None:
            return self.image
        if self.jpeg is None:
            raise FrameDecodeError("a frame with neither JPEG bytes nor pixels")
        return decode_jpeg(self.jpeg)


@dataclass(frozen=True, slots=True)
class FrameRef:
    """A whole frame kept for a track's best moment (its evidence snapshot, its confirmation): the JPEG
    as it came, or the pixels where there is no JPEG (recorded footage)."""

    jpeg: bytes | None
    width: int
    height: int
    image: ImageBGR | None = None

    def pixels(self) -> ImageBGR | None:
        """The frame's pixels, decoding the JPEG if need be; None when it does not decode."""
        if self.image is not None:
            return self.image
        if self.jpeg is None:
            return None
        try:
            return decode_jpeg(self.jpeg)
        except FrameDecodeError:
            return None
