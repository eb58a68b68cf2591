"""Keys, sessions, and sealing: ChaCha20-Poly1305 under a per-session key, a nonce never reused.

Each sender (and each station) starts a *session* with a random 16-byte id whose first 8 bytes are
its start time in microseconds. The session key is HKDF-SHA256(station key, info=session id), and
the nonce is the 64-bit datagram sequence number, so a nonce is never reused under one key: the
sequence only grows within a session, and two sessions share a key only if their random ids collide.
The header is authenticated as associated data; the payload is encrypted.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections import OrderedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from network.wire.control import ControlMessage, encode_control
from network.wire.fec import DEFAULT_GROUP_SIZE, split_frame
from network.wire.header import (
    HEADER,
    MAX_FACES_BYTES,
    MAX_FRAME_BYTES,
    MAX_PAYLOAD,
    MIN_CHUNK,
    Datagram,
    Header,
    MsgType,
    Reason,
    Rejection,
    parse_header,
)

KEY_SIZE = 32


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


def camera_id_for(name: str) -> int:
    """A stable 32-bit camera id derived from the camera name (never 0)."""
    value = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")
    return value or 1


def _session_cipher(key: bytes, session: bytes) -> ChaCha20Poly1305:
    subkey = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=b"facestation/1 " + session).derive(key)
    return ChaCha20Poly1305(subkey)


def _nonce(seq: int) -> bytes:
    return b"\x00\x00\x00\x00" + seq.to_bytes(8, "big")


class Sealer:
    """Seals outgoing datagrams for one session; the sequence never repeats.

    Not thread-safe: a sender that seals from two threads holds one lock around every call.
    """

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
        return self._chunked(MsgType.FRAME, MsgType.PARITY, MAX_FRAME_BYTES, frame_id, data, timestamp_us, group_size)

    def faces(
        self, frame_id: int, payload: bytes, timestamp_us: int, *, group_size: int = DEFAULT_GROUP_SIZE
    ) -> list[bytes]:
        """The faces message of frame ``frame_id`` (network/wire/faces.py), chunked and sealed like a frame."""
        return self._chunked(
            MsgType.FACES, MsgType.FACES_PARITY, MAX_FACES_BYTES, frame_id, payload, timestamp_us, group_size
        )

    def _chunked(
        self,
        data_type: MsgType,
        parity_type: MsgType,
        ceiling: int,
        frame_id: int,
        data: bytes,
        timestamp_us: int,
        group_size: int,
    ) -> list[bytes]:
        chunks, parity, groups = split_frame(data, self.chunk_size, group_size, ceiling=ceiling)
        fields = {
            "frame_id": frame_id & 0xFFFFFFFF,
            "count": len(chunks),
            "groups": groups,
            "chunk_size": self.chunk_size,
            "frame_len": len(data),
            "timestamp_us": timestamp_us,
        }
        out = [self.seal(data_type, c, index=i, **fields) for i, c in enumerate(chunks)]
        out += [self.seal(parity_type, p, index=g, **fields) for g, p in enumerate(parity)]
        return out


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
