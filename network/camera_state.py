"""What the receive thread keeps per camera and per subscription, and the figures made from it.

Receive thread only (the receiver's lock held): plain mutable records, never handed to other
threads; :func:`camera_stats` turns one into the frozen :class:`~network.frames.CameraStats` that is.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from network import protocol
from network.addresses import Address
from network.frames import CameraStats, DetectAt
from network.pairing import CameraFaces
from network.protocol import SessionGuard
from network.wire.reassembly import ReassemblyWindow

MAX_IN_FLIGHT = 4  # frames being reassembled at once per camera (the receiver's config sets its own)


class Window:
    """Counts over the last few seconds in 100 ms buckets (cheap on the hot path)."""

    def __init__(self, seconds: float) -> None:
        self._buckets: deque[list[float]] = deque(maxlen=max(2, int(seconds * 10)))
        self._seconds = seconds

    def add(self, now: float, frames: int = 0, nbytes: int = 0) -> None:
        slot = int(now * 10)
        if not self._buckets or self._buckets[-1][0] != slot:
            self._buckets.append([slot, 0.0, 0.0])
        bucket = self._buckets[-1]
        bucket[1] += frames
        bucket[2] += nbytes

    def rates(self, now: float) -> tuple[float, float]:
        """(frames per second, kbit per second) over the window."""
        oldest = int((now - self._seconds) * 10)
        frames = sum(b[1] for b in self._buckets if b[0] > oldest)
        nbytes = sum(b[2] for b in self._buckets if b[0] > oldest)
        return frames / self._seconds, nbytes * 8 / 1000.0 / self._seconds


@dataclass
class CameraState:
    """Everything the receive thread knows about one camera (receive thread only)."""

    camera_id: int
    name: str
    address: Address
    width: int = 0
    height: int = 0
    fps: float = 0.0
    guard: SessionGuard = field(default_factory=SessionGuard)
    reassembly: ReassemblyWindow = field(default_factory=lambda: ReassemblyWindow(MAX_IN_FLIGHT))
    online: bool = False
    last_seen: float = 0.0
    frames: int = 0
    recovered: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=300))
    window: Window = field(default_factory=lambda: Window(2.0))
    seq_first: int = -1
    seq_highest: int = -1
    seq_received: int = 0
    loss_marks: deque[tuple[float, int, int]] = field(default_factory=lambda: deque(maxlen=64))
    protocol: int = 1
    faces: CameraFaces | None = None  # created on the first HELLO that says protocol 2
    faces_window: Window = field(default_factory=lambda: Window(2.0))
    accept_sent: float = 0.0

    @property
    def last_delivered(self) -> int:
        """The id of the newest frame delivered (older frames' chunks are ignored)."""
        return self.reassembly.last_complete

    @property
    def incomplete(self) -> int:
        """Frames dropped before they were complete (evicted, timed out, or overtaken)."""
        return self.reassembly.incomplete

    def reset_session(self) -> None:
        if self.faces is not None:
            self.faces.reset()
        self.reassembly.reset()
        self.seq_first = self.seq_highest = -1
        self.seq_received = 0
        self.loss_marks.clear()


@dataclass
class Subscription:
    address: Address
    cookie: bytes = bytes(protocol.COOKIE_SIZE)
    last_sent: float = 0.0
    camera_id: int = 0


def camera_stats(cam: CameraState, now: float, window: float) -> CameraStats:
    fps, kbps = cam.window.rates(now)
    faces_kbps = cam.faces_window.rates(now)[1]
    lat = np.array(cam.latencies) if cam.latencies else None
    faces = cam.faces
    return CameraStats(
        camera=cam.name,
        address=f"{cam.address[0]}:{cam.address[1]}",
        online=cam.online,
        width=cam.width,
        height=cam.height,
        announced_fps=cam.fps,
        fps=round(fps, 2),
        kbps=round(kbps, 1),
        loss=round(loss(cam, now, window), 4),
        frames=cam.frames,
        incomplete=cam.incomplete,
        recovered=cam.recovered,
        rejected=dict(cam.rejected),
        latency_ms_p50=None if lat is None else round(float(np.percentile(lat, 50)), 2),
        latency_ms_p95=None if lat is None else round(float(np.percentile(lat, 95)), 2),
        last_seen=cam.last_seen,
        protocol=cam.protocol,
        detect=DetectAt.EDGE if faces is not None and faces.edge else DetectAt.STATION,
        faces=0 if faces is None else faces.paired,
        faces_unpaired=0 if faces is None else faces.unpaired,
        edge_fallbacks=0 if faces is None else faces.fallbacks,
        faces_kbps=round(faces_kbps, 1),
    )


def loss(cam: CameraState, now: float, window: float) -> float:
    """Datagram loss over the recent window, from gaps in the sequence numbers."""
    if cam.seq_first < 0:
        return 0.0
    received, expected = cam.seq_received, cam.seq_highest - cam.seq_first + 1
    base_r, base_e = 0, 0
    for t, r, e in cam.loss_marks:
        if now - t <= window:
            base_r, base_e = r, e
            break
    d_exp = expected - base_e
    if d_exp <= 0:
        return 0.0
    return max(0.0, min(1.0, 1.0 - (received - base_r) / d_exp))


def format_stats(stats: CameraStats) -> dict[str, object]:
    """The ``stats`` JSON line of the CLI contract for one camera."""
    return {
        "event": "stats",
        "camera": stats.camera,
        "online": stats.online,
        "fps": stats.fps,
        "kbps": stats.kbps,
        "loss": stats.loss,
        "frames": stats.frames,
        "incomplete": stats.incomplete,
        "recovered": stats.recovered,
        "rejected": stats.rejected,
        "latency_ms_p50": stats.latency_ms_p50,
        "latency_ms_p95": stats.latency_ms_p95,
        "protocol": stats.protocol,
        "detect": stats.detect,
        "faces": stats.faces,
        "faces_kbps": stats.faces_kbps,
        "faces_unpaired": stats.faces_unpaired,
        "edge_fallbacks": stats.edge_fallbacks,
    }
