"""The fixed binary header: its layout, the message types, rejections, and the bounds checked on parse.

Pure code. Everything read off the wire is bounded here, before anything is decrypted or allocated,
and a refused datagram becomes a :class:`Rejection` with its :class:`Reason`; nothing raises.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

MAGIC = b"FS"
# The header layout's version: every datagram carries it, and a peer refuses any other value. It stays
# 1 while the header does; new message types are announced by HELLO's ``protocol`` instead (PROTOCOL).
VERSION = 1
# What this code speaks, announced in HELLO: 1 frames and control; 2 adds FACES (network/wire/faces.py)
# and ACCEPT, by which a station asks a protocol-2 sender for them.
PROTOCOL = 2
HEADER = struct.Struct("!2sBBI16sQIHHHHIQ")
TAG_SIZE = 16
SESSION_SIZE = 16
MAX_DATAGRAM = 1400
MAX_PAYLOAD = MAX_DATAGRAM - HEADER.size - TAG_SIZE
MIN_CHUNK = 256
MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_CHUNKS = -(-MAX_FRAME_BYTES // MIN_CHUNK)
MAX_CONTROL_PAYLOAD = 256
MAX_FACES_BYTES = 1024 * 1024  # one frame's faces message: boxes, landmarks and their JPEG crops

assert HEADER.size == 56
assert MAX_CHUNKS <= 0xFFFF


class MsgType(enum.IntEnum):
    """What a datagram carries."""

    FRAME = 1
    PARITY = 2
    HELLO = 3
    SUBSCRIBE = 4
    BYE = 5
    FACES = 6  # protocol 2: a chunk of one frame's faces message (the camera host detected them)
    FACES_PARITY = 7  # protocol 2: its FEC parity
    ACCEPT = 8  # protocol 2, station to sender: send me FACES (only ever sent to a sender that said protocol 2)


# Types chunked like a frame (frame id, index, count, FEC groups), and which of those are parity.
CHUNKED = frozenset({MsgType.FRAME, MsgType.PARITY, MsgType.FACES, MsgType.FACES_PARITY})
PARITY_TYPES = frozenset({MsgType.PARITY, MsgType.FACES_PARITY})
_CEILING = {
    MsgType.FRAME: MAX_FRAME_BYTES,
    MsgType.PARITY: MAX_FRAME_BYTES,
    MsgType.FACES: MAX_FACES_BYTES,
    MsgType.FACES_PARITY: MAX_FACES_BYTES,
}


class Reason(enum.StrEnum):
    """Why a datagram was rejected; the receiver counts rejections by these."""

    BAD_MAGIC = "bad_magic"
    BAD_VERSION = "bad_version"
    AUTH = "auth"
    REPLAY = "replay"
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    UNKNOWN_CAMERA = "unknown_camera"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A datagram that was refused, and why."""

    reason: Reason
    detail: str = ""
    camera_id: int | None = None


def session_start_us(session: bytes) -> int:
    return int(struct.unpack_from("!Q", session)[0])


@dataclass(frozen=True, slots=True)
class Header:
    """The fixed binary header, after its fields were checked for bounds."""

    type: MsgType
    camera_id: int
    session: bytes
    seq: int
    frame_id: int = 0
    index: int = 0
    count: int = 0
    groups: int = 0
    chunk_size: int = 0
    frame_len: int = 0
    timestamp_us: int = 0

    def pack(self) -> bytes:
        return HEADER.pack(
            MAGIC,
            VERSION,
            int(self.type),
            self.camera_id,
            self.session,
            self.seq,
            self.frame_id,
            self.index,
            self.count,
            self.groups,
            self.chunk_size,
            self.frame_len,
            self.timestamp_us,
        )

    @property
    def session_start_us(self) -> int:
        return session_start_us(self.session)


@dataclass(frozen=True, slots=True)
class Datagram:
    """An opened (authenticated and decrypted) datagram."""

    header: Header
    payload: bytes


