"""The station's UDP receiver: one thread, bounded reassembly, newest-frame slots.

One thread owns the socket. It opens each datagram, reassembles frames with a
few frames in flight per camera at most, and puts each complete frame in that
camera's single slot (newest frame wins, nothing queues). JPEG decoding is
left to whoever reads the slot. The same thread sends SUBSCRIBE lease renewals
to the senders the station subscribed to, and notices cameras going silent.

A camera that detects faces itself (protocol 2, ``--detect``) is sent ACCEPT in answer to its HELLO
and then sends FACES messages; network/pairing.py pairs each with its frame. Recognition reads
:meth:`UdpReceiver.wait_for_analysis`: the frames with their camera's faces for such a camera, every
frame for the others. :meth:`UdpReceiver.wait_for_frames` and the listeners see every frame, for display.

Nothing that arrives raises out of the receive loop: every refused datagram is
counted by its :class:`~network.protocol.Reason`.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import sys
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from network import protocol
from network.addresses import Address, resolve_ipv4
from network.camera_state import CameraState as _Camera
from network.camera_state import Subscription as _Subscription
from network.camera_state import Window as _Window
from network.camera_state import camera_stats
from network.camera_state import format_stats as format_stats
from network.frames import CameraEvent, CameraStats, Frame
from network.pairing import CameraFaces, PairingConfig
from network.protocol import (
    CHUNKED,
    PROTOCOL,
    Accept,
    Bye,
    Datagram,
    FrameAssembly,
    Header,
    Hello,
    MsgType,
    Reason,
    Rejection,
    Subscribe,
)

_DRAIN_MAX = 64  # datagrams handled per lock; bounds how long a reader can wait

log = logging.getLogger(__name__)

FrameListener = Callable[[Frame], None]


@dataclass(frozen=True)
class ReceiverConfig:
    """Bounds and timings of the receiver; the defaults suit a LAN."""

    max_in_flight: int = 4
    frame_timeout_s: float = 1.0
    offline_after_s: float = 3.0
    max_cameras: int = 256
    max_frame_bytes: int = protocol.MAX_FRAME_BYTES
    rcvbuf_bytes: int = 16 * 1024 * 1024
    lease_s: int = 10
    station_name: str = field(default_factory=socket.gethostname)
    stats_window_s: float = 2.0
    tick_s: float = 0.05
    edge_timeout_s: float = 2.0  # a camera that sent no usable faces for this long is detected at the station


class UdpReceiver:
    """Receives sealed frames from many cameras on one UDP socket."""

    def __init__(
        self,
        key: bytes,
        host: str = "0.0.0.0",
        port: int = 0,
        *,
        config: ReceiverConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or ReceiverConfig()
        self._key = key
        self._opener = protocol.Opener(key)
        self._clock = clock
        self._sealer = protocol.Sealer(key, 0, int(clock() * 1e6))
        self._bind = (host, port)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._frames_ready = threading.Condition(self._lock)
        self._cameras: dict[int, _Camera] = {}
        self._slots: dict[str, Frame] = {}
        self._analysis: dict[str, Frame] = {}  # what recognition takes next, per camera (newest wins)
        self._analysis_serial = 0
        self._notify = False
        self._serial = 0
        self._rejected: Counter[str] = Counter()
        self._events: deque[CameraEvent] = deque(maxlen=1024)
        self._subs: dict[Address, _Subscription] = {}
        self._pending_bye: list[Address] = []
        self._probed: dict[Address, float] = {}
        raw = self.config.station_name.encode("utf-8")[: protocol.MAX_NAME_BYTES]
        self._station_label = "".join(c for c in raw.decode("utf-8", "ignore") if ord(c) >= 32)
        self._listeners: list[FrameListener] = []
        self._event_listeners: tuple[Callable[[CameraEvent], None], ...] = ()
        self._delivered: list[Frame] = []
        self.datagrams = 0

    # ------------------------------------------------------------------ life

    def start(self) -> UdpReceiver:
        """Bind the socket and start the receive thread; raises OSError on bind failure."""
        family = socket.AF_INET6 if ":" in self._bind[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        _grow_rcvbuf(sock, self.config.rcvbuf_bytes)
        sock.bind(self._bind)
        sock.setblocking(False)  # the receive thread waits in poll(), then drains without blocking
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="udp-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Send BYE to subscribed senders, stop the thread and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> UdpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> Address:
        if self._sock is None:
            raise RuntimeError("receiver not started")
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    # --------------------------------------------------------------- readers

    def add_listener(self, listener: FrameListener) -> None:
        """Call ``listener(frame)`` on the receive thread for every frame; keep it cheap."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def add_event_listener(self, listener: Callable[[CameraEvent], None]) -> None:
        """Call ``listener(event)`` on the receive thread when a camera comes online or goes offline (beside
        :meth:`drain_events`, which the console and headless poll); it must not block."""
        with self._lock:
            self._event_listeners = (*self._event_listeners, listener)

    def latest(self, camera: str) -> Frame | None:
        with self._lock:
            return self._slots.get(camera)

    def latest_all(self) -> dict[str, Frame]:
        with self._lock:
            return dict(self._slots)

    def wait_for_frames(self, after_serial: int, timeout: float) -> list[Frame]:
        """The newest frame of each camera delivered after ``after_serial``; waits up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._frames_ready:
            while self._serial <= after_serial:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return []
                self._frames_ready.wait(left)
            return [f for f in self._slots.values() if f.serial > after_serial]

    def wait_for_analysis(self, after_serial: int, timeout: float) -> list[Frame]:
        """Like :meth:`wait_for_frames`, for recognition: an edge camera's frames come with its faces
        (and only those), any other camera's frames as they are."""
        deadline = time.monotonic() + timeout
        with self._frames_ready:
            while self._analysis_serial <= after_serial:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return []
                self._frames_ready.wait(left)
            return [f for f in self._analysis.values() if f.serial > after_serial]

    def drain_events(self) -> list[CameraEvent]:
        with self._lock:
            events = list(self._events)
            self._events.clear()
            return events

    def rejected(self) -> dict[str, int]:
        """Rejections by reason, all cameras and unattributable ones together."""
        with self._lock:
            return dict(self._rejected)

    def stats(self) -> list[CameraStats]:
        now = self._clock()
        with self._lock:
            return [self._camera_stats(cam, now) for cam in self._cameras.values()]

    def _camera_stats(self, cam: _Camera, now: float) -> CameraStats:
        return camera_stats(cam, now, self.config.stats_window_s)

    # ---------------------------------------------------------- subscriptions

    def subscribe(self, host: str, port: int) -> Address:
        """Ask the sender at HOST:PORT to stream here; renewed until unsubscribed."""
        address = _resolve(host, port)
        with self._lock:
            self._subs.setdefault(address, _Subscription(address))
        return address

    def unsubscribe(self, host: str, port: int) -> None:
        address = _resolve(host, port)
        with self._lock:
            if self._subs.pop(address, None) is not None:
                self._pending_bye.append(address)

    def subscriptions(self) -> list[Address]:
        with self._lock:
            return list(self._subs)

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        next_tick = 0.0
        batch: list[tuple[bytes, Any]] = []
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        wait_ms = max(1, round(self.config.tick_s * 1000))
        while not self._stop.is_set():
            batch.clear()
            try:
                if poller.poll(wait_ms):
                    # Drain what is already queued: one clock read, one lock and one housekeeping
                    # check per burst rather than per datagram.
                    while len(batch) < _DRAIN_MAX:
                        batch.append(sock.recvfrom(65535))
            except BlockingIOError:
                pass
            except OSError as exc:  # e.g. ICMP errors surfacing on Linux
                log.debug("recvfrom: %s", exc)
            now = self._clock()
            delivered: list[Frame] = []
            with self._lock:  # readers hold it only briefly
                for data, addr in batch:
                    try:
                        self._handle(data, (str(addr[0]), int(addr[1])), now)
                    except Exception:  # a bug must not stop the station
                        log.exception("receiver: datagram from %s failed", addr)
                if now >= next_tick:
                    next_tick = now + self.config.tick_s
                    try:
                        self._housekeeping(now)
                    except Exception:
                        log.exception("receiver: housekeeping failed")
                if self._delivered or self._notify:
                    delivered, self._delivered = self._delivered, []
                    self._notify = False
                    self._frames_ready.notify_all()
                listeners = self._listeners
            for frame in delivered:
                for listener in listeners:
                    try:
                        listener(frame)
                    except Exception:
                        log.exception("frame listener failed")
        with self._lock:
            self._farewell()

    # Everything below runs on the receive thread with self._lock held.

    def _reject(self, rejection: Rejection, cam: _Camera | None = None) -> None:
        self._rejected[rejection.reason.value] += 1
        if cam is None and rejection.camera_id is not None:
            cam = self._cameras.get(rejection.camera_id)
        if cam is not None:
            cam.rejected[rejection.reason.value] += 1

    def _handle(self, data: bytes, addr: Address, now: float) -> None:
        self.datagrams += 1
        opened = self._opener.open(data)
        if isinstance(opened, Rejection):
            self._reject(opened)
            return
        header = opened.header
        if header.type in CHUNKED:
            cam = self._cameras.get(header.camera_id)
            if cam is None:
                self._reject(Rejection(Reason.UNKNOWN_CAMERA, "no HELLO yet", header.camera_id))
                self._probe(addr, now)
                return
            if not self._admit(cam, header, now):
                return
            if header.type in (MsgType.FRAME, MsgType.PARITY):
                self._on_chunk(cam, opened, addr, now)
            else:
                self._on_faces_chunk(cam, opened, now)
        elif header.type is MsgType.HELLO:
            self._on_hello(opened, addr, now)
        elif header.type is MsgType.BYE:
            cam = self._cameras.get(header.camera_id)
            if cam is not None and self._admit(cam, header, now):
                self._set_offline(cam, now, "bye")
        else:
            self._reject(Rejection(Reason.MALFORMED, f"{header.type.name} sent to a station", header.camera_id))

    def _admit(self, cam: _Camera, header: Header, now: float) -> bool:
        stale = not cam.online or now - cam.last_seen > self.config.offline_after_s
        accepted, new_session = cam.guard.accept(header, stale=stale)
        if not accepted:
            self._reject(Rejection(Reason.REPLAY, "", header.camera_id), cam)
            return False
        if new_session:
            cam.reset_session()
        if cam.seq_first < 0:
            cam.seq_first = header.seq
        cam.seq_highest = max(cam.seq_highest, header.seq)
        cam.seq_received += 1
        cam.last_seen = now
        return True

    def _on_hello(self, dgram: Datagram, addr: Address, now: float) -> None:
        header = dgram.header
        msg = protocol.parse_control(MsgType.HELLO, dgram.payload)
        if isinstance(msg, Rejection) or not isinstance(msg, Hello):
            self._reject(msg if isinstance(msg, Rejection) else Rejection(Reason.MALFORMED), None)
            return
        if protocol.camera_id_for(msg.name) != header.camera_id:
            self._reject(Rejection(Reason.MALFORMED, "camera id does not match name", header.camera_id))
            return
        cam = self._cameras.get(header.camera_id)
        if cam is None:
            if len(self._cameras) >= self.config.max_cameras:
                self._reject(Rejection(Reason.UNKNOWN_CAMERA, "camera limit reached", header.camera_id))
                return
            cam = _Camera(header.camera_id, msg.name, addr, window=_Window(self.config.stats_window_s))
            self._cameras[header.camera_id] = cam
        if not self._admit(cam, header, now):
            return
        cam.address = addr
        cam.width, cam.height, cam.fps = msg.width, msg.height, msg.fps
        cam.protocol = msg.protocol
        if msg.protocol >= PROTOCOL:  # it may detect faces itself: ask for them (renewed like a lease)
            if cam.faces is None:
                cam.faces = CameraFaces(cam.name, PairingConfig(timeout_s=self.config.edge_timeout_s))
            if now - cam.accept_sent >= self.config.lease_s / 3.0:
                cam.accept_sent = now
                self._send(self._sealer.control(Accept(self.config.lease_s), camera_id=cam.camera_id), addr)
        sub = self._subs.get(addr)
        if sub is not None:
            sub.camera_id = header.camera_id
            if sub.cookie != msg.cookie:
                sub.cookie = msg.cookie
                self._send_subscribe(sub, now)
        self._set_online(cam, now)

    def _on_chunk(self, cam: _Camera, dgram: Datagram, addr: Address, now: float) -> None:
        header = dgram.header
        cam.window.add(now, nbytes=len(dgram.payload) + protocol.HEADER.size + protocol.TAG_SIZE)
        cam.address = addr
        self._set_online(cam, now)
        if header.frame_id <= cam.last_delivered:
            return  # a late chunk of a frame already delivered or given up
        if header.frame_len > self.config.max_frame_bytes:
            self._reject(Rejection(Reason.OVERSIZED, "frame above the receiver's ceiling"), cam)
            return
        assembly = cam.assemblies.get(header.frame_id)
        if assembly is None:
            while len(cam.assemblies) >= self.config.max_in_flight:
                cam.assemblies.popitem(last=False)
                cam.incomplete += 1
            assembly = FrameAssembly(header, now)
            cam.assemblies[header.frame_id] = assembly
            if len(cam.assemblies) > 1 and header.frame_id < next(reversed(cam.assemblies)):
                cam.assemblies = OrderedDict(sorted(cam.assemblies.items()))
        elif not assembly.matches(header):
            self._reject(Rejection(Reason.MALFORMED, "chunk disagrees with its frame"), cam)
            return
        data = assembly.add(header, dgram.payload)
        if data is not None:
            self._deliver(cam, assembly, data, now)

    def _on_faces_chunk(self, cam: _Camera, dgram: Datagram, now: float) -> None:
        header = dgram.header
        size = len(dgram.payload) + protocol.HEADER.size + protocol.TAG_SIZE
        cam.window.add(now, nbytes=size)
        cam.faces_window.add(now, nbytes=size)
        if cam.faces is None:  # FACES from a camera whose HELLO said protocol 1: it was never asked
            self._reject(Rejection(Reason.MALFORMED, "FACES from a protocol-1 camera", cam.camera_id), cam)
            return
        result = cam.faces.chunk(header, dgram.payload, now, (cam.width, cam.height))
        if result is None:
            return
        if isinstance(result, Rejection):
            log.debug("camera %s: faces of frame %d refused: %s", cam.name, header.frame_id, result.detail)
            self._reject(result, cam)
            return
        frame = cam.faces.pair(result, cam.last_delivered)
        if frame is not None:
            self._to_analysis(cam, frame, result, now)

    def _to_analysis(self, cam: _Camera, frame: Frame, faces: protocol.EdgeFaces, now: float) -> None:
        assert cam.faces is not None
        cam.faces.paired_now(now)
        self._serial += 1
        self._analysis[cam.name] = replace(frame, serial=self._serial, received_at=now, faces=faces)
        self._analysis_serial = self._serial
        self._notify = True

    def _deliver(self, cam: _Camera, assembly: FrameAssembly, data: bytes, now: float) -> None:
        fid = assembly.frame_id
        for older in [k for k in cam.assemblies if k <= fid]:
            if older != fid:
                cam.incomplete += 1
            del cam.assemblies[older]
        cam.last_delivered = fid
        cam.recovered += assembly.recovered
        self._serial += 1
        frame = Frame(cam.name, cam.camera_id, fid, self._serial, assembly.timestamp_us / 1e6, now, data)
        self._slots[cam.name] = frame
        cam.frames += 1
        cam.latencies.append(frame.latency_ms)
        cam.window.add(now, frames=1)
        self._delivered.append(frame)
        waiting = None if cam.faces is None else cam.faces.frame_delivered(frame, now)
        if waiting is not None:
            self._to_analysis(cam, frame, waiting, now)
        elif cam.faces is None or not cam.faces.edge:
            self._analysis[cam.name] = frame
            self._analysis_serial = frame.serial

    def _set_online(self, cam: _Camera, now: float) -> None:
        if not cam.online:
            cam.online = True
            self._camera_event(CameraEvent(cam.name, "online", _fmt(cam.address), now))
            log.info("camera %s online at %s", cam.name, _fmt(cam.address))

    def _set_offline(self, cam: _Camera, now: float, reason: str) -> None:
        if cam.online:
            cam.online = False
            cam.incomplete += len(cam.assemblies)
            cam.assemblies.clear()
            if cam.faces is not None:
                cam.faces.reset()
            self._camera_event(CameraEvent(cam.name, "offline", _fmt(cam.address), now, reason))
            log.info("camera %s offline (%s)", cam.name, reason)

    def _camera_event(self, event: CameraEvent) -> None:
        self._events.append(event)
        for listener in self._event_listeners:
            try:
                listener(event)
            except Exception:
                log.exception("a camera event listener failed")

    def _housekeeping(self, now: float) -> None:
        for cam in list(self._cameras.values()):
            for fid, assembly in list(cam.assemblies.items()):
                if now - assembly.started > self.config.frame_timeout_s:
                    del cam.assemblies[fid]
                    cam.incomplete += 1
            if cam.faces is not None:
                cam.faces.housekeeping(now, self.config.frame_timeout_s)
            if cam.online and now - cam.last_seen > self.config.offline_after_s:
                self._set_offline(cam, now, "silent")
            if cam.seq_first >= 0 and (not cam.loss_marks or now - cam.loss_marks[-1][0] >= 0.25):
                cam.loss_marks.append((now, cam.seq_received, cam.seq_highest - cam.seq_first + 1))
        renew = self.config.lease_s / 3.0
        byes, self._pending_bye = self._pending_bye, []
        for sub in self._subs.values():
            if now - sub.last_sent >= renew:
                self._send_subscribe(sub, now)
        for address in byes:
            self._send(self._sealer.control(Bye("unsubscribed")), address)

    def _probe(self, addr: Address, now: float) -> None:
        """Ask a sender we have no HELLO from (we restarted) to introduce itself now.

        Only authenticated datagrams get here, so this cannot be used to make
        the station send to arbitrary addresses. A SUBSCRIBE without a cookie
        earns a HELLO and never starts a stream.
        """
        if now - self._probed.get(addr, 0.0) < 0.5:
            return
        if len(self._probed) > 1024:
            self._probed.clear()
        self._probed[addr] = now
        msg = Subscribe(self.config.lease_s, self._station_label)
        self._send(self._sealer.control(msg), addr)

    def _send_subscribe(self, sub: _Subscription, now: float) -> None:
        msg = Subscribe(self.config.lease_s, self._station_label, sub.cookie)
        self._send(self._sealer.control(msg, camera_id=sub.camera_id), sub.address)
        sub.last_sent = now

    def _send(self, datagram: bytes, address: Address) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto(datagram, address)
        except OSError as exc:
            log.debug("send to %s failed: %s", _fmt(address), exc)

    def _farewell(self) -> None:
        for address in self._subs:
            self._send(self._sealer.control(Bye("station stopping")), address)


def _grow_rcvbuf(sock: socket.socket, size: int) -> None:
    """Ask for a large receive buffer; SO_RCVBUFFORCE passes rmem_max when privileged."""
    # Python 3.11 does not export SO_RCVBUFFORCE; 33 is its value on Linux.
    force = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform == "linux" else None)
    if force is not None and hasattr(os, "geteuid") and os.geteuid() == 0:
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
            return
        except OSError:
            pass
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError as exc:
        log.warning("could not set SO_RCVBUF to %d: %s", size, exc)
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if got < min(size, 2 * 1024 * 1024):  # too small for a burst from many cameras
        log.warning("receive buffer is only %d bytes (asked %d): raise net.core.rmem_max", got, size)


def _resolve(host: str, port: int) -> Address:
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    return resolve_ipv4((host, port))


def _fmt(address: Address) -> str:
    return f"{address[0]}:{address[1]}"
