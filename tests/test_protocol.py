"""Property and unit tests for network/protocol.py (pure: no sockets, no threads)."""

from __future__ import annotations

import random
import string
import struct
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from network import protocol
from network.protocol import (
    DEFAULT_GROUP_SIZE,
    HEADER,
    KEY_SIZE,
    MAGIC,
    MAX_CHUNKS,
    MAX_CONTROL_PAYLOAD,
    MAX_DATAGRAM,
    MAX_FRAME_BYTES,
    MAX_NAME_BYTES,
    MAX_PAYLOAD,
    MIN_CHUNK,
    REPLAY_WINDOW,
    SESSION_SIZE,
    TAG_SIZE,
    VERSION,
    Bye,
    Datagram,
    FrameAssembly,
    Header,
    Hello,
    KeyError_,
    MsgType,
    Opener,
    Reason,
    Rejection,
    ReplayWindow,
    Sealer,
    SessionGuard,
    Subscribe,
    decode_key,
    encode_control,
    encode_key,
    new_key,
    new_session,
    parse_control,
    parse_header,
    session_start_us,
)

KEY = bytes(range(KEY_SIZE))
OTHER_KEY = bytes(range(100, 100 + KEY_SIZE))
SEQ_OFFSET = 2 + 1 + 1 + 4 + SESSION_SIZE  # magic, version, type, camera id, session
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------
# Helpers


def _data(seed: int, size: int) -> bytes:
    return np.random.default_rng(seed).bytes(size)


def _open_all(opener: Opener, datagrams: list[bytes]) -> list[Datagram]:
    out = []
    for raw in datagrams:
        assert len(raw) <= MAX_DATAGRAM
        opened = opener.open(raw)
        assert isinstance(opened, Datagram), opened
        out.append(opened)
    return out


def _feed(opened: list[Datagram], *, stop_early: bool = False) -> list[bytes]:
    """Feed datagrams into one FrameAssembly; return every non-None result."""
    assembly: FrameAssembly | None = None
    results: list[bytes] = []
    for dg in opened:
        if assembly is None:
            assembly = FrameAssembly(dg.header, 0.0)
        assert assembly.matches(dg.header)
        result = assembly.add(dg.header, dg.payload)
        if result is not None:
            results.append(result)
            if stop_early:
                break
    return results


def _seal_frame(data: bytes, chunk_size: int, group_size: int) -> tuple[list[Datagram], list[Datagram]]:
    """Seal and open a frame; return (data chunks, parity chunks)."""
    sealer = Sealer(KEY, 7, 1_000, chunk_size=chunk_size)
    opened = _open_all(Opener(KEY), sealer.frame(42, data, 123, group_size=group_size))
    chunks = [d for d in opened if d.header.type is MsgType.FRAME]
    parity = [d for d in opened if d.header.type is MsgType.PARITY]
    assert opened == chunks + parity  # parity datagrams come last
    return chunks, parity


# --------------------------------------------------------------------------
# 1. Chunking round trips


