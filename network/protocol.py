"""The FaceStation datagram format: build, seal, open, parse, chunk, FEC.

Pure code: no sockets, no threads, no clocks of its own. Everything that comes
off the wire is bounded before use and turned into either a message or a typed
:class:`Rejection`; nothing here raises on hostile input, and nothing is ever
unpickled or evaluated.

Datagram layout (all integers big-endian)::

    header (56 bytes, authenticated as associated data)
        magic "FS" | version u8 | type u8 | camera id u32 | session 16 bytes |
        seq u64 | frame id u32 | chunk index u16 | chunk count u16 |
        FEC groups u16 | chunk size u16 | frame length u32 | timestamp us u64
    payload (encrypted) | Poly1305 tag (16 bytes)

Sealing: each sender (and each station) starts a *session* with a random
16-byte id whose first 8 bytes are its start time in microseconds. The session
key is HKDF-SHA256(station key, info=session id), and the nonce is the 64-bit
datagram sequence number, so a nonce is never reused under one key: the
sequence only grows within a session, and two sessions share a key only if
their random ids collide.

FEC: the data chunks of a frame are spread over ``groups`` parity groups
(chunk ``i`` belongs to group ``i % groups``, so a burst of consecutive losses
hits different groups). Each group has one XOR parity chunk, so a frame
survives the loss of one datagram per group.
"""

from __future__ import annotations

import enum
import hashlib
import os
import struct
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"FS"
VERSION = 1
HEADER = struct.Struct("!2sBBI16sQIHHHHIQ")
TAG_SIZE = 16
KEY_SIZE = 32
SESSION_SIZE = 16
MAX_DATAGRAM = 1400
MAX_PAYLOAD = MAX_DATAGRAM - HEADER.size - TAG_SIZE
MIN_CHUNK = 256
MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_CHUNKS = -(-MAX_FRAME_BYTES // MIN_CHUNK)
MAX_NAME_BYTES = 64
MAX_CONTROL_PAYLOAD = 256
DEFAULT_GROUP_SIZE = 8
COOKIE_SIZE = 8
REPLAY_WINDOW = 2048

assert HEADER.size == 56
assert MAX_CHUNKS <= 0xFFFF


class MsgType(enum.IntEnum):
    """What a datagram carries."""

    FRAME = 1
    PARITY = 2
    HELLO = 3
    SUBSCRIBE = 4
    BYE = 5


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


@dataclass(frozen=True, slots=True)
class Hello:
    """A sender introduces itself. ``cookie`` must be echoed in SUBSCRIBE."""

    name: str
    width: int
    height: int
    fps: float
    protocol: int = VERSION
    cookie: bytes = bytes(COOKIE_SIZE)


@dataclass(frozen=True, slots=True)
class Subscribe:
    """A station asks a sender to stream to it for ``lease_s`` seconds."""

    lease_s: int
    station: str
    cookie: bytes = bytes(COOKIE_SIZE)


@dataclass(frozen=True, slots=True)
class Bye:
    """A peer is going away (sender stopping, or station unsubscribing)."""

    reason: str = ""


ControlMessage = Hello | Subscribe | Bye

_HELLO = struct.Struct("!HHIB8sB")
_SUBSCRIBE = struct.Struct("!H8sB")


# --------------------------------------------------------------------------
# Keys and sessions


class KeyError_(ValueError):
    """A station key that cannot be used."""


def new_key() -> bytes:
    return os.urandom(KEY_SIZE)


def encode_key(key: bytes) -> str:
    """The key file format: 64 hex digits and a newline."""
    if len(key) != KEY_SIZE:
        raise KeyError_(f"a station key is {KEY_SIZE} bytes, not {len(key)}")
    return key.hex() + "\n"


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def decode_key(text: str) -> bytes:
    """Parse a key file's text; raise :class:`KeyError_` with a clear message."""
    body = text.strip()
    if len(body) != 2 * KEY_SIZE:
        raise KeyError_(f"a station key file holds {2 * KEY_SIZE} hex digits; this one holds {len(body)} characters")
    if not all(c in _HEX_DIGITS for c in body):
        raise KeyError_("a station key file holds only hex digits (0-9, a-f)")
    return bytes.fromhex(body)


def new_session(now_us: int) -> bytes:
    """A session id: 8 bytes of start time (so sessions order), 8 random bytes."""
    return struct.pack("!Q", now_us & 0xFFFFFFFFFFFFFFFF) + os.urandom(8)


def session_start_us(session: bytes) -> int:
    return int(struct.unpack_from("!Q", session)[0])


def camera_id_for(name: str) -> int:
    """A stable 32-bit camera id derived from the camera name (never 0)."""
    value = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")
    return value or 1


def _session_cipher(key: bytes, session: bytes) -> ChaCha20Poly1305:
    subkey = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=b"facestation/1 " + session).derive(key)
    return ChaCha20Poly1305(subkey)


