"""The cameras of bench/station.py: N cameras replayed from ONE process that only seals and sends.

The clip is decoded and JPEG-encoded once (:func:`encode_clip`, at the sender's defaults: 15 fps,
quality 80) and written to a frames file (:func:`write_frames`); this process reads it back and, for
each camera, loops the clip from the camera's own starting frame at ``fps``, sealing every frame with
the real wire protocol (``network.protocol.Sealer``: chunks, FEC parity, ChaCha20-Poly1305, a HELLO
every second) and sending it over loopback to the station, as ``network/udp_sender.py --station``
does, minus the capture and the encoder. Cameras send in turn, spread evenly over the frame interval
(:class:`Schedule`), from one socket; what the station sends back (ACCEPT, SUBSCRIBE probes) is read
and dropped. So N cameras cost the machine one small process instead of N encoders.

    python bench/station_replay.py --station 127.0.0.1:PORT --key-file F --frames FILE --cameras N

It runs until SIGTERM (then says BYE for every camera) or until its parent process is gone.
"""

from __future__ import annotations

import argparse
import heapq
import os
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__" and __package__ in (None, ""):  # run as a script: the repository root first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOST = "127.0.0.1"  # loopback only
HELLO_EVERY_S = 1.0
_LENGTH = struct.Struct("!I")


def camera_name(index: int) -> str:
    return f"cam-{index + 1:02d}"


# ------------------------------------------------------------------ frames


def encode_clip(clip: Path, *, fps: float = 15.0, quality: int = 80, limit: int = 0) -> list[bytes]:
    """The clip's frames at ``fps`` (every k-th frame of the file) as JPEG, as the sender would encode them."""
    import cv2

    cap = cv2.VideoCapture(str(clip))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open {clip}")
    native = cap.get(cv2.CAP_PROP_FPS) or fps
    step = max(1, round(native / fps))
    out: list[bytes] = []
    index = 0
    try:
        while not limit or len(out) < limit:
            ok, image = cap.read()
            if not ok:
                break
            if index % step == 0:
                good, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
                if not good:
                    raise ValueError(f"frame {index} of {clip} would not encode")
                out.append(buf.tobytes())
            index += 1
    finally:
        cap.release()
    if not out:
        raise ValueError(f"{clip} gave no frames")
    return out


def write_frames(path: Path, frames: list[bytes]) -> None:
    """Length-prefixed JPEGs in one file (so the replay process and the stages alone read the same bytes)."""
    with open(path, "wb") as f:
        for jpeg in frames:
            f.write(_LENGTH.pack(len(jpeg)))
            f.write(jpeg)