# Cheap sizes (small k) are listed three times, expensive ones (up to 4 MiB) once,
# so a run stays fast; the explicit examples below always cover MAX_FRAME_BYTES.
_SMALL_KINDS: list[Callable[[int, int], int]] = [
    lambda cs, k: 1,
    lambda cs, k: cs - 1,
    lambda cs, k: cs,
    lambda cs, k: cs + 1,
    lambda cs, k: k * cs,
    lambda cs, k: k * cs - 1,
    lambda cs, k: k * cs + 1,
]
_BIG_KINDS: list[Callable[[int, int], int]] = [
    lambda cs, k: MAX_FRAME_BYTES,
    lambda cs, k: MAX_FRAME_BYTES - 1,
    lambda cs, k: (MAX_FRAME_BYTES // cs) * cs,
    lambda cs, k: (MAX_FRAME_BYTES // cs) * cs - 1,
]


@st.composite
def frame_shapes(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(chunk_size, frame size, group_size, seed), biased to boundaries."""
    chunk_size = draw(
        st.one_of(
            st.sampled_from([MIN_CHUNK, MIN_CHUNK + 1, MAX_PAYLOAD - 1, MAX_PAYLOAD]),
            st.integers(MIN_CHUNK, MAX_PAYLOAD),
        )
    )
    kind = draw(st.sampled_from(["small"] * 3 + ["random_small"] * 2 + ["big", "random_big"]))
    if kind == "small":
        k = draw(st.integers(2, 40))
        size = _SMALL_KINDS[draw(st.integers(0, len(_SMALL_KINDS) - 1))](chunk_size, k)
    elif kind == "big":
        size = _BIG_KINDS[draw(st.integers(0, len(_BIG_KINDS) - 1))](chunk_size, 0)
    elif kind == "random_small":
        size = draw(st.integers(1, 64 * 1024))
    else:
        size = draw(st.integers(1, MAX_FRAME_BYTES))
    group_size = draw(st.sampled_from([0, 1, 2, 3, DEFAULT_GROUP_SIZE, 16, 1000, 0xFFFF]))
    return chunk_size, size, group_size, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame_shapes())
@example((MAX_PAYLOAD, MAX_FRAME_BYTES, DEFAULT_GROUP_SIZE, 1))
@example((MIN_CHUNK, MAX_FRAME_BYTES, DEFAULT_GROUP_SIZE, 2))
@example((MAX_PAYLOAD, 1, DEFAULT_GROUP_SIZE, 3))
def test_chunking_round_trip(shape: tuple[int, int, int, int]) -> None:
    chunk_size, size, group_size, seed = shape
    assert 1 <= size <= MAX_FRAME_BYTES
    data = _data(seed, size)
    chunks, parity = _seal_frame(data, chunk_size, group_size)
    count = -(-size // chunk_size)
    groups = 0 if group_size <= 0 else -(-count // group_size)
    assert len(chunks) == count
    assert len(parity) == groups
    for i, dg in enumerate(chunks):
        h = dg.header
        assert (h.index, h.count, h.groups, h.chunk_size, h.frame_len) == (i, count, groups, chunk_size, size)
        assert (h.frame_id, h.timestamp_us, h.camera_id) == (42, 123, 7)
        assert len(dg.payload) == protocol.chunk_length(i, count, chunk_size, size)
    assert b"".join(d.payload for d in chunks) == data
    # Big frames: stop at the first result (each later add copies the frame again).
    results = _feed(chunks + parity, stop_early=size > 256 * 1024)
    assert results, "frame was never completed"
    assert all(r == data for r in results)


def test_split_frame_refuses_empty_and_oversized() -> None:
    with pytest.raises(ValueError):
        protocol.split_frame(b"", MAX_PAYLOAD, DEFAULT_GROUP_SIZE)
    with pytest.raises(ValueError):
        protocol.split_frame(bytes(MAX_FRAME_BYTES + 1), MAX_PAYLOAD, DEFAULT_GROUP_SIZE)
    sealer = Sealer(KEY, 1, 0)
    with pytest.raises(ValueError):
        sealer.frame(1, b"", 0)


# --------------------------------------------------------------------------
# 2. Forward error correction


@st.composite
def fec_cases(draw: st.DrawFn) -> tuple[bytes, int, int]:
    chunk_size = draw(st.sampled_from([MIN_CHUNK, 300, MAX_PAYLOAD]))
    size = draw(st.integers(1, 40 * chunk_size))
    group_size = draw(st.integers(1, 16))
    return _data(draw(st.integers(0, 2**32 - 1)), size), chunk_size, group_size


@FAST
@given(fec_cases(), st.data(), st.randoms(use_true_random=False))
def test_fec_recovers_one_loss_per_group(case: tuple[bytes, int, int], data: st.DataObject, rnd: random.Random) -> None:
    frame, chunk_size, group_size = case
    chunks, parity = _seal_frame(frame, chunk_size, group_size)
    groups = len(parity)
    keep_chunks = list(chunks)
    keep_parity = list(parity)
    for g in range(groups):
        members = list(range(g, len(chunks), groups))
        lost = data.draw(st.sampled_from([None, *members]), label=f"lost in group {g}")
        if lost is not None:
            keep_chunks.remove(chunks[lost])
        elif data.draw(st.booleans(), label=f"drop parity {g}"):
            keep_parity.remove(parity[g])  # no data lost here: parity not needed
    arrivals = keep_chunks + keep_parity
    rnd.shuffle(arrivals)
    results = _feed(arrivals)
    assert results, "frame not recovered"
    assert all(r == frame for r in results)


@FAST
@given(fec_cases(), st.data(), st.randoms(use_true_random=False))
def test_fec_two_losses_in_one_group_yield_nothing(
    case: tuple[bytes, int, int], data: st.DataObject, rnd: random.Random
) -> None:
    frame, chunk_size, group_size = case
    chunks, parity = _seal_frame(frame, chunk_size, group_size)
    groups = len(parity)
    big = [g for g in range(groups) if len(range(g, len(chunks), groups)) >= 2]
    if not big:
        return  # every group has one chunk: nothing to test for this shape
    g = data.draw(st.sampled_from(big), label="group")
    lost = data.draw(
        st.lists(st.sampled_from(list(range(g, len(chunks), groups))), min_size=2, max_size=2, unique=True)
    )
    arrivals = [c for i, c in enumerate(chunks) if i not in lost] + parity
    rnd.shuffle(arrivals)
    assert _feed(arrivals) == []


@given(st.integers(1, MAX_PAYLOAD), st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_single_chunk_frame_survives_losing_its_chunk(size: int, seed: int) -> None:
    frame = _data(seed, size)
    chunks, parity = _seal_frame(frame, MAX_PAYLOAD, DEFAULT_GROUP_SIZE)
    assert len(chunks) == 1 and len(parity) == 1
    assert _feed(parity) == [frame]


def test_fec_parity_plus_chunk_loss_in_same_group_yields_nothing() -> None:
    frame = _data(5, 10 * MIN_CHUNK)
    chunks, parity = _seal_frame(frame, MIN_CHUNK, 4)
    assert len(parity) == 3
    arrivals = chunks[1:] + parity[1:]  # chunk 0 and parity 0 are both in group 0
    assert _feed(arrivals) == []


# --------------------------------------------------------------------------
# 3. Parsing never raises; wire lengths are bounded before use


def _check_accepted(header: Header, raw: bytes) -> None:
    """Invariants of any header that parse_header accepted."""
    assert len(raw) <= MAX_DATAGRAM
    payload_len = len(raw) - HEADER.size - TAG_SIZE
    assert payload_len >= 0
    if header.type in protocol.CHUNKED:
        ceiling = MAX_FRAME_BYTES if header.type in (MsgType.FRAME, MsgType.PARITY) else protocol.MAX_FACES_BYTES
        assert 0 < header.frame_len <= ceiling
        assert MIN_CHUNK <= header.chunk_size <= MAX_PAYLOAD
        assert 0 < header.count <= MAX_CHUNKS
        assert header.count * header.chunk_size <= ceiling + header.chunk_size
        assert header.groups <= header.count
        if header.type not in protocol.PARITY_TYPES:
            assert header.index < header.count
        else:
            assert header.index < header.groups
        # Creating and feeding an assembly from an accepted header must be safe.
        assembly = FrameAssembly(header, 0.0)
        assembly.add(header, bytes(payload_len))
    else:
        assert (header.index, header.count, header.groups, header.chunk_size, header.frame_len, header.frame_id) == (
            0,
            0,
            0,
            0,
            0,
            0,
        )
        assert payload_len <= MAX_CONTROL_PAYLOAD


def _check_any(raw: bytes) -> None:
    parsed = parse_header(raw)
    assert isinstance(parsed, (Header, Rejection))
    if isinstance(parsed, Rejection):
        assert isinstance(parsed.reason, Reason)
    else:
        _check_accepted(parsed, raw)
    opened = Opener(KEY).open(raw)
    assert isinstance(opened, (Datagram, Rejection))
    if isinstance(opened, Rejection):
        assert isinstance(opened.reason, Reason)
        if isinstance(parsed, Rejection):
            assert opened == parsed
    else:
        assert isinstance(parsed, Header) and opened.header == parsed
    if len(raw) > MAX_DATAGRAM:
        assert isinstance(parsed, Rejection) and parsed.reason is Reason.OVERSIZED


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=1600), st.binary(max_size=1400).map(lambda b: MAGIC + bytes([VERSION]) + b)))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    _check_any(raw)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=MAX_DATAGRAM + 1, max_size=4 * MAX_DATAGRAM))
def test_oversized_datagram_rejected(raw: bytes) -> None:
    assert parse_header(raw) == Rejection(Reason.OVERSIZED, f"datagram of {len(raw)} bytes")
    opened = Opener(KEY).open(raw)
    assert isinstance(opened, Rejection) and opened.reason is Reason.OVERSIZED


def _u(bits: int) -> st.SearchStrategy[int]:
    top = 2**bits - 1
    return st.one_of(st.sampled_from([0, 1, top]), st.integers(0, top))


@st.composite
def arbitrary_headers(draw: st.DrawFn) -> bytes:
    """A header packed with arbitrary field values, then an arbitrary payload."""
    magic = draw(st.one_of(st.just(MAGIC), st.binary(min_size=2, max_size=2)))
    version = draw(st.one_of(st.just(VERSION), _u(8)))
    mtype = draw(st.one_of(st.sampled_from([int(t) for t in MsgType]), _u(8)))
    fields = (
        draw(_u(32)),
        draw(st.binary(min_size=SESSION_SIZE, max_size=SESSION_SIZE)),
        draw(_u(64)),
        draw(_u(32)),
        draw(_u(16)),
        draw(_u(16)),
        draw(_u(16)),
        draw(st.one_of(_u(16), st.integers(MIN_CHUNK, MAX_PAYLOAD))),
        draw(st.one_of(_u(32), st.integers(0, MAX_FRAME_BYTES + 1))),
        draw(_u(64)),
    )
    header = HEADER.pack(magic, version, mtype, *fields)
    payload_len = draw(st.integers(0, MAX_DATAGRAM + 200 - HEADER.size))
    return header + draw(st.binary(min_size=payload_len, max_size=payload_len))


@st.composite
def near_valid_headers(draw: st.DrawFn) -> bytes:
    """Consistent frame/parity/control fields, then optionally one field perturbed."""
    mtype = draw(st.sampled_from(list(MsgType)))
    chunk_size = draw(st.integers(MIN_CHUNK, MAX_PAYLOAD))
    faces = mtype in (MsgType.FACES, MsgType.FACES_PARITY)
    frame_len = draw(st.integers(1, protocol.MAX_FACES_BYTES if faces else MAX_FRAME_BYTES))
    count = -(-frame_len // chunk_size)
    groups = draw(st.integers(0, count))
    if mtype in (MsgType.FRAME, MsgType.FACES):
        index = draw(st.integers(0, count - 1))
        payload_len = protocol.chunk_length(index, count, chunk_size, frame_len)
    elif mtype in protocol.PARITY_TYPES:
        groups = max(groups, 1)
        index = draw(st.integers(0, groups - 1))
        payload_len = chunk_size
    else:
        index = count = groups = chunk_size = frame_len = 0
        payload_len = draw(st.integers(0, MAX_CONTROL_PAYLOAD))
    values = {
        "index": index,
        "count": count,
        "groups": groups,
        "chunk_size": chunk_size,
        "frame_len": frame_len,
        "frame_id": draw(_u(32)) if mtype in protocol.CHUNKED else 0,
    }
    perturb = draw(st.sampled_from([None, *values, "payload"]))
    if perturb == "payload":
        payload_len = draw(st.integers(0, MAX_DATAGRAM - HEADER.size - TAG_SIZE + 50))
    elif perturb is not None:
        values[perturb] = draw(_u(32 if perturb in ("frame_len", "frame_id") else 16))
    header = Header(
        mtype,
        draw(_u(32)),
        draw(st.binary(min_size=16, max_size=16)),
        draw(_u(64)),
        timestamp_us=draw(_u(64)),
        **values,
    )
    return header.pack() + bytes(payload_len) + bytes(TAG_SIZE)


@settings(max_examples=300, deadline=None)
@given(st.one_of(arbitrary_headers(), near_valid_headers()))
def test_structured_headers_never_raise_and_are_bounded(raw: bytes) -> None:
    _check_any(raw)


@settings(max_examples=100, deadline=None)
@given(near_valid_headers())
def test_sealed_structured_headers_open_iff_parse_accepts(raw: bytes) -> None:
    parsed = parse_header(raw)
    if isinstance(parsed, Rejection):
        return
    # Re-seal the same fields properly: opening must then succeed.
    payload = raw[HEADER.size : -TAG_SIZE]
    sealer = Sealer(KEY, parsed.camera_id, 0)
    fields = {
        "frame_id": parsed.frame_id,
        "index": parsed.index,
        "count": parsed.count,
        "groups": parsed.groups,
        "chunk_size": parsed.chunk_size,
        "frame_len": parsed.frame_len,
        "timestamp_us": parsed.timestamp_us,
    }
    sealed = sealer.seal(parsed.type, payload, **fields)
    opened = Opener(KEY).open(sealed)
    assert isinstance(opened, Datagram)
    assert opened.payload == payload
    assert opened.header.seq == 0 and opened.header.session == sealer.session


def test_frame_len_4gb_is_oversized() -> None:
    header = Header(MsgType.FRAME, 1, bytes(16), 0, count=1, chunk_size=MAX_PAYLOAD, frame_len=2**32 - 1)
    raw = header.pack() + bytes(MAX_PAYLOAD) + bytes(TAG_SIZE)
    result = parse_header(raw)
    assert isinstance(result, Rejection) and result.reason is Reason.OVERSIZED and result.camera_id == 1
    opened = Opener(KEY).open(raw)
    assert isinstance(opened, Rejection) and opened.reason is Reason.OVERSIZED


def test_short_and_bad_header_reasons() -> None:
    sealed = Sealer(KEY, 9, 0).control(Bye("x"))
    assert isinstance(Opener(KEY).open(sealed), Datagram)
    for n in range(HEADER.size + TAG_SIZE):
        r = parse_header(sealed[:n])
        assert isinstance(r, Rejection) and r.reason is Reason.MALFORMED
    r = parse_header(b"XS" + sealed[2:])
    assert isinstance(r, Rejection) and r.reason is Reason.BAD_MAGIC
    r = parse_header(sealed[:2] + bytes([VERSION + 1]) + sealed[3:])
    assert isinstance(r, Rejection) and r.reason is Reason.BAD_VERSION and r.camera_id == 9
    r = parse_header(sealed[:3] + b"\x63" + sealed[4:])
    assert isinstance(r, Rejection) and r.reason is Reason.MALFORMED
    big = Sealer(KEY, 9, 0).seal(MsgType.BYE, bytes(MAX_CONTROL_PAYLOAD + 1))
    r = parse_header(big)
    assert isinstance(r, Rejection) and r.reason is Reason.OVERSIZED


# --------------------------------------------------------------------------
# 4. Control messages

_NAME_CHARS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
names = st.text(_NAME_CHARS, max_size=MAX_NAME_BYTES).filter(lambda s: len(s.encode("utf-8")) <= MAX_NAME_BYTES)
long_names = st.text(_NAME_CHARS, min_size=17, max_size=200).filter(lambda s: len(s.encode("utf-8")) > MAX_NAME_BYTES)
cookies = st.binary(min_size=protocol.COOKIE_SIZE, max_size=protocol.COOKIE_SIZE)


def _control_payloads() -> st.SearchStrategy[bytes]:
    name_bytes = st.binary(max_size=80)

    def hello(t: tuple[int, int, int, int, bytes, int, bytes]) -> bytes:
        w, h, fps, proto, cookie, n, name = t
        return struct.pack("!HHIB8sB", w, h, fps, proto, cookie, n) + name

    def subscribe(t: tuple[int, bytes, int, bytes]) -> bytes:
        lease, cookie, n, name = t
        return struct.pack("!H8sB", lease, cookie, n) + name

    return st.one_of(
        st.binary(max_size=MAX_CONTROL_PAYLOAD + 10),
        st.tuples(_u(16), _u(16), _u(32), _u(8), cookies, _u(8), name_bytes).map(hello),
        st.tuples(_u(16), cookies, _u(8), name_bytes).map(subscribe),
        st.tuples(_u(8), name_bytes).map(lambda t: bytes([t[0]]) + t[1]),
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(MsgType)), _control_payloads())
def test_parse_control_never_raises(kind: MsgType, payload: bytes) -> None:
    result = parse_control(kind, payload)
    assert isinstance(result, (Hello, Subscribe, Bye, Rejection))
    if isinstance(result, Rejection):
        assert result.reason is Reason.MALFORMED
    else:
        assert kind in (MsgType.HELLO, MsgType.SUBSCRIBE, MsgType.BYE)
        name = (
            result.name
            if isinstance(result, Hello)
            else result.station
            if isinstance(result, Subscribe)
            else result.reason
        )
        assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
        assert all(ord(c) >= 32 for c in name)
        # Re-encoding is canonical except that BYE b"\x00" and b"" both mean Bye("").
        assert parse_control(*encode_control(result)) == result
        if payload != b"\x00":
            assert encode_control(result) == (kind, payload)


@FAST
@given(
    names.filter(bool),
    _u(16),
    _u(16),
    st.integers(0, 2**32 - 1).map(lambda m: m / 1000.0),
    _u(8),
    cookies,
)
def test_hello_round_trip(name: str, width: int, height: int, fps: float, proto: int, cookie: bytes) -> None:
    msg = Hello(name, width, height, fps, proto, cookie)
    kind, payload = encode_control(msg)
    assert kind is MsgType.HELLO and len(payload) <= MAX_CONTROL_PAYLOAD
    assert parse_control(kind, payload) == msg


@FAST
@given(names, st.integers(1, 0xFFFF), cookies)
def test_subscribe_round_trip(station: str, lease_s: int, cookie: bytes) -> None:
    msg = Subscribe(lease_s, station, cookie)
    kind, payload = encode_control(msg)
    assert kind is MsgType.SUBSCRIBE and len(payload) <= MAX_CONTROL_PAYLOAD
    assert parse_control(kind, payload) == msg


@FAST
@given(names)
def test_bye_round_trip(reason: str) -> None:
    kind, payload = encode_control(Bye(reason))
    assert kind is MsgType.BYE
    assert parse_control(kind, payload) == Bye(reason)


@FAST
@given(names.filter(bool))
def test_control_round_trip_through_sealer(name: str) -> None:
    sealer = Sealer(KEY, 3, 0)
    opener = Opener(KEY)
    for msg in (Hello(name, 640, 480, 30.0), Subscribe(30, name), Bye(name), Bye()):
        opened = opener.open(sealer.control(msg, camera_id=77))
        assert isinstance(opened, Datagram) and opened.header.camera_id == 77
        assert parse_control(opened.header.type, opened.payload) == msg


@FAST
@given(long_names)
def test_too_long_names_refused(name: str) -> None:
    for msg in (Hello(name, 1, 1, 1.0), Subscribe(1, name), Bye(name)):
        with pytest.raises(ValueError):
            encode_control(msg)


@given(names, st.characters(codec="ascii", max_codepoint=31), st.integers(0, 64))
@settings(max_examples=30, deadline=None)
def test_control_characters_in_names_refused(name: str, ctrl: str, where: int) -> None:
    bad = name[:where] + ctrl + name[where:]
    for msg in (Hello(bad, 1, 1, 1.0), Subscribe(1, bad), Bye(bad)):
        with pytest.raises(ValueError):
            encode_control(msg)


def test_control_edge_cases() -> None:
    assert parse_control(MsgType.BYE, b"") == Bye()
    empty_hello = struct.pack("!HHIB8sB", 1, 1, 1, 1, bytes(8), 0)
    r = parse_control(MsgType.HELLO, empty_hello)
    assert isinstance(r, Rejection) and r.reason is Reason.MALFORMED
    with pytest.raises(ValueError, match="camera name"):
        encode_control(Hello("", 1, 1, 1.0))  # what the parser refuses is never built
    zero_lease = struct.pack("!H8sB", 0, bytes(8), 0)
    r = parse_control(MsgType.SUBSCRIBE, zero_lease)
    assert isinstance(r, Rejection) and r.reason is Reason.MALFORMED
    for kind in (MsgType.FRAME, MsgType.PARITY):
        r = parse_control(kind, b"\x00" * 20)
        assert isinstance(r, Rejection) and r.reason is Reason.MALFORMED
    r = parse_control(MsgType.BYE, b"\x02\xff\xfe")  # invalid UTF-8
    assert isinstance(r, Rejection) and r.reason is Reason.MALFORMED
    r = parse_control(MsgType.BYE, b"\x01a\x00")  # length does not match
    assert isinstance(r, Rejection) and r.reason is Reason.MALFORMED


# --------------------------------------------------------------------------
# 5. Tampering


def _sample_datagrams() -> list[bytes]:
    sealer = Sealer(KEY, 0xDEADBEEF, 10**9, chunk_size=MIN_CHUNK)
    frame = sealer.frame(3, _data(9, 3 * MIN_CHUNK + 17), 555, group_size=2)
    return [frame[0], frame[3], frame[-1], sealer.control(Hello("cam", 640, 480, 25.0)), sealer.control(Bye())]


def _tamper_ok(original: bytes, byte: int, result: Datagram | Rejection) -> None:
    assert isinstance(result, Rejection), f"bit flip at byte {byte} was accepted"
    if byte < 2:
        assert result.reason is Reason.BAD_MAGIC
    elif byte == 2:
        assert result.reason is Reason.BAD_VERSION
    elif byte < HEADER.size:
        assert result.reason in (Reason.AUTH, Reason.MALFORMED, Reason.OVERSIZED)
    else:
        assert result.reason is Reason.AUTH


def test_every_single_bit_flip_is_rejected() -> None:
    opener = Opener(KEY)
    for raw in _sample_datagrams():
        assert isinstance(opener.open(raw), Datagram)
        for byte in range(len(raw)):
            for bit in range(8):
                tampered = bytearray(raw)
                tampered[byte] ^= 1 << bit
                _tamper_ok(raw, byte, opener.open(bytes(tampered)))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, MAX_PAYLOAD), st.data())
def test_random_bit_flip_in_full_chunk_is_rejected(seed: int, size: int, data: st.DataObject) -> None:
    raw = Sealer(KEY, 1, 0).frame(1, _data(seed, size), 0)[0]
    assert isinstance(Opener(KEY).open(raw), Datagram)
    byte = data.draw(st.integers(0, len(raw) - 1))
    tampered = bytearray(raw)
    tampered[byte] ^= 1 << data.draw(st.integers(0, 7))
    _tamper_ok(raw, byte, Opener(KEY).open(bytes(tampered)))


def test_truncated_or_extended_datagrams_rejected() -> None:
    opener = Opener(KEY)
    for raw in _sample_datagrams():
        for cut in range(1, 40):
            assert isinstance(opener.open(raw[:-cut]), Rejection)
        for extra in (b"\x00", b"\x00" * 16):
            assert isinstance(opener.open(raw + extra), Rejection)


def test_other_key_is_auth_failure() -> None:
    opener = Opener(OTHER_KEY)
    for raw in _sample_datagrams():
        result = opener.open(raw)
        assert isinstance(result, Rejection) and result.reason is Reason.AUTH
        assert result.camera_id == 0xDEADBEEF


def test_opener_cache_eviction_keeps_working() -> None:
    opener = Opener(KEY, cache_size=1)
    sealers = [Sealer(KEY, i, i) for i in range(3)]
    for _ in range(3):
        for s in sealers:
            assert isinstance(opener.open(s.control(Bye("x"))), Datagram)


# --------------------------------------------------------------------------
# 6. Replay protection


@settings(max_examples=50, deadline=None)
@given(st.integers(1, REPLAY_WINDOW).flatmap(lambda n: st.permutations(list(range(n)))), _u(32))
def test_replay_window_out_of_order_within_window(order: list[int], base: int) -> None:
    window = ReplayWindow()
    for seq in order:
        assert window.check(base + seq)
        assert window.accept(base + seq)
        assert not window.check(base + seq)
        assert not window.accept(base + seq)
    for seq in order:
        assert not window.accept(base + seq)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 70), st.lists(st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1)), max_size=200))
def test_replay_window_matches_model(size: int, seqs: list[int]) -> None:
    window = ReplayWindow(size)
    seen: set[int] = set()
    highest = -1
    for seq in seqs:
        expected = seq not in seen and seq > highest - size
        assert window.check(seq) is expected
        assert window.accept(seq) is expected
        if expected:
            seen.add(seq)
            highest = max(highest, seq)


def test_replay_window_boundaries() -> None:
    window = ReplayWindow()
    assert window.accept(5000)
    assert not window.accept(5000)
    assert not window.accept(5000 - REPLAY_WINDOW)
    assert window.accept(5000 - REPLAY_WINDOW + 1)
    assert not window.accept(5000 - REPLAY_WINDOW + 1)
    assert window.accept(10**15)
    assert not window.accept(5001)
    assert window.accept(10**15 - 1)
    assert window.check(0) is False


def _hdr(session: bytes, seq: int) -> Header:
    return Header(MsgType.FRAME, 1, session, seq)


def test_session_guard_same_session_repeats() -> None:
    guard = SessionGuard()
    s = new_session(1_000)
    assert guard.check(_hdr(s, 0), stale=False) is None
    assert guard.accept(_hdr(s, 0), stale=False) == (True, True)
    assert guard.accept(_hdr(s, 0), stale=False) == (False, False)
    assert guard.accept(_hdr(s, 0), stale=True) == (False, False)
    assert guard.accept(_hdr(s, 2), stale=False) == (True, False)
    assert guard.accept(_hdr(s, 1), stale=False) == (True, False)
    assert guard.check(_hdr(s, 1), stale=False) is False


def test_session_guard_newer_session_supersedes() -> None:
    guard = SessionGuard()
    old, new = new_session(1_000), new_session(2_000)
    assert guard.accept(_hdr(old, 0), stale=False) == (True, True)
    assert guard.accept(_hdr(new, 0), stale=False) == (True, True)
    assert guard.session == new
    for seq in (0, 1, 99):
        assert guard.accept(_hdr(old, seq), stale=False) == (False, False)
        assert guard.accept(_hdr(old, seq), stale=True) == (False, False)  # retired
    assert guard.accept(_hdr(new, 1), stale=False) == (True, False)


def test_session_guard_older_session_only_when_stale() -> None:
    guard = SessionGuard()
    current, older = new_session(5_000), new_session(1_000)
    assert guard.accept(_hdr(current, 0), stale=False) == (True, True)
    assert guard.check(_hdr(older, 0), stale=False) is False
    assert guard.accept(_hdr(older, 0), stale=False) == (False, False)
    assert guard.session == current  # check/refusal changed nothing
    assert guard.accept(_hdr(older, 0), stale=True) == (True, True)
    assert guard.session == older
    # The superseded (newer-started) session is now retired and cannot return.
    assert guard.accept(_hdr(current, 1), stale=False) == (False, False)
    assert guard.accept(_hdr(current, 1), stale=True) == (False, False)


def test_session_guard_equal_start_time_needs_stale() -> None:
    guard = SessionGuard()
    a, b = new_session(7), new_session(7)
    assert a != b
    assert guard.accept(_hdr(a, 0), stale=False) == (True, True)
    assert guard.accept(_hdr(b, 0), stale=False) == (False, False)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30), st.booleans()), max_size=120))
def test_session_guard_never_accepts_twice_nor_revives(events: list[tuple[int, int, bool]]) -> None:
    sessions = [new_session(t) for t in (100, 300, 200, 500, 400, 300)]
    guard = SessionGuard()
    accepted: set[tuple[int, int]] = set()
    superseded: set[int] = set()
    current: int | None = None
    for idx, seq, stale in events:
        ok, started = guard.accept(_hdr(sessions[idx], seq), stale=stale)
        if not ok:
            assert not started
            continue
        assert (idx, seq) not in accepted, "replayed datagram accepted"
        assert idx not in superseded, "retired session revived"
        accepted.add((idx, seq))
        if started:
            assert idx != current
            if current is not None:
                superseded.add(current)
            current = idx
        else:
            assert idx == current
        assert guard.session == sessions[idx]


# --------------------------------------------------------------------------
# 7. Keys


@given(st.binary(min_size=KEY_SIZE, max_size=KEY_SIZE))
@settings(max_examples=50, deadline=None)
def test_key_round_trip(key: bytes) -> None:
    text = encode_key(key)
    assert text == key.hex() + "\n" and len(text) == 2 * KEY_SIZE + 1
    assert decode_key(text) == key
    assert decode_key("  " + text.strip() + "\r\n\n") == key


def test_new_key_round_trip() -> None:
    key = new_key()
    assert len(key) == KEY_SIZE and decode_key(encode_key(key)) == key
    assert new_key() != key


@given(st.text(alphabet=string.hexdigits, max_size=130).filter(lambda s: len(s) != 2 * KEY_SIZE))
@settings(max_examples=50, deadline=None)
def test_decode_key_wrong_length(text: str) -> None:
    with pytest.raises(KeyError_, match=f"{2 * KEY_SIZE} hex digits.*{len(text)} characters"):
        decode_key(text)


@given(
    st.text(
        st.characters(exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=2 * KEY_SIZE, max_size=2 * KEY_SIZE
    ).filter(lambda s: any(c not in string.hexdigits for c in s))
)
@settings(max_examples=50, deadline=None)
def test_decode_key_non_hex(text: str) -> None:
    with pytest.raises(KeyError_, match="only hex digits"):
        decode_key(text)


@given(st.text(alphabet=string.hexdigits + "xyzG-_", min_size=2 * KEY_SIZE, max_size=2 * KEY_SIZE))
@settings(max_examples=50, deadline=None)
def test_decode_key_returns_a_key_or_raises(text: str) -> None:
    try:
        key = decode_key(text)
    except KeyError_:
        return
    assert len(key) == KEY_SIZE


def test_decode_key_inner_whitespace_is_refused() -> None:
    text = "00" * 30 + "  " + "00"  # 64 characters, only 31 bytes of hex
    with pytest.raises(KeyError_, match="only hex digits"):
        decode_key(text)


def test_key_error_is_value_error() -> None:
    assert issubclass(KeyError_, ValueError)


@pytest.mark.parametrize("size", [0, 1, KEY_SIZE - 1, KEY_SIZE + 1, 64])
def test_wrong_key_length_refused(size: int) -> None:
    key = bytes(size)
    with pytest.raises(KeyError_, match=str(KEY_SIZE)):
        encode_key(key)
    with pytest.raises(KeyError_):
        Sealer(key, 1, 0)
    with pytest.raises(KeyError_):
        Opener(key)


@pytest.mark.parametrize("chunk_size", [0, MIN_CHUNK - 1, MAX_PAYLOAD + 1, 65535])
def test_sealer_refuses_bad_chunk_size(chunk_size: int) -> None:
    with pytest.raises(ValueError):
        Sealer(KEY, 1, 0, chunk_size=chunk_size)


# --------------------------------------------------------------------------
# 8. Nonce uniqueness and sessions


def test_sequence_never_repeats_within_a_sealer() -> None:
    sealer = Sealer(KEY, 1, 0, chunk_size=MIN_CHUNK)
    raws: list[bytes] = []
    for i in range(40):
        raws += sealer.frame(i, _data(i, 50 * MIN_CHUNK + i), i)
        raws.append(sealer.control(Bye()))
        raws.append(sealer.seal(MsgType.BYE, b""))
    seqs = [int.from_bytes(r[SEQ_OFFSET : SEQ_OFFSET + 8], "big") for r in raws]
    assert len(set(seqs)) == len(seqs) > 2000
    assert seqs == list(range(len(seqs)))
    assert sealer.next_seq == len(seqs)
    assert {r[4 + 4 : SEQ_OFFSET] for r in raws} == {sealer.session}
    opened = _open_all(Opener(KEY), raws[:50])
    assert [d.header.seq for d in opened] == seqs[:50]


def test_sessions_differ_and_order_by_start_time() -> None:
    ids = {Sealer(KEY, 1, 12345).session for _ in range(50)}
    assert len(ids) == 50
    for sid in ids:
        assert len(sid) == SESSION_SIZE and session_start_us(sid) == 12345
    assert new_session(2**64 + 5)[:8] == (5).to_bytes(8, "big")
    h = _hdr(new_session(99), 0)
    assert h.session_start_us == 99


def test_camera_id_for_is_stable_and_nonzero() -> None:
    assert protocol.camera_id_for("front door") == protocol.camera_id_for("front door")
    assert protocol.camera_id_for("front door") != protocol.camera_id_for("back door")
    assert all(0 < protocol.camera_id_for(f"cam{i}") <= 0xFFFFFFFF for i in range(100))
