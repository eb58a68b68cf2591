"""The one reassembly window (network/wire/reassembly.py) that frames and FACES messages share: pure, no sockets."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from network.pairing import CameraFaces
from network.protocol import KEY_SIZE, Datagram, Opener, Reason, Rejection, Sealer
from network.wire.reassembly import Reassembled, ReassemblyWindow

KEY = bytes(range(KEY_SIZE))
OPENER = Opener(KEY)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunks(sealer: Sealer, frame_id: int, data: bytes, *, faces: bool = False) -> list[Datagram]:
    """The opened datagrams of one message, data chunks first, then parity."""
    seal = sealer.faces if faces else sealer.frame
    out = [OPENER.open(d) for d in seal(frame_id, data, 1000 + frame_id)]
    assert all(isinstance(o, Datagram) for o in out)
    return [o for o in out if isinstance(o, Datagram)]


def feed(window: ReassemblyWindow, datagrams: list[Datagram], now: float = 0.0) -> list[Reassembled | Rejection]:
    results = [window.add(d.header, d.payload, now) for d in datagrams]
    return [r for r in results if r is not None]


def message(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def test_a_message_comes_out_once_with_its_fields() -> None:
    sealer, window = Sealer(KEY, 7, 0), ReassemblyWindow(4)
    data = message(5000, 1)
    done = feed(window, chunks(sealer, 3, data))
    assert done == [Reassembled(3, data, 1003, False)]
    assert window.last_complete == 3 and len(window) == 0 and window.incomplete == 0
    assert feed(window, chunks(sealer, 3, data)) == []  # a repeat of a delivered message: late, ignored
    assert feed(window, chunks(sealer, 2, data)) == [] and window.incomplete == 0  # older: ignored, not counted


def test_parity_restores_a_lost_chunk_and_says_so() -> None:
    sealer, window = Sealer(KEY, 7, 0), ReassemblyWindow(4)
    data = message(9000, 2)
    datagrams = chunks(sealer, 0, data)
    done = feed(window, datagrams[1:])  # the first chunk lost; its group's parity arrives
    assert len(done) == 1 and isinstance(done[0], Reassembled) and done[0].data == data and done[0].recovered


def test_interleaved_messages_complete_in_any_order_and_older_ones_are_dropped() -> None:
    sealer, window = Sealer(KEY, 7, 0), ReassemblyWindow(4)
    first, second = message(4000, 3), message(4000, 4)
    a, b = chunks(sealer, 10, first), chunks(sealer, 11, second)
    assert feed(window, a[:2] + b[:2]) == [] and len(window) == 2
    done = feed(window, b[2:])  # the newer one completes first: the older one can no longer be delivered in order
    assert [r.frame_id for r in done if isinstance(r, Reassembled)] == [11]
    assert window.incomplete == 1 and len(window) == 0
    assert feed(window, a[2:]) == []  # the rest of the overtaken one is late


def test_in_flight_is_bounded_oldest_dropped_and_kept_in_order() -> None:
    sealer, window = Sealer(KEY, 7, 0), ReassemblyWindow(3)
    for fid in (5, 2, 9, 7):  # each message's first chunk only
        d = chunks(sealer, fid, message(3000, fid))[0]
        assert window.add(d.header, d.payload, 0.0) is None
    assert list(window.assemblies) == [5, 7, 9] and window.incomplete == 1  # 2 was the oldest when 7 came


def test_a_chunk_that_disagrees_with_its_message_is_refused_with_the_camera() -> None:
    sealer, window = Sealer(KEY, 7, 0), ReassemblyWindow(4, "FACES")
    d = chunks(sealer, 1, message(4000, 5))[0]
    assert window.add(d.header, d.payload, 0.0) is None
    other = chunks(sealer, 1, message(6000, 6))[1]  # same id, another length
    refused = window.add(other.header, other.payload, 0.0)
    assert isinstance(refused, Rejection) and refused.reason is Reason.MALFORMED and refused.camera_id == 7
    assert "FACES" in refused.detail


def test_expire_drop_all_and_reset() -> None:
    sealer, window = Sealer(KEY, 7, 0), ReassemblyWindow(4)
    feed(window, chunks(sealer, 1, message(3000, 7))[:1], now=10.0)
    feed(window, chunks(sealer, 2, message(3000, 8))[:1], now=10.5)
    window.expire(11.2, 1.0)
    assert list(window.assemblies) == [2] and window.incomplete == 1
    window.drop_all()
    assert len(window) == 0 and window.incomplete == 2
    feed(window, chunks(sealer, 4, message(3000, 9)))
    window.drop_all()
    assert window.late(4)  # the camera went offline: what it already delivered stays delivered
    window.reset()
    assert not window.late(0) and window.last_complete == -1  # a new session numbers from 0 again


def test_max_in_flight_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        ReassemblyWindow(0)


@FAST
@given(st.lists(st.integers(0, 30), min_size=1, max_size=40), st.integers(1, 5), st.randoms(use_true_random=False))
def test_never_more_than_max_in_flight_and_every_message_accounted(
    ids: list[int], bound: int, rnd: random.Random
) -> None:
    """Whatever order the chunks of many two-chunk messages come in: at most ``bound`` in flight, and every
    message started is still in flight, delivered, or counted incomplete."""
    sealer, window = Sealer(KEY, 7, 0), ReassemblyWindow(bound)
    opened = delivered = 0
    for fid in ids:
        d = chunks(sealer, fid, message(2000, fid))[rnd.randrange(2)]
        opened += not window.late(fid) and fid not in window.assemblies
        delivered += isinstance(window.add(d.header, d.payload, 0.0), Reassembled)
        assert len(window) <= bound
    assert window.incomplete + len(window) + delivered == opened


def test_camera_faces_reassembles_through_the_window() -> None:
    """network/pairing.py keeps no window of its own: its counters and its last id are the window's."""
    faces = CameraFaces("cam")
    sealer = Sealer(KEY, 9, 0)
    first = chunks(sealer, 3, message(3000, 1), faces=True)
    faces.chunk(first[0].header, first[0].payload, 0.0, (640, 360))
    assert len(faces.messages) == 1
    faces.housekeeping(5.0, 1.0)
    assert faces.incomplete == 1 and len(faces.messages) == 0
    faces.last_complete = 3
    assert faces.messages.late(3)
    faces.reset()
    assert faces.last_complete == -1 and faces.incomplete == 1
