"""The FACES message and ACCEPT (protocol 2): bounds, hostile payloads, pairing, and what protocol-1 peers do."""

from __future__ import annotations

import importlib.util
import math
import struct
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from network import protocol
from network.frames import Frame
from network.pairing import CameraFaces, PairingConfig
from network.protocol import (
    MAX_CROP_SIDE,
    MAX_FACES,
    Accept,
    Datagram,
    EdgeFace,
    EdgeFaces,
    FrameAssembly,
    Hello,
    MsgType,
    Opener,
    Reason,
    Rejection,
    Sealer,
    encode_control,
    encode_faces,
    parse_control,
    parse_faces,
    parse_header,
)
from tests.conftest import ROOT

KEY = bytes(range(32))
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The commit this branch started from: its network/ is a protocol-1 station and sender.
PROTOCOL_1 = "383f4d3"


def jpeg(w: int = 40, h: int = 48, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return bytes(cv2.imencode(".jpg", img)[1].tobytes())


def face(x: float = 100.0, y: float = 50.0, size: float = 30.0, crop: bytes | None = None) -> EdgeFace:
    data = crop if crop is not None else jpeg()
    marks = ((x + 8, y + 10), (x + 22, y + 10), (x + 15, y + 17), (x + 9, y + 23), (x + 21, y + 23))
    return EdgeFace((x, y, size, size * 1.2), marks, 0.99, (x - 10, y - 12, size + 20, size * 1.2 + 24), (40, 48), data)


def message(n: int = 2, frame_id: int = 7) -> EdgeFaces:
    return EdgeFaces(frame_id, (640, 360), (1920, 1080), tuple(face(100 + 60 * i) for i in range(n)), 42)


# --------------------------------------------------------------------------- the payload


def test_faces_round_trip_and_crop_mapping() -> None:
    msg = message(3)
    parsed = parse_faces(7, encode_faces(msg))
    assert isinstance(parsed, EdgeFaces)
    assert parsed.stream_size == (640, 360) and parsed.source_size == (1920, 1080) and parsed.detect_ms == 42
    for a, b in zip(parsed.faces, msg.faces, strict=True):
        assert a.crop == b.crop and a.crop_size == b.crop_size
        assert np.allclose(a.box, b.box) and np.allclose(a.landmarks, b.landmarks, atol=1e-4)
    f = parsed.faces[0]
    sx, sy = f.scale
    assert math.isclose(sx, 40 / 50) and math.isclose(sy, 48 / 60)
    (lx, ly), *_ = f.crop_landmarks()
    assert math.isclose(lx, (108 - 90) * sx, rel_tol=1e-5) and math.isclose(ly, (60 - 38) * sy, rel_tol=1e-5)
    assert parse_faces(1, encode_faces(message(0))) == EdgeFaces(1, (640, 360), (1920, 1080), (), 42)


def _bad(msg: EdgeFaces, reason: Reason = Reason.MALFORMED) -> None:
    payload = _force_encode(msg)
    r = parse_faces(msg.frame_id, payload)
    assert isinstance(r, Rejection) and r.reason is reason, r
    with pytest.raises(ValueError):
        encode_faces(msg)  # the sender refuses to build what a station would refuse


def _force_encode(msg: EdgeFaces) -> bytes:
    """Encode without the encoder's checks (what a hostile or broken peer could send)."""
    import network.wire.faces as wire

    check, wire._check_message = wire._check_message, lambda msg: ""
    try:
        return encode_faces(msg)
    finally:
        wire._check_message = check


def test_faces_bounds_are_refused() -> None:
    good = message(1)
    f = good.faces[0]
    _bad(replace(good, faces=(replace(f, box=(float("nan"), 1.0, 2.0, 2.0)),)))
    _bad(replace(good, faces=(replace(f, box=(1.0, 1.0, -5.0, 2.0)),)))
    _bad(replace(good, faces=(replace(f, box=(1e9, 1.0, 5.0, 2.0)),)))
    _bad(replace(good, faces=(replace(f, confidence=1.5),)))
    _bad(replace(good, faces=(replace(f, crop_rect=(0.0, 0.0, 0.0, 10.0)),)))
    _bad(replace(good, faces=(replace(f, landmarks=((1e7, 0.0), *f.landmarks[1:])),)))
    _bad(replace(good, faces=(replace(f, crop_size=(MAX_CROP_SIDE + 1, 40)),)))
    _bad(replace(good, faces=(replace(f, crop=b"GIF89a" + bytes(100)),)))
    _bad(replace(good, stream_size=(0, 360)))
    _bad(replace(good, faces=tuple(face() for _ in range(MAX_FACES + 1))), Reason.OVERSIZED)


def test_garbled_faces_payloads_are_refused_not_raised() -> None:
    payload = encode_faces(message(2))
    assert isinstance(parse_faces(7, payload + b"\x00"), Rejection)  # trailing bytes
    assert isinstance(parse_faces(7, payload[:-1]), Rejection)  # a crop cut short
    assert isinstance(parse_faces(7, payload[:20]), Rejection)  # records cut short
    assert isinstance(parse_faces(7, b""), Rejection)
    assert isinstance(parse_faces(7, bytes([2]) + payload[1:]), Rejection)  # a newer format
    big_count = payload[:12] + bytes([255]) + payload[13:]
    r = parse_faces(7, big_count)
    assert isinstance(r, Rejection) and r.reason is Reason.OVERSIZED
    huge_crop = bytearray(payload)
    struct.pack_into("!I", huge_crop, 13 + 80, 2**32 - 1)  # the first record's crop length
    assert isinstance(parse_faces(7, bytes(huge_crop)), Rejection)


@FAST
@given(st.binary(max_size=2000))
def test_arbitrary_faces_payloads_never_raise(raw: bytes) -> None:
    assert isinstance(parse_faces(1, raw), EdgeFaces | Rejection)


@FAST
@given(st.data())
def test_mutated_faces_payloads_never_raise(data: st.DataObject) -> None:
    payload = bytearray(encode_faces(message(2)))
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    result = parse_faces(1, bytes(payload))
    assert isinstance(result, EdgeFaces | Rejection)
    if isinstance(result, EdgeFaces):  # anything accepted is within bounds
        for f in result.faces:
            assert all(math.isfinite(v) for v in (*f.box, *f.crop_rect, f.confidence))
            assert 1 <= f.crop_size[0] <= MAX_CROP_SIDE and f.crop[:2] == b"\xff\xd8"


# --------------------------------------------------------------------------- sealing, FEC, ACCEPT


def test_faces_seal_chunk_and_survive_one_loss_per_group() -> None:
    msg = EdgeFaces(5, (640, 360), (1920, 1080), tuple(face(50 + 40 * i, crop=jpeg(200, 240, i)) for i in range(6)))
    payload = encode_faces(msg)
    datagrams = Sealer(KEY, 9, 0).faces(5, payload, 123)
    assert all(len(d) <= protocol.MAX_DATAGRAM for d in datagrams)
    opened = [Opener(KEY).open(d) for d in datagrams]
    assert all(isinstance(o, Datagram) for o in opened)
    chunks = [o for o in opened if isinstance(o, Datagram) and o.header.type is MsgType.FACES]
    parity = [o for o in opened if isinstance(o, Datagram) and o.header.type is MsgType.FACES_PARITY]
    assert parity and all(o.header.frame_id == 5 for o in chunks)
    assembly = FrameAssembly(chunks[0].header, 0.0)
    done = None
    for o in chunks[1:] + parity:  # the first chunk lost: parity rebuilds it
        done = assembly.add(o.header, o.payload) or done
    assert done == payload and assembly.recovered


def test_faces_header_ceiling() -> None:
    header = protocol.Header(
        MsgType.FACES, 1, bytes(16), 0, count=1, chunk_size=protocol.MAX_PAYLOAD, frame_len=protocol.MAX_FACES_BYTES + 1
    )
    r = parse_header(header.pack() + bytes(protocol.MAX_PAYLOAD) + bytes(16))
    assert isinstance(r, Rejection) and r.reason is Reason.OVERSIZED


def test_accept_round_trip_and_refusals() -> None:
    kind, payload = encode_control(Accept(10))
    assert kind is MsgType.ACCEPT and parse_control(kind, payload) == Accept(10, True)
    assert parse_control(kind, encode_control(Accept(5, faces=False))[1]) == Accept(5, False)
    for bad in (b"", b"\x00\x00\x01", b"\x00\x0a\x02", b"\x00\x0a\x01\x00"):
        assert isinstance(parse_control(MsgType.ACCEPT, bad), Rejection)
    with pytest.raises(ValueError):
        encode_control(Accept(0))
    assert Hello("cam", 1, 1, 1.0).protocol == protocol.PROTOCOL == 2


# --------------------------------------------------------------------------- pairing


def frame(fid: int, at: float = 100.0) -> Frame:
    return Frame("cam", 1, fid, fid, at, at, b"\xff\xd8jpeg")


def test_pairing_faces_after_their_frame_before_it_and_never() -> None:
    faces = CameraFaces("cam", PairingConfig(timeout_s=2.0))
    for fid in range(5):
        assert faces.frame_delivered(frame(fid), 100.0) is None
    assert faces.pair(message(1, frame_id=3), last_delivered=4) == frame(3)  # detection lagged two frames
    assert faces.pair(message(1, frame_id=6), last_delivered=4) is None  # its frame is still on its way
    assert faces.frame_delivered(frame(5), 100.1) is None
    waiting = faces.frame_delivered(frame(6), 100.2)
    assert waiting is not None and waiting.frame_id == 6
    assert faces.pair(message(1, frame_id=1), last_delivered=6) == frame(1)
    faces.pair(message(1, frame_id=8), last_delivered=6)
    faces.frame_delivered(frame(9), 100.3)  # frame 8 was lost: its faces can never pair
    assert faces.unpaired == 1 and 8 not in faces.pending
    assert faces.pair(message(1, frame_id=7), last_delivered=9) is None and faces.unpaired == 2  # frame 7 never came
    # the edge mode and its fallback
    faces.paired_now(100.3)
    assert faces.edge
    faces.housekeeping(101.0, 1.0)
    assert faces.edge and faces.fallbacks == 0
    faces.housekeeping(102.5, 1.0)
    assert not faces.edge and faces.fallbacks == 1


def test_pairing_bounds_recent_frames_and_pending() -> None:
    cfg = PairingConfig(recent_frames=4, pending=2, recent_s=1.0)
    faces = CameraFaces("cam", cfg)
    for fid in range(10):
        faces.frame_delivered(frame(fid, 100.0 + fid * 0.01), 100.0 + fid * 0.01)
    assert list(faces.recent) == [6, 7, 8, 9]
    faces.frame_delivered(frame(10, 102.0), 102.0)
    assert list(faces.recent) == [10]  # older than recent_s
    for fid in (20, 21, 22):
        faces.pair(message(0, frame_id=fid), last_delivered=10)
    assert list(faces.pending) == [21, 22] and faces.unpaired == 1


def test_garbled_faces_through_camera_faces_are_rejections() -> None:
    faces = CameraFaces("cam")
    sealer, opener = Sealer(KEY, 9, 0), Opener(KEY)
    for payload in (b"\x01" + bytes(300), bytes(5000), encode_faces(message(1))[:-3]):
        results = []
        for d in sealer.faces(3, payload, 0):
            o = opener.open(d)
            assert isinstance(o, Datagram)
            results.append(faces.chunk(o.header, o.payload, 0.0, (640, 360)))
        final = [r for r in results if r is not None]
        assert len(final) == 1 and isinstance(final[0], Rejection) and final[0].camera_id == 9
        faces.last_complete = -1
    ok = [
        faces.chunk(o.header, o.payload, 0.0, (320, 180))
        for o in map(opener.open, sealer.faces(4, encode_faces(message(1)), 0))
        if isinstance(o, Datagram)
    ]
    refused = [r for r in ok if isinstance(r, Rejection)]
    assert len(refused) == 1 and "streams 320x180" in refused[0].detail  # faces for another frame size


# --------------------------------------------------------------------------- protocol-1 peers


def protocol_1_module(tmp_path: Path, name: str) -> types.ModuleType:
    """``network/<name>.py`` as it was before protocol 2, from git history (skip where the clone has none)."""
    try:
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{PROTOCOL_1}:network/{name}.py"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"git history with commit {PROTOCOL_1} is not in this clone")
    path = tmp_path / f"old_{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"old_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_protocol_1_parser_refuses_faces_as_malformed_and_still_opens_frames(tmp_path: Path) -> None:
    old = protocol_1_module(tmp_path, "protocol")
    sealer = Sealer(KEY, 9, 0)
    opener = old.Opener(KEY)
    for d in sealer.faces(1, encode_faces(message(2)), 0):
        r = opener.open(d)
        assert isinstance(r, old.Rejection) and r.reason.value == "malformed", r
        assert r.detail.startswith("message type ") and r.camera_id == 9
    for d in sealer.frame(1, jpeg(), 0):  # the same session's frames still open
        assert isinstance(opener.open(d), old.Datagram)
    hello = sealer.control(Hello("cam", 640, 360, 15.0))  # a protocol-2 HELLO reads the same
    opened = opener.open(hello)
    assert isinstance(opened, old.Datagram)
    assert old.parse_control(old.MsgType.HELLO, opened.payload) == old.Hello("cam", 640, 360, 15.0, 2)
