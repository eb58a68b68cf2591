"""HELLO, SUBSCRIBE, BYE and ACCEPT: the control messages' payloads, encoded and parsed without raising."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from network.wire.header import PROTOCOL, MsgType, Reason, Rejection

MAX_NAME_BYTES = 64
COOKIE_SIZE = 8


@dataclass(frozen=True, slots=True)
class Hello:
    """A sender introduces itself. ``cookie`` must be echoed in SUBSCRIBE.

    ``protocol`` is the highest protocol the sender speaks (2: it may send FACES). Protocol-1 stations
    read and ignore it, which is why new abilities are announced here and not in a new HELLO layout:
    their parser refuses a HELLO with any byte after the name.
    """

    name: str
    width: int
    height: int
    fps: float
    protocol: int = PROTOCOL
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


@dataclass(frozen=True, slots=True)
class Accept:
    """Protocol 2, station to sender: "send me FACES for the next ``lease_s`` seconds".

    A station sends it only in answer to a HELLO that said protocol 2 or more, so a protocol-1 sender
    never sees it; and a sender sends FACES only to a station whose ACCEPT is current, so a
    protocol-1 station is never sent FACES (which it would refuse as malformed, and count as loss).
    """

    lease_s: int
    faces: bool = True


ControlMessage = Hello | Subscribe | Bye | Accept

_HELLO = struct.Struct("!HHIB8sB")
_SUBSCRIBE = struct.Struct("!H8sB")
_ACCEPT = struct.Struct("!HB")
_ACCEPT_FACES = 1


def parse_control(kind: MsgType, payload: bytes) -> ControlMessage | Rejection:
    """Decode a HELLO, SUBSCRIBE, BYE or ACCEPT payload; never raises."""
    parse = _PARSERS.get(kind)
    if parse is None:
        return Rejection(Reason.MALFORMED, f"{kind.name} is not a control message")
    try:
        return parse(payload)
    except (struct.error, UnicodeDecodeError, _BadName) as exc:
        return Rejection(Reason.MALFORMED, f"bad {kind.name} payload: {exc}")


def _parse_hello(payload: bytes) -> Hello | Rejection:
    width, height, fps_milli, proto, cookie, name_len = _HELLO.unpack_from(payload)
    name = _read_name(payload, _HELLO.size, name_len)
    if not name:
        return Rejection(Reason.MALFORMED, "HELLO without a camera name")
    return Hello(name, width, height, fps_milli / 1000.0, proto, cookie)


def _parse_subscribe(payload: bytes) -> Subscribe | Rejection:
    lease_s, cookie, name_len = _SUBSCRIBE.unpack_from(payload)
    if lease_s == 0:
        return Rejection(Reason.MALFORMED, "SUBSCRIBE with a zero lease")
    return Subscribe(lease_s, _read_name(payload, _SUBSCRIBE.size, name_len), cookie)


def _parse_bye(payload: bytes) -> Bye:
    if not payload:
        return Bye()
    return Bye(_read_name(payload, 1, payload[0]))


def _parse_accept(payload: bytes) -> Accept | Rejection:
    if len(payload) != _ACCEPT.size:
        return Rejection(Reason.MALFORMED, f"ACCEPT of {len(payload)} bytes")
    lease_s, kinds = _ACCEPT.unpack(payload)
    if lease_s == 0 or kinds & ~_ACCEPT_FACES:
        return Rejection(Reason.MALFORMED, f"ACCEPT lease {lease_s} kinds {kinds}")
    return Accept(lease_s, bool(kinds & _ACCEPT_FACES))


_PARSERS: dict[MsgType, Callable[[bytes], ControlMessage | Rejection]] = {
    MsgType.HELLO: _parse_hello,
    MsgType.SUBSCRIBE: _parse_subscribe,
    MsgType.BYE: _parse_bye,
    MsgType.ACCEPT: _parse_accept,
}


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
    if isinstance(msg, Accept):
        if not 0 < msg.lease_s <= 0xFFFF:
            raise ValueError(f"an ACCEPT lease is 1..65535 s, not {msg.lease_s}")
        return MsgType.ACCEPT, _ACCEPT.pack(msg.lease_s, _ACCEPT_FACES if msg.faces else 0)
    if msg.reason:
        return MsgType.BYE, _encode_name(msg.reason)
    return MsgType.BYE, b""
