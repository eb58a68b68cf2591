"""The FACES message (protocol 2): the faces a camera host found in one stream frame, with sharp crops.

Sent beside a frame, chunked, FEC-protected and sealed exactly like one (types FACES and
FACES_PARITY, the frame id of the stream frame it describes in the header, at most
``MAX_FACES_BYTES`` in all). Its reassembled payload, big-endian::

    head (13 bytes)
        format u8 (1) | flags u8 (0) | stream width u16 | stream height u16 |
        source width u16 | source height u16 | detect ms u16 | face count u8 (<= MAX_FACES)
    one record per face (84 bytes), in stream pixels (the frame as sent, after --max-width)
        box x, y, w, h f32 | the 5 landmarks' x, then their y f32 (MTCNN order) | confidence f32 |
        crop rectangle x, y, w, h f32 (the stream-frame region the crop shows) |
        crop width u16 | crop height u16 | crop length u32
    the crops' JPEG bytes, one after another, in record order (they fill the rest exactly)

A crop is cut from the full-resolution source frame with a margin, so its pixels are sharper than
the stream's; a landmark maps into crop pixels as ``(p - rect origin) * crop size / rect size``.
Every count, size and coordinate is bounded before use and every float must be finite; anything
else is a :class:`~network.wire.header.Rejection`, never an exception. The crops stay JPEG bytes
here: the station decodes them on a recognition thread, not on the receive thread.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from network.wire.header import MAX_FACES_BYTES, Reason, Rejection

FACES_FORMAT = 1
MAX_FACES = 32
MAX_SIDE = 16384  # stream and source sides, px
MAX_CROP_SIDE = 256
MAX_CROP_BYTES = 64 * 1024

_HEAD = struct.Struct("!BBHHHHHB")
_FACE = struct.Struct("!4f10ff4fHHI")

Box = tuple[float, float, float, float]
Point = tuple[float, float]
Points = tuple[Point, Point, Point, Point, Point]


@dataclass(frozen=True, slots=True)
class EdgeFace:
    """One face the camera host found: where (stream px), its landmarks and confidence, its JPEG crop."""

    box: Box
    landmarks: Points
    confidence: float
    crop_rect: Box  # the region of the stream frame the crop shows, stream px
    crop_size: tuple[int, int]  # (width, height) of the crop JPEG, px
    crop: bytes

    @property
    def scale(self) -> tuple[float, float]:
        """Crop pixels per stream pixel, (x, y)."""
        return self.crop_size[0] / self.crop_rect[2], self.crop_size[1] / self.crop_rect[3]

    def to_crop(self, x: float, y: float) -> Point:
        """A stream-pixel point in crop pixels."""
        sx, sy = self.scale
        return (x - self.crop_rect[0]) * sx, (y - self.crop_rect[1]) * sy

    def crop_landmarks(self) -> Points:
        p = [self.to_crop(x, y) for x, y in self.landmarks]
        return (p[0], p[1], p[2], p[3], p[4])

    def crop_box(self) -> Box:
        x, y = self.to_crop(self.box[0], self.box[1])
        sx, sy = self.scale
        return x, y, self.box[2] * sx, self.box[3] * sy


@dataclass(frozen=True, slots=True)
class EdgeFaces:
    """A frame's faces as found on the camera host; ``frame_id`` is the stream frame they belong to."""

    frame_id: int
    stream_size: tuple[int, int]  # (width, height) of the stream frame
    source_size: tuple[int, int]  # (width, height) of the frame the camera detected in
    faces: tuple[EdgeFace, ...]
    detect_ms: int = 0  # how long detection took on the camera host

    @property
    def crop_bytes(self) -> int:
        return sum(len(f.crop) for f in self.faces)


def encoded_size(faces: int, crop_bytes: int) -> int:
    """Bytes of a FACES payload with ``faces`` records and ``crop_bytes`` of crops (for budgeting)."""
    return _HEAD.size + faces * _FACE.size + crop_bytes


def encode_faces(msg: EdgeFaces) -> bytes:
    """The payload of ``msg``; ValueError if it breaks a bound a station would refuse."""
    problem = _check_message(msg)
    if problem:
        raise ValueError(problem)
    sw, sh = msg.stream_size
    cw, ch = msg.source_size
    parts = [_HEAD.pack(FACES_FORMAT, 0, sw, sh, cw, ch, max(0, min(msg.detect_ms, 0xFFFF)), len(msg.faces))]
    for f in msg.faces:
        marks = [v for p in f.landmarks for v in p]
        xs, ys = marks[0::2], marks[1::2]
        parts.append(_FACE.pack(*f.box, *xs, *ys, f.confidence, *f.crop_rect, *f.crop_size, len(f.crop)))
    parts.extend(f.crop for f in msg.faces)
    return b"".join(parts)


