"""The sender's transport: encode a picture, seal it into datagrams, pace them to the subscribed stations.

:class:`Sender` owns one UDP socket. It answers SUBSCRIBE (after a cookie round trip proving the
station's address is live) and BYE, keeps each station's lease, says HELLO every second, and
streams each frame as sealed, FEC-protected datagrams of at most 1,400 bytes
(network/protocol.py), spread by :class:`Pacer` instead of burst. Frames are skipped, never queued.
With ``--detect`` (:meth:`Sender.enable_detection`) each sent picture is also offered, at full
resolution, to the camera host's face detector (network/edge.py), whose FACES messages for those
frame ids go to the same stations; one lock serialises the sealer and the socket between the two threads.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from facefind.mtcnn import MtcnnNets
from network import protocol
from network.capture import EndOfSource, Source, VideoSource
from network.edge import EdgeConfig, EdgeDetector
from network.protocol import Accept, Bye, Hello, Rejection, SessionGuard, Subscribe

log = logging.getLogger("facestation.sender")

DEFAULT_PORT = 47810
HELLO_EVERY_S = 1.0
STATUS_EVERY_S = 5.0


class TransportError(Exception):
    """The sender's socket cannot be set up: one line for the operator."""


def encode(img: np.ndarray, *, max_width: int, quality: int) -> bytes:
    """Resize to at most ``max_width`` (keeping the aspect) and JPEG-encode."""
    h, w = img.shape[:2]
    if max_width and w > max_width:
        img = cv2.resize(img, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


@dataclass
class _Station:
    address: tuple[str, int]
    expires: float  # monotonic; float("inf") for the push station
    cookie: bytes
    pushed: bool = False
    faces_until: float = 0.0  # monotonic; the station's ACCEPT lease for FACES (protocol 2)


class Pacer:
    """Spreads datagrams at a byte rate: bursts of a few, then a short sleep."""

    def __init__(self, mbps: float, burst: int = 16, sleep: Callable[[float], None] = time.sleep) -> None:
        self.bytes_per_s = mbps * 1e6 / 8
        self.burst = burst
        self._sleep = sleep
        self._sent = 0
        self._t0 = 0.0
        self._count = 0

    def start_frame(self) -> None:
        self._sent = 0
        self._count = 0
        self._t0 = time.perf_counter()

    def sent(self, nbytes: int) -> None:
        self._sent += nbytes
        self._count += 1
        if self.bytes_per_s > 0 and self._count % self.burst == 0:
            ahead = self._sent / self.bytes_per_s - (time.perf_counter() - self._t0)
            if ahead > 0:
                self._sleep(ahead)


class Sender:
    """Streams one source to subscribed stations, or pushes to one station."""

    def __init__(
        self,
        source: Source,
        key: bytes,
        *,
        name: str,
        fps: float,
        max_width: int,
        quality: int,
        station: tuple[str, int] | None = None,
        port: int = DEFAULT_PORT,
        bind_host: str = "0.0.0.0",
        mbps: float = 200.0,
        fec_group: int = protocol.DEFAULT_GROUP_SIZE,
        loop: bool = False,
    ) -> None:
        self.source = source
        self.name = name
        self.fps = min(fps, source.fps) if isinstance(source, VideoSource) and not source.live else fps
        self.max_width = max_width
        self.quality = quality
        self.loop = loop
        self.fec_group = fec_group
        self.camera_id = protocol.camera_id_for(name)
        self._key = key
        self._sealer = protocol.Sealer(key, self.camera_id, int(time.time() * 1e6))
        self._opener = protocol.Opener(key)
        self._guards: dict[bytes, SessionGuard] = {}
        self._pacer = Pacer(mbps)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        try:
            self._sock.bind((bind_host, 0 if station else port))
        except OSError as exc:
            raise TransportError(f"cannot listen on UDP port {port}: {exc.strerror}") from None
        self._sock.setblocking(False)
        self._stations: dict[tuple[str, int], _Station] = {}
        self._cookies: dict[tuple[str, int], bytes] = {}
        if station is not None:
            self._stations[station] = _Station(station, float("inf"), b"", pushed=True)
        self.width = self.height = 0
        self._stop = False
        self._closed = False
        self._send_lock = threading.Lock()  # the sealer, the pacer and the socket, between stream and detector
        self.edge: EdgeDetector | None = None
        self.frames_sent = 0
        self.bytes_sent = 0
        self.faces_sent = 0
        self.faces_bytes = 0
        self._status = (time.monotonic(), 0, 0, 0)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def stop(self, *_: object) -> None:
        """Ask the loop to finish (safe from a signal handler): it sends BYE and returns."""
        self._stop = True

    @property
    def stopped(self) -> bool:
        return self._stop

    def subscribers(self) -> list[tuple[str, int]]:
        now = time.monotonic()
        # list() copies the dict in one step: the detector thread asks while the stream thread may change it
        return [s.address for s in list(self._stations.values()) if s.expires > now]

    def face_targets(self) -> list[tuple[str, int]]:
        """The subscribers whose ACCEPT for FACES is current (protocol-2 stations that asked for them)."""
        now = time.monotonic()
        return [s.address for s in list(self._stations.values()) if s.expires > now and s.faces_until > now]

    # ------------------------------------------------------------ control

    def _hello(self) -> Hello:
        return Hello(self.name, self.width, self.height, self.fps)

    def _send_hello(self, address: tuple[str, int]) -> None:
        cookie = self._cookies.get(address)
        if cookie is None:
            if len(self._cookies) > 1024:
                self._cookies.clear()
            cookie = self._cookies[address] = os.urandom(protocol.COOKIE_SIZE)
        msg = Hello(self.name, self.width, self.height, self.fps, cookie=cookie)
        with self._send_lock:
            self._sendto(self._sealer.control(msg), address)

    def hello_all(self) -> None:
        """HELLO to every station we stream to (push mode relies on it after a station restart)."""
        for entry in list(self._stations.values()):
            self._send_hello(entry.address)

    def poll_control(self, timeout: float) -> None:
        """Handle SUBSCRIBE and BYE from stations, waiting up to ``timeout``."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            left = deadline - time.monotonic()
            try:
                readable, _, _ = select.select([self._sock], [], [], max(0.0, left))
            except InterruptedError:
                readable = []
            if not readable:
                if left <= 0 or self._stop:
                    return
                continue
            for _ in range(64):
                try:
                    data, addr = self._sock.recvfrom(2048)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # ICMP port unreachable from a vanished station
                    continue
                self._on_control(data, (str(addr[0]), int(addr[1])))
            if time.monotonic() >= deadline or self._stop:
                return

    def _on_control(self, data: bytes, addr: tuple[str, int]) -> None:
        opened = self._opener.open(data)
        if isinstance(opened, Rejection):
            log.debug("rejected datagram from %s: %s", addr, opened.reason.value)
            return
        header = opened.header
        if header.camera_id not in (0, self.camera_id) or not self._fresh(header):
            return
        msg = protocol.parse_control(header.type, opened.payload)
        if isinstance(msg, Subscribe):
            self._on_subscribe(msg, addr)
        elif isinstance(msg, Accept):
            self._on_accept(msg, addr)
        elif isinstance(msg, Bye):
            self._on_bye(addr)

    def _fresh(self, header: protocol.Header) -> bool:
        """Not a replay within the station session's window (sessions kept bounded)."""
        guard = self._guards.get(header.session)
        if guard is None:
            if len(self._guards) > 256:
                self._guards.clear()
            guard = self._guards[header.session] = SessionGuard()
        return guard.accept(header, stale=False)[0]

    def _on_subscribe(self, msg: Subscribe, addr: tuple[str, int]) -> None:
        known = self._cookies.get(addr)
        if known is None or msg.cookie != known:
            self._send_hello(addr)  # prove the address is live: the station must echo our cookie
            return
        entry = self._stations.get(addr)
        if entry is None:
            log.info("station %s:%d (%s) subscribed for %ds", addr[0], addr[1], msg.station, msg.lease_s)
            entry = self._stations[addr] = _Station(addr, 0.0, known)
        entry.expires = max(entry.expires, time.monotonic() + min(msg.lease_s, 300))

    def _on_accept(self, msg: Accept, addr: tuple[str, int]) -> None:
        entry = self._stations.get(addr)
        if entry is None:  # only a station we stream to can ask for faces
            return
        if msg.faces and not entry.faces_until and self.edge is not None:
            log.info("station %s:%d takes this camera's faces", *addr)
        entry.faces_until = time.monotonic() + min(msg.lease_s, 300) if msg.faces else 0.0

    def _on_bye(self, addr: tuple[str, int]) -> None:
        entry = self._stations.get(addr)
        if entry is not None and not entry.pushed:
            del self._stations[addr]
            log.info("station %s:%d unsubscribed", *addr)

    def _expire(self) -> None:
        now = time.monotonic()
        for addr, entry in list(self._stations.items()):
            if entry.expires <= now:
                del self._stations[addr]
                log.info("lease of station %s:%d lapsed; stopped streaming to it", *addr)

    # ------------------------------------------------------------- streaming

    def _sendto(self, datagram: bytes, address: tuple[str, int]) -> bool:
        try:
            self._sock.sendto(datagram, address)
            return True
        except BlockingIOError:
            return False
        except OSError as exc:  # station gone (ICMP), network down: keep going
            log.debug("send to %s:%d failed: %s", address[0], address[1], exc)
            return False

    def send_frame(self, jpeg: bytes, frame_id: int, captured_us: int) -> bool:
        """Send one frame to every subscribed station; False when there was none."""
        targets = self.subscribers()
        if not targets:
            return False
        with self._send_lock:
            datagrams = self._sealer.frame(frame_id, jpeg, captured_us, group_size=self.fec_group)
            self._send_all(datagrams, targets)
        self.frames_sent += 1
        self.bytes_sent += sum(len(d) for d in datagrams) * len(targets)
        return True

    def send_faces(self, frame_id: int, payload: bytes, captured_us: int) -> None:
        """Send the FACES message of frame ``frame_id`` to the stations that asked (the detector thread calls it)."""
        targets = self.face_targets()
        if not targets:
            return
        with self._send_lock:
            datagrams = self._sealer.faces(frame_id, payload, captured_us, group_size=self.fec_group)
            self._send_all(datagrams, targets)
        nbytes = sum(len(d) for d in datagrams) * len(targets)
        self.faces_sent += 1
        self.faces_bytes += nbytes
        self.bytes_sent += nbytes

    def _send_all(self, datagrams: list[bytes], targets: list[tuple[str, int]]) -> None:
        self._pacer.start_frame()
        for dgram in datagrams:
            for address in targets:
                if not self._sendto(dgram, address):
                    select.select([], [self._sock], [], 0.01)  # send buffer full: wait briefly, then retry once
                    self._sendto(dgram, address)
                self._pacer.sent(len(dgram))

    def enable_detection(self, nets_factory: Callable[[], MtcnnNets], config: EdgeConfig | None = None) -> EdgeDetector:
        """Detect faces on this host (``--detect``); loads the nets now, so a missing weight fails here."""
        edge = EdgeDetector(nets_factory, self.send_faces, config)
        edge.start()
        self.edge = edge
        return edge

    def _frames(self) -> Iterator[tuple[np.ndarray, float]]:
        """Pictures at most at ``fps``, each with its capture time; skips rather than queues."""
        interval = 1.0 / self.fps
        t0 = time.monotonic()
        next_due = t0
        while not self._stop:
            now = time.monotonic()
            if self.source.live:
                img = self.source.read(now - t0)  # read continuously; keep only what is due
                if img is None:
                    self.poll_control(0.05)
                    continue
                if now < next_due:
                    continue
            else:
                if now < next_due:
                    self.poll_control(next_due - now)
                    continue
                try:
                    img = self.source.read(now - t0)
                except EndOfSource:
                    if not self.loop:
                        return
                    if isinstance(self.source, VideoSource):
                        self.source.rewind()
                    t0 = next_due = time.monotonic()
                    continue
                if img is None:
                    continue
            next_due = max(next_due + interval, now - interval)  # fall behind: skip, don't catch up
            yield img, time.time()

    def run(self) -> int:
        """Stream until stopped or the source ends; returns an exit status."""
        log.info(
            "camera %r (id %08x) on UDP port %d, %s",
            self.name,
            self.camera_id,
            self.port,
            "pushing to " + ", ".join(f"{a}:{p}" for a, p in self._stations) if self._stations else "announcing",
        )
        last_hello = 0.0
        frame_id = 0
        try:
            for img, captured in self._frames():
                try:
                    jpeg = encode(img, max_width=self.max_width, quality=self.quality)
                except (ValueError, cv2.error) as exc:
                    log.warning("skipping a frame that would not encode: %s", exc)
                    continue
                if not self.width:
                    self.height, self.width = encoded_size(img.shape[0], img.shape[1], self.max_width)
                now = time.monotonic()
                if now - last_hello >= HELLO_EVERY_S:
                    last_hello = now
                    self.hello_all()
                self.poll_control(0)
                self._expire()
                captured_us = int(captured * 1e6)
                if self.send_frame(jpeg, frame_id, captured_us) and self.edge is not None and self.face_targets():
                    self.edge.offer(frame_id, img, captured_us, (self.width, self.height))
                frame_id += 1
                self._log_status()
        finally:
            self.close()
        return 0

    def _log_status(self) -> None:
        now = time.monotonic()
        t, frames, nbytes, detected = self._status
        if now - t >= STATUS_EVERY_S:
            dt = now - t
            edge = self.edge
            detect = ""
            if edge is not None and edge.running:
                done = edge.detected - detected
                each_ms = 1000 * edge.busy_s / max(edge.detected, 1)
                per_frame = edge.faces / max(edge.detected, 1)
                detect = (
                    f", detect {done / dt:.1f} fps ({each_ms:.0f} ms each), {per_frame:.1f} faces/frame, "
                    f"{edge.failures} failure(s)"
                )
            elif edge is not None:
                detect = f", detection off after {edge.failures} failure(s)"
            log.info(
                "status: %.1f fps, %.0f kbit/s, %d subscriber(s)%s",
                (self.frames_sent - frames) / dt,
                (self.bytes_sent - nbytes) * 8 / 1000 / dt,
                len(self.subscribers()),
                detect,
            )
            self._status = (now, self.frames_sent, self.bytes_sent, 0 if edge is None else edge.detected)

    def close(self) -> None:
        """Say BYE to every station and release the source and socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.edge is not None:
            self.edge.stop()
        with self._send_lock:
            for entry in self._stations.values():
                self._sendto(self._sealer.control(Bye("sender stopping")), entry.address)
        self._stations.clear()
        self.source.close()
        self._sock.close()


def encoded_size(h: int, w: int, max_width: int) -> tuple[int, int]:
    if max_width and w > max_width:
        return max(1, round(h * max_width / w)), max_width
    return h, w
