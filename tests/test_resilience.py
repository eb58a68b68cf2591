"""Loss, reordering, hostile floods and restarts, all on real loopback sockets."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import psutil
import pytest

from network import protocol
from network.protocol import MsgType
from network.udp_receiver import ReceiverConfig, UdpReceiver
from network.udp_sender import DemoSource, Sender
from tests.conftest import CLIP, ROOT, FrameLog, SenderFactory, need, wait_until


class Relay:
    """A lossy, reordering, duplicating UDP relay between a sender and a station (loopback only)."""

    def __init__(self, target: tuple[str, int], *, loss: float, dup: float, reorder: float, seed: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.target = target
        self.rng = random.Random(seed)
        self.loss, self.dup, self.reorder = loss, dup, reorder
        self.held: list[tuple[int, bytes]] = []
        self.counts = {"in": 0, "dropped": 0, "duplicated": 0, "reordered": 0}
        self.recorded: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()
        return str(host), int(port)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.counts["in"] += 1
            if len(self.recorded) < 5000:
                self.recorded.append(data)
            roll = self.rng.random()
            if roll < self.loss:
                self.counts["dropped"] += 1
            elif roll < self.loss + self.reorder:
                self.counts["reordered"] += 1
                self.held.append((self.rng.randint(1, 4), data))
            else:
                self._forward(data)
                if self.rng.random() < self.dup:
                    self.counts["duplicated"] += 1
                    self._forward(data)
            still = []
            for wait, held in self.held:
                if wait <= 1:
                    self._forward(held)
                else:
                    still.append((wait - 1, held))
            self.held = still

    def _forward(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def clip_jpegs(limit: int) -> list[bytes]:
    cap = cv2.VideoCapture(str(need(CLIP)))
    out: list[bytes] = []
    while len(out) < limit:
        ok, img = cap.read()
        if not ok:
            break
        out.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    cap.release()
    return out


def in_process_sender(key: bytes, station: tuple[str, int], name: str) -> Sender:
    return Sender(DemoSource(), key, name=name, fps=30, max_width=0, quality=80, station=station)


@pytest.mark.slow
def test_fec_carries_frames_through_a_lossy_reordering_relay(
    receiver: tuple[UdpReceiver, FrameLog], key: bytes
) -> None:
    rx, log = receiver
    relay = Relay(rx.address, loss=0.02, dup=0.02, reorder=0.05, seed=7)
    jpegs = clip_jpegs(200)
    sender = in_process_sender(key, relay.address, "lossy")
    try:
        for _ in range(3):  # HELLO may be lost too
            sender.hello_all()
        time.sleep(0.2)
        for i, jpeg in enumerate(jpegs):
            if i % 20 == 0:
                sender.hello_all()
            sender.send_frame(jpeg, i, int(time.time() * 1e6))
            time.sleep(1 / 60)
        wait_until(lambda: log.count("lossy") >= len(jpegs), 2)
    finally:
        sender.close()
        time.sleep(0.3)
        relay.close()
    frames = log.of("lossy")
    assert relay.counts["dropped"] > 50, relay.counts
    assert relay.counts["duplicated"] > 20 and relay.counts["reordered"] > 50
    delivered = {f.frame_id for f in frames}
    assert all(f.jpeg == jpegs[f.frame_id] for f in frames), "a delivered frame differs from what was sent"
    assert len(delivered) >= 0.9 * len(jpegs), f"{len(delivered)}/{len(jpegs)} frames complete"
    stats = {s.camera: s for s in rx.stats()}["lossy"]
    assert stats.recovered > 10, "FEC should have rebuilt frames that lost a datagram"
    assert stats.rejected.get("replay", 0) >= relay.counts["duplicated"] // 2, "duplicates count as replays"
    assert 0.005 < stats.loss < 0.1 or stats.frames > 0


# --------------------------------------------------------------- hostile flood


class Headless:
    """``main.py headless`` as a real process, with its JSON lines collected."""

    def __init__(self, key_file: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "main.py"),
                "headless",
                "--no-recognition",
                "--listen",
                "127.0.0.1:0",
                "--key-file",
                str(key_file),
                "--stats-every",
                "0.5",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert wait_until(lambda: any(line.get("event") == "listening" for line in self.lines), 20)
        address = str(next(line["address"] for line in self.lines if line.get("event") == "listening"))
        self.port = int(address.rsplit(":", 1)[1])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(json.loads(raw))

    def last(self, event: str, camera: str | None = None) -> dict[str, Any] | None:
        found: dict[str, Any]
        for found in reversed(self.lines):
            if found.get("event") == event and (camera is None or found.get("camera") == camera):
                return found
        return None

    def frames(self, camera: str) -> int:
        line = self.last("stats", camera)
        return 0 if line is None else int(line["frames"])

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=15)
        self._reader.join(timeout=5)
        return rc


def hostile_datagrams(count: int, camera_id: int, captured: list[bytes], seed: int = 1) -> Iterator[bytes]:
    """Random bytes, bad magic/version, forged seals, replays and unknown cameras, in a fixed mix."""
    rng = random.Random(seed)
    wrong_key = protocol.Sealer(protocol.new_key(), camera_id, int(time.time() * 1e6))
    header_len = protocol.HEADER.size
    for i in range(count):
        kind = i % 10
        if kind in (0, 1, 2):  # pure noise, some longer than a datagram may be
            yield rng.randbytes(rng.choice([0, 10, 71, 200, 1399, 1401, 1472]))
        elif kind == 3:  # right magic, wrong version
            yield b"FS" + bytes([9]) + rng.randbytes(rng.randint(80, 1300))
        elif kind in (4, 5):  # right magic and version, garbage fields
            yield b"FS\x01" + rng.randbytes(rng.randint(header_len, 1380))
        elif kind in (6, 7):  # well formed, sealed under another key, claiming the real camera
            yield wrong_key.frame(i, rng.randbytes(600), 0)[0]
        elif kind == 8 and captured:  # replay of a genuine datagram
            yield captured[rng.randrange(len(captured))]
        else:  # truncated genuine datagram, or a frame header with absurd lengths
            if captured and rng.random() < 0.5:
                yield captured[rng.randrange(len(captured))][: rng.randint(1, 200)]
            else:
                fields = dict(
                    frame_id=1,
                    index=0,
                    count=0xFFFF,
                    groups=0xFFFF,
                    chunk_size=0xFFFF,
                    frame_len=0xFFFFFFFF,
                    timestamp_us=0,
                )
                yield protocol.Header(MsgType.FRAME, camera_id, bytes(16), i, **fields).pack() + bytes(100)


@pytest.mark.slow
def test_flood_of_hostile_datagrams_does_not_stop_a_legitimate_camera(
    key_file: Path, key: bytes, start_sender: SenderFactory
) -> None:
    station = Headless(key_file)
    relay = Relay(("127.0.0.1", station.port), loss=0, dup=0, reorder=0, seed=0)
    try:
        start_sender(
            "--source",
            "demo",
            "--name",
            "legit",
            "--station",
            f"{relay.address[0]}:{relay.address[1]}",
            "--fps",
            "10",
            "--max-width",
            "320",
        )
        assert wait_until(lambda: station.frames("legit") >= 10, 20)
        rss_before = psutil.Process(station.proc.pid).memory_info().rss
        frames_before = station.frames("legit")
        unknown = protocol.Sealer(key, protocol.camera_id_for("never-said-hello"), int(time.time() * 1e6))
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target = ("127.0.0.1", station.port)
        sent = 0
        started = time.monotonic()
        for i, datagram in enumerate(hostile_datagrams(100_000, protocol.camera_id_for("legit"), relay.recorded)):
            if i % 50 == 49:
                flood.sendto(unknown.frame(i, b"\xff\xd8" + bytes(300), 0)[0], target)
                sent += 1
            flood.sendto(datagram, target)
            sent += 1
            if i % 200 == 199:
                time.sleep(0.01)  # about 20,000 datagrams a second: a flood, bounded in time
            assert time.monotonic() - started < 60
        flood_seconds = time.monotonic() - started
        flood.close()
        time.sleep(1.5)
        assert station.proc.poll() is None, "the station died under the flood"
        rss_after = psutil.Process(station.proc.pid).memory_info().rss
        stats = station.last("stats", "legit")
        rejected = station.last("rejected")
        assert stats is not None and rejected is not None
        frames_during = int(stats["frames"]) - frames_before
        assert frames_during >= 0.5 * 10 * flood_seconds, f"{frames_during} frames in {flood_seconds:.1f} s"
        counts = rejected["rejected"]
        assert isinstance(counts, dict)
        for reason in ("bad_magic", "bad_version", "auth", "malformed", "oversized", "replay", "unknown_camera"):
            assert counts.get(reason, 0) > 0, f"no {reason} rejections counted: {counts}"
        assert int(rejected["total"]) >= 0.9 * sent, f"{rejected['total']} of {sent} counted"
        assert rss_after - rss_before < 40 * 1024 * 1024, f"memory grew by {(rss_after - rss_before) >> 20} MiB"
    finally:
        relay.close()
        assert station.stop() == 0


# ----------------------------------------------------------------- restarts


@pytest.mark.slow
def test_sender_restart_mid_stream(receiver: tuple[UdpReceiver, FrameLog], start_sender: SenderFactory) -> None:
    rx, log = receiver
    args = ("--source", "demo", "--name", "door", "--station", f"127.0.0.1:{rx.address[1]}", "--fps", "15")
    first = start_sender(*args)
    assert wait_until(lambda: log.count("door") >= 10, 15)
    first.kill()  # no BYE: the station only sees a new session start
    first.wait()
    before = log.count("door")
    start_sender(*args)
    assert wait_until(lambda: log.count("door") >= before + 10, 15), "frames did not resume after the restart"
    after = log.of("door")[before:]
    assert after[0].frame_id < 20, "the new session's frame ids start again near zero"
    assert rx.stats()[0].rejected.get("replay", 0) == 0


@pytest.mark.slow
def test_station_restart_mid_stream(key: bytes, start_sender: SenderFactory) -> None:
    log1, log2 = FrameLog(), FrameLog()
    rx1 = UdpReceiver(key, "127.0.0.1", 0)
    rx1.add_listener(log1)
    rx1.start()
    port = rx1.address[1]
    start_sender("--source", "demo", "--name", "gate", "--station", f"127.0.0.1:{port}", "--fps", "15")
    try:
        assert wait_until(lambda: log1.count() >= 10, 15)
    finally:
        rx1.stop()
    time.sleep(1.0)  # the sender streams into a closed port meanwhile
    rx2 = UdpReceiver(key, "127.0.0.1", port)
    rx2.add_listener(log2)
    rx2.start()
    try:
        assert wait_until(lambda: log2.count("gate") >= 10, 10), "the sender did not reach the restarted station"
        assert rx2.rejected().get("unknown_camera", 0) < 40, "frames before the next HELLO are few"
    finally:
        rx2.stop()


@pytest.mark.slow
def test_subscription_station_restart_and_unsubscribe(key: bytes, start_sender: SenderFactory) -> None:
    port = free_udp_port()
    start_sender("--source", "demo", "--name", "lobby", "--no-announce", "--port", str(port), "--fps", "15")
    log1 = FrameLog()
    rx1 = UdpReceiver(key, "127.0.0.1", 0, config=ReceiverConfig(lease_s=3))
    rx1.add_listener(log1)
    rx1.start()
    try:
        time.sleep(0.5)
        rx1.subscribe("127.0.0.1", port)
        assert wait_until(lambda: log1.count("lobby") >= 10, 15), "subscription did not start the stream"
        station_port = rx1.address[1]
    finally:
        rx1.stop()  # sends BYE: the sender stops streaming to it
    log2 = FrameLog()
    rx2 = UdpReceiver(key, "127.0.0.1", station_port, config=ReceiverConfig(lease_s=3))
    rx2.add_listener(log2)
    rx2.start()
    try:
        time.sleep(1.0)
        assert log2.count() == 0, "after BYE the sender must not stream to the old subscriber"
        rx2.subscribe("127.0.0.1", port)
        assert wait_until(lambda: log2.count("lobby") >= 10, 15), "re-subscribing after a restart failed"
        rx2.unsubscribe("127.0.0.1", port)
        time.sleep(0.5)
        count = log2.count()
        time.sleep(1.0)
        assert log2.count() == count, "frames kept coming after unsubscribe"
    finally:
        rx2.stop()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_lease_lapses_when_the_station_stops_renewing(key: bytes, start_sender: SenderFactory) -> None:
    """A bare station that subscribes once (2 s lease), then goes silent without a BYE."""
    port = free_udp_port()
    start_sender("--source", "demo", "--name", "yard", "--no-announce", "--port", str(port), "--fps", "15")
    time.sleep(1.0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    sealer = protocol.Sealer(key, 0, int(time.time() * 1e6))
    opener = protocol.Opener(key)
    sock.sendto(sealer.control(protocol.Subscribe(2, "bare")), ("127.0.0.1", port))
    frames, cookie, last_frame = 0, None, 0.0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            data, _ = sock.recvfrom(2048)
        except TimeoutError:
            if frames and time.monotonic() - last_frame > 1.5:
                break
            continue
        opened = opener.open(data)
        assert not isinstance(opened, protocol.Rejection)
        if opened.header.type is MsgType.HELLO and cookie is None:
            hello = protocol.parse_control(MsgType.HELLO, opened.payload)
            assert isinstance(hello, protocol.Hello) and hello.name == "yard"
            cookie = hello.cookie
            sock.sendto(sealer.control(protocol.Subscribe(2, "bare", cookie)), ("127.0.0.1", port))
            subscribed_at = time.monotonic()
        elif opened.header.type is MsgType.FRAME:
            frames += 1
            last_frame = time.monotonic()
    sock.close()
    assert cookie is not None, "no HELLO answered the first SUBSCRIBE"
    assert frames > 0, "no frames after the SUBSCRIBE with the cookie"
    assert 1.5 < last_frame - subscribed_at < 3.5, "streaming should stop when the 2 s lease lapses"


def test_a_subscribe_without_the_cookie_gets_no_frames(key: bytes, start_sender: SenderFactory) -> None:
    """A replayed or spoofed SUBSCRIBE carries no fresh cookie: it earns a HELLO, never a stream."""
    port = free_udp_port()
    start_sender("--source", "demo", "--name", "shed", "--no-announce", "--port", str(port), "--fps", "15")
    time.sleep(1.0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    sealer = protocol.Sealer(key, 0, int(time.time() * 1e6))
    opener = protocol.Opener(key)
    kinds: list[MsgType] = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        sock.sendto(sealer.control(protocol.Subscribe(5, "nocookie", os.urandom(8))), ("127.0.0.1", port))
        try:
            opened = opener.open(sock.recvfrom(2048)[0])
        except TimeoutError:
            continue
        assert not isinstance(opened, protocol.Rejection)
        kinds.append(opened.header.type)
    sock.close()
    assert MsgType.HELLO in kinds and MsgType.FRAME not in kinds


def test_headless_reports_rejections_per_camera_and_overall(key_file: Path) -> None:
    station = Headless(key_file, "--duration", "3")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(20):
            s.sendto(b"not a FaceStation datagram", ("127.0.0.1", station.port))
    assert station.proc.wait(timeout=15) == 0
    station._reader.join(timeout=5)
    rejected = station.last("rejected")
    assert rejected is not None and rejected["rejected"] == {"malformed": 20}


def test_struct_sizes_match_the_design() -> None:
    assert protocol.HEADER.size + protocol.TAG_SIZE + protocol.MAX_PAYLOAD == protocol.MAX_DATAGRAM == 1400
    assert struct.calcsize("!Q") == 8
