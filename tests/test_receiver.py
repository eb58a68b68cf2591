"""The receiver's bounds: newest frame wins, few frames in flight, stale frames ignored, clear decode errors."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from network import protocol
from network.addresses import parse_hostport
from network.frames import FrameDecodeError, decode_jpeg
from network.protocol import Hello
from network.udp_receiver import ReceiverConfig, UdpReceiver
from tests.conftest import FrameLog, wait_until


class FakeCamera:
    """Seals datagrams like a sender does, and fires them from a loopback socket."""

    def __init__(self, key: bytes, target: tuple[str, int], name: str = "cam", start_us: int | None = None) -> None:
        self.name = name
        self.sealer = protocol.Sealer(key, protocol.camera_id_for(name), start_us or int(time.time() * 1e6))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.target = target

    def hello(self) -> None:
        self.send(self.sealer.control(Hello(self.name, 64, 48, 10.0)))

    def frame(self, frame_id: int, data: bytes, *, skip: set[int] | None = None) -> list[bytes]:
        datagrams = self.sealer.frame(frame_id, data, int(time.time() * 1e6))
        for i, d in enumerate(datagrams):
            if not skip or i not in skip:
                self.send(d)
        return datagrams

    def send(self, datagram: bytes) -> None:
        self.sock.sendto(datagram, self.target)

    def close(self) -> None:
        self.sock.close()


def jpeg(value: int, size: tuple[int, int] = (48, 64)) -> bytes:
    img = np.full((*size, 3), value % 256, np.uint8)
    return bytes(cv2.imencode(".jpg", img)[1])


@pytest.fixture
def fast_receiver(key: bytes) -> Iterator[tuple[UdpReceiver, FrameLog]]:
    config = ReceiverConfig(offline_after_s=0.5, frame_timeout_s=0.3, max_in_flight=3, max_frame_bytes=200_000)
    rx = UdpReceiver(key, "127.0.0.1", 0, config=config)
    log = FrameLog()
    rx.add_listener(log)
    rx.start()
    yield rx, log
    rx.stop()


def test_newest_frame_wins_and_a_slow_reader_skips(fast_receiver: tuple[UdpReceiver, FrameLog], key: bytes) -> None:
    rx, log = fast_receiver
    cam = FakeCamera(key, rx.address)
    cam.hello()
    for i in range(20):
        cam.frame(i, jpeg(i))
    assert wait_until(lambda: log.count() == 20, 5)
    latest = rx.latest("cam")
    assert latest is not None and latest.frame_id == 19
    newer = rx.wait_for_frames(0, timeout=0.1)
    assert [f.frame_id for f in newer] == [19], "a slow reader gets only the newest frame"
    assert rx.wait_for_frames(latest.serial, timeout=0.2) == []
    cam.frame(20, jpeg(20))
    assert [f.frame_id for f in rx.wait_for_frames(latest.serial, timeout=2)] == [20]
    cam.close()


def test_frames_older_than_the_newest_are_ignored(fast_receiver: tuple[UdpReceiver, FrameLog], key: bytes) -> None:
    rx, log = fast_receiver
    cam = FakeCamera(key, rx.address)
    cam.hello()
    cam.frame(5, jpeg(5))
    assert wait_until(lambda: log.count() == 1, 3)
    cam.frame(3, jpeg(3))
    cam.frame(6, jpeg(6))
    assert wait_until(lambda: log.count() == 2, 3)
    time.sleep(0.1)
    assert [f.frame_id for f in log.frames] == [5, 6]


def test_in_flight_frames_are_bounded_and_counted(fast_receiver: tuple[UdpReceiver, FrameLog], key: bytes) -> None:
    rx, log = fast_receiver
    cam = FakeCamera(key, rx.address)
    cam.hello()
    big = np.random.default_rng(1).integers(0, 255, 20_000, dtype=np.uint8).tobytes()
    for i in range(10):  # only the first chunk of each: nothing can complete
        cam.send(cam.sealer.frame(i, big, 0)[0])
    time.sleep(0.2)
    stats = rx.stats()[0]
    assert stats.incomplete >= 7, "older partial frames are evicted beyond max_in_flight"
    assert wait_until(lambda: rx.stats()[0].incomplete == 10, 2), "the rest time out"
    assert log.count() == 0


def test_a_frame_missing_two_chunks_of_one_group_is_dropped_but_one_per_group_recovers(
    fast_receiver: tuple[UdpReceiver, FrameLog], key: bytes
) -> None:
    rx, log = fast_receiver
    cam = FakeCamera(key, rx.address)
    cam.hello()
    data = np.random.default_rng(2).integers(0, 255, 30_000, dtype=np.uint8).tobytes()
    datagrams = cam.frame(1, b"\xff\xd8" + data, skip={0, 1, 2})  # groups 0, 1, 2: one loss each
    header = protocol.parse_header(datagrams[0])
    assert isinstance(header, protocol.Header) and header.groups >= 3
    groups = header.groups
    assert wait_until(lambda: log.count() == 1, 2)
    assert log.frames[0].jpeg == b"\xff\xd8" + data
    cam.frame(2, b"\xff\xd8" + data, skip={0, groups})  # chunk 0 and chunk `groups` share group 0
    time.sleep(0.5)
    assert log.count() == 1
    assert rx.stats()[0].recovered == 1 and rx.stats()[0].incomplete == 1


def test_corrupt_jpeg_is_delivered_but_decodes_to_a_clear_error(
    fast_receiver: tuple[UdpReceiver, FrameLog], key: bytes
) -> None:
    rx, log = fast_receiver
    cam = FakeCamera(key, rx.address)
    cam.hello()
    cam.frame(1, b"\xff\xd8" + b"\x00" * 500)
    cam.frame(2, b"GIF89a not a jpeg")
    cam.frame(3, jpeg(3))
    assert wait_until(lambda: log.count() == 3, 3)
    with pytest.raises(FrameDecodeError, match="corrupt JPEG"):
        _ = log.frames[0].image
    with pytest.raises(FrameDecodeError, match="not a JPEG"):
        _ = log.frames[1].image
    assert log.frames[2].image.shape == (48, 64, 3), "the stream carries on after bad frames"
    with pytest.raises(FrameDecodeError):
        decode_jpeg(b"")


def test_unknown_camera_oversized_and_replayed_sessions(
    fast_receiver: tuple[UdpReceiver, FrameLog], key: bytes
) -> None:
    rx, log = fast_receiver
    old = FakeCamera(key, rx.address, start_us=int(time.time() * 1e6) - 10_000_000)
    old.frame(1, jpeg(1))  # no HELLO yet
    assert wait_until(lambda: rx.rejected().get("unknown_camera", 0) > 0, 2)
    new = FakeCamera(key, rx.address)
    new.hello()
    new.frame(1, jpeg(1))
    assert wait_until(lambda: log.count() == 1, 2)
    old.hello()  # an older session while the newer one is live: a replay
    old.frame(2, jpeg(2))
    new.frame(300_000, bytes(250_000))  # above this receiver's 200 kB ceiling
    time.sleep(0.3)
    rejected = rx.rejected()
    assert rejected.get("replay", 0) >= 2
    assert rejected.get("oversized", 0) > 0
    assert [f.frame_id for f in log.frames] == [1]


def test_silence_makes_a_camera_offline_and_it_comes_back(
    fast_receiver: tuple[UdpReceiver, FrameLog], key: bytes
) -> None:
    rx, log = fast_receiver
    cam = FakeCamera(key, rx.address)
    cam.hello()
    cam.frame(1, jpeg(1))
    assert wait_until(lambda: log.count() == 1, 2)
    assert wait_until(lambda: not rx.stats()[0].online, 2)
    cam.frame(2, jpeg(2))
    assert wait_until(lambda: rx.stats()[0].online, 2)
    events = [(e.state, e.reason) for e in rx.drain_events()]
    assert events == [("online", ""), ("offline", "silent"), ("online", "")]


def test_a_hello_whose_name_does_not_match_its_camera_id_is_malformed(
    fast_receiver: tuple[UdpReceiver, FrameLog], key: bytes
) -> None:
    rx, _ = fast_receiver
    cam = FakeCamera(key, rx.address, name="real")
    cam.send(cam.sealer.control(Hello("impostor", 1, 1, 1.0)))
    assert wait_until(lambda: rx.rejected().get("malformed", 0) == 1, 2)
    assert rx.stats() == []


def test_parse_hostport() -> None:
    assert parse_hostport("127.0.0.1:5000") == ("127.0.0.1", 5000)
    assert parse_hostport("[::1]:80") == ("::1", 80)
    for bad in ("nohost", ":5000", "h:abc", "h:70000"):
        with pytest.raises(ValueError):
            parse_hostport(bad)