def read_frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out: list[bytes] = []
    at = 0
    while at < len(data):
        if at + _LENGTH.size > len(data):
            raise ValueError(f"{path}: truncated length at byte {at}")
        (n,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        if at + n > len(data):
            raise ValueError(f"{path}: truncated frame at byte {at}")
        out.append(data[at : at + n])
        at += n
    return out


def _jpeg_size(jpeg: bytes) -> tuple[int, int]:
    """(width, height) of a JPEG."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("the frames file holds a JPEG that does not decode")
    return int(image.shape[1]), int(image.shape[0])


# ---------------------------------------------------------------- schedule


@dataclass(frozen=True, slots=True)
class Send:
    """One frame due: which camera, which frame of the clip, its frame id, when."""

    camera: int
    clip_index: int
    frame_id: int
    due: float


class Schedule:
    """When each camera sends which frame: camera i starts at clip frame ``i * frames / cameras`` and sends
    at ``fps``, offset by ``i / (cameras * fps)`` within each interval, so the cameras take turns."""

    def __init__(self, cameras: int, frames: int, fps: float, start: float) -> None:
        if cameras < 1 or frames < 1 or fps <= 0:
            raise ValueError("a schedule needs at least one camera, one frame and a positive fps")
        self.cameras = cameras
        self.frames = frames
        self.interval = 1.0 / fps
        self._heap = [(start + i * self.interval / cameras, i, 0) for i in range(cameras)]
        heapq.heapify(self._heap)

    def first_frame(self, camera: int) -> int:
        return (camera * self.frames) // self.cameras

    def peek(self) -> float:
        """When the next send is due."""
        return self._heap[0][0]

    def pop(self, now: float) -> Send:
        """The next send, its camera rescheduled; a camera that fell more than an interval behind skips
        frames rather than catching up (as the real sender does)."""
        due, camera, n = heapq.heappop(self._heap)
        later = due + self.interval
        if later < now - self.interval:
            later = now
        heapq.heappush(self._heap, (later, camera, n + 1))
        return Send(camera, (self.first_frame(camera) + n) % self.frames, n, due)

    def until(self, end: float) -> Iterator[Send]:
        """Every send due before ``end``, in order, as if on time (for tests)."""
        while self.peek() < end:
            yield self.pop(self.peek())


# ------------------------------------------------------------------ replay


class Replay:
    """Seals and sends the cameras' frames to one station from one socket."""

    def __init__(self, key: bytes, station: tuple[str, int], frames: list[bytes], cameras: int, fps: float) -> None:
        from network import protocol

        self.protocol = protocol
        self.station = station
        self.frames = frames
        self.fps = fps
        self.names = [camera_name(i) for i in range(cameras)]
        now_us = int(time.time() * 1e6)
        self.sealers = [protocol.Sealer(key, protocol.camera_id_for(n), now_us) for n in self.names]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        self.sock.bind((HOST, 0))
        self.schedule = Schedule(cameras, len(frames), fps, time.monotonic() + 0.05)
        self.sent_frames = 0
        self.sent_bytes = 0
        self.size = _jpeg_size(frames[0])
        self._last_hello = 0.0
        self._stop = False

    def stop(self, *_: object) -> None:
        self._stop = True

    def hello(self) -> None:
        width, height = self.size
        for name, sealer in zip(self.names, self.sealers, strict=True):
            self._send(sealer.control(self.protocol.Hello(name, width, height, self.fps)))

    def _send(self, datagram: bytes) -> None:
        try:
            self.sock.sendto(datagram, self.station)
            self.sent_bytes += len(datagram)
        except OSError:  # the station went away: keep to the schedule, it may come back
            pass

    def _drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` while reading (and dropping) what the station sends back."""
        readable, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        while readable:
            try:
                self.sock.recvfrom(4096)
            except OSError:
                return
            readable, _, _ = select.select([self.sock], [], [], 0.0)

    def run(self, parent: int) -> None:
        while not self._stop:
            now = time.monotonic()
            if now - self._last_hello >= HELLO_EVERY_S:
                self._last_hello = now
                self.hello()
                if os.getppid() != parent:
                    return
            due = self.schedule.peek()
            if due > now:
                self._drain(due - now)
                continue
            send = self.schedule.pop(now)
            sealer = self.sealers[send.camera]
            for datagram in sealer.frame(send.frame_id, self.frames[send.clip_index], int(time.time() * 1e6)):
                self._send(datagram)
            self.sent_frames += 1

    def close(self) -> None:
        for sealer in self.sealers:
            self._send(sealer.control(self.protocol.Bye("replay stopping")))
        self.sock.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--station", required=True, metavar="HOST:PORT")
    ap.add_argument("--key-file", required=True, type=Path)
    ap.add_argument("--frames", required=True, type=Path, help="a frames file written by write_frames")
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--fps", type=float, default=15.0)
    args = ap.parse_args(argv)
    from network import keys

    host, _, port = args.station.rpartition(":")
    if host != HOST:
        raise SystemExit("the replay sends to 127.0.0.1 only")
    replay = Replay(keys.read_key(args.key_file), (host, int(port)), read_frames(args.frames), args.cameras, args.fps)
    signal.signal(signal.SIGTERM, replay.stop)
    signal.signal(signal.SIGINT, replay.stop)
    try:
        replay.run(os.getppid())
    finally:
        replay.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