def parse_faces(frame_id: int, payload: bytes) -> EdgeFaces | Rejection:
    """Decode a reassembled FACES payload; never raises."""
    head = _parse_head(payload)
    if isinstance(head, Rejection):
        return head
    sw, sh, cw, ch, detect_ms, count = head
    faces = _parse_records(payload, count)
    if isinstance(faces, Rejection):
        return faces
    msg = EdgeFaces(frame_id, (sw, sh), (cw, ch), faces, detect_ms)
    problem = _check_message(msg)
    if problem:
        return Rejection(Reason.MALFORMED, problem)
    return msg


def _parse_head(payload: bytes) -> tuple[int, int, int, int, int, int] | Rejection:
    """(stream w, h, source w, h, detect ms, face count) of a FACES payload, its size and count bounded."""
    if len(payload) > MAX_FACES_BYTES:
        return Rejection(Reason.OVERSIZED, f"faces message of {len(payload)} bytes")
    if len(payload) < _HEAD.size:
        return Rejection(Reason.MALFORMED, "faces message shorter than its head")
    fmt, flags, sw, sh, cw, ch, detect_ms, count = _HEAD.unpack_from(payload)
    if fmt != FACES_FORMAT or flags:
        return Rejection(Reason.MALFORMED, f"faces format {fmt} flags {flags}")
    if count > MAX_FACES:
        return Rejection(Reason.OVERSIZED, f"{count} faces (at most {MAX_FACES})")
    if len(payload) < _HEAD.size + count * _FACE.size:
        return Rejection(Reason.MALFORMED, "faces message shorter than its records")
    return sw, sh, cw, ch, detect_ms, count


def _parse_records(payload: bytes, count: int) -> tuple[EdgeFace, ...] | Rejection:
    """The ``count`` face records after the head, each with its crop from the bytes after the records."""
    offset = _HEAD.size + count * _FACE.size
    faces: list[EdgeFace] = []
    for i in range(count):
        v = _FACE.unpack_from(payload, _HEAD.size + i * _FACE.size)
        crop_w, crop_h, crop_len = v[19], v[20], v[21]
        if not 1 <= crop_len <= MAX_CROP_BYTES:
            return Rejection(Reason.MALFORMED, f"crop of {crop_len} bytes")
        if offset + crop_len > len(payload):
            return Rejection(Reason.MALFORMED, "crops overrun the faces message")
        crop = payload[offset : offset + crop_len]
        offset += crop_len
        box = (v[0], v[1], v[2], v[3])
        landmarks: Points = ((v[4], v[9]), (v[5], v[10]), (v[6], v[11]), (v[7], v[12]), (v[8], v[13]))
        faces.append(EdgeFace(box, landmarks, v[14], (v[15], v[16], v[17], v[18]), (crop_w, crop_h), crop))
    if offset != len(payload):
        return Rejection(Reason.MALFORMED, f"{len(payload) - offset} bytes after the last crop")
    return tuple(faces)


def _check_message(msg: EdgeFaces) -> str:
    """What is wrong with ``msg`` (empty when nothing): the bounds shared by the encoder and the parser."""
    sw, sh = msg.stream_size
    if not (1 <= sw <= MAX_SIDE and 1 <= sh <= MAX_SIDE):
        return f"stream size {sw}x{sh}"
    cw, ch = msg.source_size
    if not (1 <= cw <= MAX_SIDE and 1 <= ch <= MAX_SIDE):
        return f"source size {cw}x{ch}"
    if len(msg.faces) > MAX_FACES:
        return f"{len(msg.faces)} faces (at most {MAX_FACES})"
    if encoded_size(len(msg.faces), msg.crop_bytes) > MAX_FACES_BYTES:
        return "faces message over its ceiling"
    for f in msg.faces:
        problem = _check_face(f, sw, sh)
        if problem:
            return problem
    return ""


def _check_face(f: EdgeFace, sw: int, sh: int) -> str:
    values = (*f.box, *(v for p in f.landmarks for v in p), f.confidence, *f.crop_rect)
    if not all(math.isfinite(v) for v in values):
        return "a face with a non-finite number"
    if not 0.0 <= f.confidence <= 1.0:
        return f"confidence {f.confidence}"
    for name, (x, y, w, h) in (("box", f.box), ("crop rectangle", f.crop_rect)):
        if not (0.0 < w <= 2 * sw and 0.0 < h <= 2 * sh and -sw <= x <= 2 * sw and -sh <= y <= 2 * sh):
            return f"{name} {x:g},{y:g},{w:g},{h:g} outside a {sw}x{sh} frame"
    if not all(-sw <= x <= 2 * sw and -sh <= y <= 2 * sh for x, y in f.landmarks):
        return "a landmark outside the frame"
    cw, ch = f.crop_size
    if not (1 <= cw <= MAX_CROP_SIDE and 1 <= ch <= MAX_CROP_SIDE):
        return f"crop of {cw}x{ch} px (at most {MAX_CROP_SIDE})"
    if not 1 <= len(f.crop) <= MAX_CROP_BYTES:
        return f"crop of {len(f.crop)} bytes"
    if f.crop[:2] != b"\xff\xd8":
        return "a crop that is not a JPEG"
    return ""