def _nonce(seq: int) -> bytes:
    return b"\x00\x00\x00\x00" + seq.to_bytes(8, "big")


# --------------------------------------------------------------------------
# Parsing


def parse_header(data: bytes) -> Header | Rejection:
    """Check a raw datagram's size and header; never raises."""
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
    cam = h.camera_id
    if h.type in (MsgType.FRAME, MsgType.PARITY):
        if h.frame_len > MAX_FRAME_BYTES:
            return Rejection(Reason.OVERSIZED, f"frame of {h.frame_len} bytes", cam)
        if h.frame_len == 0 or h.count == 0:
            return Rejection(Reason.MALFORMED, "empty frame", cam)
        if not MIN_CHUNK <= h.chunk_size <= MAX_PAYLOAD:
            return Rejection(Reason.MALFORMED, f"chunk size {h.chunk_size}", cam)
        if h.count != -(-h.frame_len // h.chunk_size):
            return Rejection(Reason.MALFORMED, "chunk count does not match frame length", cam)
        if h.groups > h.count:
            return Rejection(Reason.MALFORMED, "more FEC groups than chunks", cam)
        if h.type is MsgType.FRAME:
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
    if h.index or h.count or h.groups or h.chunk_size or h.frame_len or h.frame_id:
        return Rejection(Reason.MALFORMED, "control message with frame fields", cam)
    if payload_len > MAX_CONTROL_PAYLOAD:
        return Rejection(Reason.OVERSIZED, f"control payload of {payload_len} bytes", cam)
    return None


def chunk_length(index: int, count: int, chunk_size: int, frame_len: int) -> int:
    if index < count - 1:
        return chunk_size
    return frame_len - (count - 1) * chunk_size


def parse_control(kind: MsgType, payload: bytes) -> ControlMessage | Rejection:
    """Decode a HELLO, SUBSCRIBE or BYE payload; never raises."""
    try:
        if kind is MsgType.HELLO:
            width, height, fps_milli, proto, cookie, name_len = _HELLO.unpack_from(payload)
            name = _read_name(payload, _HELLO.size, name_len)
            if not name:
                return Rejection(Reason.MALFORMED, "HELLO without a camera name")
            return Hello(name, width, height, fps_milli / 1000.0, proto, cookie)
        if kind is MsgType.SUBSCRIBE:
            lease_s, cookie, name_len = _SUBSCRIBE.unpack_from(payload)
            if lease_s == 0:
                return Rejection(Reason.MALFORMED, "SUBSCRIBE with a zero lease")
            return Subscribe(lease_s, _read_name(payload, _SUBSCRIBE.size, name_len), cookie)
        if kind is MsgType.BYE:
            if not payload:
                return Bye()
            return Bye(_read_name(payload, 1, payload[0]))
    except (struct.error, UnicodeDecodeError, _BadName) as exc:
        return Rejection(Reason.MALFORMED, f"bad {kind.name} payload: {exc}")
    return Rejection(Reason.MALFORMED, f"{kind.name} is not a control message")


class _BadName(ValueError):
    pass


def _read_name(payload: bytes, offset: int, length: int) -> str:
    if length > MAX_NAME_BYTES:
        raise _BadName(f"name of {length} bytes")
    if offset + length != len(payload):
        raise _BadName("name length does not match payload")
    text = payload[offset : offset + length].decode("utf-8")
    if any(ord(c) < 32 for c in text):
        raise _BadName("control characters in name")
    return text


def _encode_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    if len(raw) > MAX_NAME_BYTES:
        raise ValueError(f"name {name!r} is longer than {MAX_NAME_BYTES} bytes")
    if any(ord(c) < 32 for c in name):
        raise ValueError(f"name {name!r} contains control characters")
    return bytes([len(raw)]) + raw


def encode_control(msg: ControlMessage) -> tuple[MsgType, bytes]:
    if isinstance(msg, Hello):
        if not msg.name:
            raise ValueError("a HELLO needs a camera name")
        fps_milli = max(0, min(round(msg.fps * 1000), 0xFFFFFFFF))
        body = _HELLO.pack(msg.width, msg.height, fps_milli, msg.protocol, msg.cookie, 0)[:-1]
        return MsgType.HELLO, body + _encode_name(msg.name)
    if isinstance(msg, Subscribe):
        body = _SUBSCRIBE.pack(msg.lease_s, msg.cookie, 0)[:-1]
        return MsgType.SUBSCRIBE, body + _encode_name(msg.station)
    if msg.reason:
        return MsgType.BYE, _encode_name(msg.reason)
    return MsgType.BYE, b""


# --------------------------------------------------------------------------
# Sealing and opening


class Sealer:
    """Seals outgoing datagrams for one session; the sequence never repeats."""

    def __init__(self, key: bytes, camera_id: int, now_us: int, *, chunk_size: int = MAX_PAYLOAD) -> None:
        if len(key) != KEY_SIZE:
            raise KeyError_(f"a station key is {KEY_SIZE} bytes, not {len(key)}")
        if not MIN_CHUNK <= chunk_size <= MAX_PAYLOAD:
            raise ValueError(f"chunk size must be within {MIN_CHUNK}..{MAX_PAYLOAD}")
        self.camera_id = camera_id
        self.session = new_session(now_us)
        self.chunk_size = chunk_size
        self._cipher = _session_cipher(key, self.session)
        self._seq = 0

    @property
    def next_seq(self) -> int:
        return self._seq

    def seal(self, kind: MsgType, payload: bytes, *, camera_id: int | None = None, **frame_fields: int) -> bytes:
        """Seal one datagram. ``camera_id`` overrides ours (a station addressing a camera)."""
        seq = self._seq
        self._seq += 1
        cam = self.camera_id if camera_id is None else camera_id
        header = Header(kind, cam, self.session, seq, **frame_fields).pack()
        return header + self._cipher.encrypt(_nonce(seq), payload, header)

    def control(self, msg: ControlMessage, *, camera_id: int | None = None) -> bytes:
        kind, payload = encode_control(msg)
        return self.seal(kind, payload, camera_id=camera_id)

    def frame(
        self, frame_id: int, data: bytes, timestamp_us: int, *, group_size: int = DEFAULT_GROUP_SIZE
    ) -> list[bytes]:
        """Chunk, add parity and seal one encoded frame; parity datagrams come last."""
        chunks, parity, groups = split_frame(data, self.chunk_size, group_size)
        fields = {
            "frame_id": frame_id & 0xFFFFFFFF,
            "count": len(chunks),
            "groups": groups,
            "chunk_size": self.chunk_size,
            "frame_len": len(data),
            "timestamp_us": timestamp_us,
        }
        out = [self.seal(MsgType.FRAME, c, index=i, **fields) for i, c in enumerate(chunks)]
        out += [self.seal(MsgType.PARITY, p, index=g, **fields) for g, p in enumerate(parity)]
        return out


def split_frame(data: bytes, chunk_size: int, group_size: int) -> tuple[list[bytes], list[bytes], int]:
    """Split ``data`` into chunks and one XOR parity chunk per interleaved group."""
    if not data:
        raise ValueError("cannot send an empty frame")
    if len(data) > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {len(data)} bytes exceeds the {MAX_FRAME_BYTES}-byte ceiling")
    count = -(-len(data) // chunk_size)
    chunks = [data[i * chunk_size : (i + 1) * chunk_size] for i in range(count)]
    if group_size <= 0:
        return chunks, [], 0
    groups = -(-count // group_size)
    rows = -(-count // groups)
    padded = np.zeros(rows * groups * chunk_size, dtype=np.uint8)
    padded[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    parity = np.bitwise_xor.reduce(padded.reshape(rows, groups, chunk_size), axis=0)
    return chunks, [parity[g].tobytes() for g in range(groups)], groups


class Opener:
    """Authenticates and decrypts datagrams under the station key.

    Session ciphers are cached only after a datagram authenticated, and the
    cache is bounded, so forged sessions cost CPU but never memory.
    """

    def __init__(self, key: bytes, *, cache_size: int = 256) -> None:
        if len(key) != KEY_SIZE:
            raise KeyError_(f"a station key is {KEY_SIZE} bytes, not {len(key)}")
        self._key = key
        self._cache: OrderedDict[bytes, ChaCha20Poly1305] = OrderedDict()
        self._cache_size = cache_size

    def open(self, data: bytes) -> Datagram | Rejection:
        parsed = parse_header(data)
        if isinstance(parsed, Rejection):
            return parsed
        return self.open_parsed(parsed, data)

    def open_parsed(self, header: Header, data: bytes) -> Datagram | Rejection:
        cipher = self._cache.get(header.session)
        cached = cipher is not None
        if cipher is None:
            cipher = _session_cipher(self._key, header.session)
        try:
            payload = cipher.decrypt(_nonce(header.seq), data[HEADER.size :], data[: HEADER.size])
        except InvalidTag:
            return Rejection(Reason.AUTH, "authentication failed", header.camera_id)
        if cached:
            self._cache.move_to_end(header.session)
        else:
            self._cache[header.session] = cipher
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return Datagram(header, payload)


# --------------------------------------------------------------------------
# Replay protection


class ReplayWindow:
    """A sliding window over one session's sequence numbers (RFC 4303 style)."""

    def __init__(self, size: int = REPLAY_WINDOW) -> None:
        self.size = size
        self.highest = -1
        self._bits = 0  # bit i set: highest - i was seen

    def check(self, seq: int) -> bool:
        """True if ``seq`` is new; does not record it."""
        if seq > self.highest:
            return True
        offset = self.highest - seq
        if offset >= self.size:
            return False
        return not (self._bits >> offset) & 1

    def accept(self, seq: int) -> bool:
        """Record ``seq``; False (and nothing recorded) if it is a replay."""
        if not self.check(seq):
            return False
        if seq > self.highest:
            shift = seq - self.highest
            self._bits = ((self._bits << shift) | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            self.highest = seq
        else:
            self._bits |= 1 << (self.highest - seq)
        return True


class SessionGuard:
    """Replay protection for one peer across its sessions.

    A peer (a camera, or a station seen by a sender) has one current session.
    A datagram from another session is accepted only if that session started
    later, or if the current session has gone quiet (``stale``) and the new
    one was never seen before: a recorded old session cannot be replayed over
    a live one. Retired session ids are remembered, bounded.
    """

    def __init__(self, *, retired_limit: int = 64) -> None:
        self.session: bytes | None = None
        self.window = ReplayWindow()
        self._retired: OrderedDict[bytes, None] = OrderedDict()
        self._retired_limit = retired_limit

    def check(self, header: Header, *, stale: bool) -> bool | None:
        """True: same session and fresh. None: acceptable new session. False: replay."""
        if header.session == self.session:
            return self.window.check(header.seq)
        if header.session in self._retired:
            return False
        if self.session is None or stale or header.session_start_us > session_start_us(self.session):
            return None
        return False

    def accept(self, header: Header, *, stale: bool) -> tuple[bool, bool]:
        """Record the datagram. Returns (accepted, started a new session)."""
        verdict = self.check(header, stale=stale)
        if verdict is False:
            return False, False
        new = verdict is None
        if new:
            if self.session is not None:
                self._retired[self.session] = None
                if len(self._retired) > self._retired_limit:
                    self._retired.popitem(last=False)
            self.session = header.session
            self.window = ReplayWindow()
        self.window.accept(header.seq)
        return True, new


# --------------------------------------------------------------------------
# Reassembly


class FrameAssembly:
    """Collects one frame's chunks and parity; recovers one loss per group."""

    __slots__ = (
        "_buf",
        "_group_missing",
        "_have",
        "_missing",
        "_parity",
        "chunk_size",
        "count",
        "datagrams",
        "frame_id",
        "frame_len",
        "groups",
        "recovered",
        "started",
        "timestamp_us",
    )

    def __init__(self, header: Header, started: float) -> None:
        self.frame_id = header.frame_id
        self.count = header.count
        self.groups = header.groups
        self.chunk_size = header.chunk_size
        self.frame_len = header.frame_len
        self.timestamp_us = header.timestamp_us
        self.started = started
        self._buf = bytearray(self.count * self.chunk_size)
        self._have = bytearray(self.count)
        self._missing = self.count
        groups = max(self.groups, 1)
        self._group_missing = [len(range(g, self.count, groups)) for g in range(groups)]
        self._parity: dict[int, bytes] = {}
        self.datagrams = 0
        self.recovered = False

    def matches(self, header: Header) -> bool:
        return (
            header.count == self.count
            and header.groups == self.groups
            and header.chunk_size == self.chunk_size
            and header.frame_len == self.frame_len
        )

    def add(self, header: Header, payload: bytes) -> bytes | None:
        """Add a chunk; return the whole frame once it is complete or recoverable."""
        self.datagrams += 1
        if header.type is MsgType.PARITY:
            self._parity.setdefault(header.index, payload)
        elif not self._have[header.index]:
            start = header.index * self.chunk_size
            self._buf[start : start + len(payload)] = payload
            self._have[header.index] = 1
            self._missing -= 1
            if self.groups:
                self._group_missing[header.index % self.groups] -= 1
        return self._complete()

    def _complete(self) -> bytes | None:
        if self._missing == 0:
            return bytes(self._buf[: self.frame_len])
        if not self.groups or self._missing > self.groups:
            return None
        for g, missing in enumerate(self._group_missing):
            if missing > 1 or (missing == 1 and g not in self._parity):
                return None
        for g, missing in enumerate(self._group_missing):
            if missing == 1:
                self._recover(g)
        return bytes(self._buf[: self.frame_len])

    def _recover(self, group: int) -> None:
        size = self.chunk_size
        acc = np.frombuffer(self._parity[group], dtype=np.uint8).copy()
        lost = -1
        for i in range(group, self.count, self.groups):
            if self._have[i]:
                acc ^= np.frombuffer(self._buf, dtype=np.uint8, count=size, offset=i * size)
            else:
                lost = i
        length = chunk_length(lost, self.count, size, self.frame_len)
        self._buf[lost * size : lost * size + length] = acc[:length].tobytes()
        self._have[lost] = 1
        self._missing -= 1
        self._group_missing[group] = 0
        self.recovered = True