def parse_header(data: bytes) -> Header | Rejection:
    """Check a raw datagram's size and header; never raises.

    A message type this code does not know (a newer peer's) is refused as malformed, before any
    decryption: that is what protocol-1 stations do with FACES, and keep doing.
    """
    size = len(data)
    if size > MAX_DATAGRAM:
        return Rejection(Reason.OVERSIZED, f"datagram of {size} bytes")
    if size < HEADER.size + TAG_SIZE:
        return Rejection(Reason.MALFORMED, f"datagram of {size} bytes is shorter than a header")
    (magic, version, mtype, camera_id, session, seq, frame_id, index, count, groups, chunk_size, frame_len, ts) = (
        HEADER.unpack_from(data)
    )
    if magic != MAGIC:
        return Rejection(Reason.BAD_MAGIC)
    if version != VERSION:
        return Rejection(Reason.BAD_VERSION, f"version {version}", camera_id)
    try:
        kind = MsgType(mtype)
    except ValueError:
        return Rejection(Reason.MALFORMED, f"message type {mtype}", camera_id)
    payload_len = size - HEADER.size - TAG_SIZE
    header = Header(kind, camera_id, session, seq, frame_id, index, count, groups, chunk_size, frame_len, ts)
    problem = _check_fields(header, payload_len)
    if problem is not None:
        return problem
    return header


def _check_fields(h: Header, payload_len: int) -> Rejection | None:
    if h.type in CHUNKED:
        return _check_chunk(h) or _check_chunk_payload(h, payload_len)
    if h.index or h.count or h.groups or h.chunk_size or h.frame_len or h.frame_id:
        return Rejection(Reason.MALFORMED, "control message with frame fields", h.camera_id)
    if payload_len > MAX_CONTROL_PAYLOAD:
        return Rejection(Reason.OVERSIZED, f"control payload of {payload_len} bytes", h.camera_id)
    return None


def _check_chunk(h: Header) -> Rejection | None:
    """A chunked message's fields: its length under the type's ceiling, and chunking that adds up."""
    cam = h.camera_id
    if h.frame_len > _CEILING[h.type]:
        what = "frame" if h.type in (MsgType.FRAME, MsgType.PARITY) else "faces message"
        return Rejection(Reason.OVERSIZED, f"{what} of {h.frame_len} bytes", cam)
    if h.frame_len == 0 or h.count == 0:
        return Rejection(Reason.MALFORMED, "empty frame", cam)
    if not MIN_CHUNK <= h.chunk_size <= MAX_PAYLOAD:
        return Rejection(Reason.MALFORMED, f"chunk size {h.chunk_size}", cam)
    if h.count != -(-h.frame_len // h.chunk_size):
        return Rejection(Reason.MALFORMED, "chunk count does not match frame length", cam)
    if h.groups > h.count:
        return Rejection(Reason.MALFORMED, "more FEC groups than chunks", cam)
    return None


def _check_chunk_payload(h: Header, payload_len: int) -> Rejection | None:
    """The chunk's index in range for its kind (data or parity), and its payload exactly as long as it says."""
    cam = h.camera_id
    if h.type not in PARITY_TYPES:
        if h.index >= h.count:
            return Rejection(Reason.MALFORMED, "chunk index out of range", cam)
        expected = chunk_length(h.index, h.count, h.chunk_size, h.frame_len)
    else:
        if h.groups == 0 or h.index >= h.groups:
            return Rejection(Reason.MALFORMED, "parity group out of range", cam)
        expected = h.chunk_size
    if payload_len != expected:
        return Rejection(Reason.MALFORMED, f"payload of {payload_len} bytes, expected {expected}", cam)
    return None


def chunk_length(index: int, count: int, chunk_size: int, frame_len: int) -> int:
    if index < count - 1:
        return chunk_size
    return frame_len - (count - 1) * chunk_size
