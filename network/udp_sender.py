"""The headless camera sender: capture, JPEG-encode, seal and stream over UDP.

Runs on a camera host with only numpy, opencv-python-headless, zeroconf and
cryptography installed (``pip install .[sender]``)::

    python network/udp_sender.py --source 0 --key-file station.key
    python network/udp_sender.py --source clip.mp4 --loop --station 10.0.0.5:47800 --key-file station.key

Without ``--station`` it announces itself over mDNS and streams to each station
that subscribes, for as long as that station renews its lease. With
``--station`` it pushes to one station. It keeps ``--fps`` by skipping frames
(never queueing them) and paces its datagrams instead of bursting them.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if not {"-v", "--verbose"} & set(sys.argv):  # FFmpeg's own log lines would bury our one clear error line
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2
import numpy as np

from network import keys, protocol
from network.protocol import Bye, Hello, Rejection, SessionGuard, Subscribe

log = logging.getLogger("facestation.sender")

DEFAULT_PORT = 47810
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
URL_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
HELLO_EVERY_S = 1.0
STATUS_EVERY_S = 5.0
REOPEN_EVERY_S = 2.0


class SenderError(Exception):
    """A problem the operator must fix; printed as one line, exit status 2."""


# --------------------------------------------------------------------------
# Sources


class Source:
    """Something that yields pictures. ``read`` returns None when it has nothing now."""

    name = "source"
    live = True  # a live source is read as fast as it produces; a file is read by its clock
    fps: float = 0.0

    def read(self, media_time: float) -> np.ndarray | None:
        raise NotImplementedError

    def size(self) -> tuple[int, int]:
        """(width, height) if known before the first frame, else (0, 0)."""
        return 0, 0

    def close(self) -> None:
        pass


class DemoSource(Source):
    """A synthetic moving picture: needs no camera and no files."""

    live = False

    def __init__(self, width: int = 640, height: int = 480, fps: float = 15.0) -> None:
        self.name = "demo"
        self.fps = fps
        self.width, self.height = width, height
        y, x = np.mgrid[0:height, 0:width]
        self._base = np.dstack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)), np.full_like(x, 96)])
        self._base = self._base.astype(np.uint8)
        self._count = 0

    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def read(self, media_time: float) -> np.ndarray | None:
        self._count += 1
        img = np.roll(self._base, int(media_time * 40) % self.width, axis=1).copy()
        cx = int(self.width / 2 + self.width / 3 * np.sin(media_time * 1.3))
        cy = int(self.height / 2 + self.height / 3 * np.cos(media_time * 0.9))
        cv2.circle(img, (cx, cy), max(8, self.height // 8), (40, 40, 230), -1)
        stamp = time.strftime("%H:%M:%S")
        cv2.putText(
            img,
            f"FaceStation demo  {stamp}  #{self._count}",
            (12, 30),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.7,
            (255, 255, 255),
            2,
            cv2.LINE_AA,
        )
        return img


class VideoSource(Source):
    """A webcam, a video file or a stream URL, through OpenCV."""

    def __init__(self, spec: str, *, loop: bool, open_timeout_ms: int = 5000) -> None:
        self.spec = spec
        self.loop = loop
        self.name = spec
        self._index: int | None = int(spec) if spec.isdigit() else None
        self.is_url = spec.lower().startswith(URL_PREFIXES)
        self.live = self._index is not None or self.is_url
        self._timeout = open_timeout_ms
        if self._index is None and not self.is_url and not Path(spec).is_file():
            raise SenderError(f"video file not found: {spec}")
        self._cap = self._open()
        if self._cap is None:
            if self._index is not None:
                raise SenderError(f"cannot open camera {self._index} (no such device, or busy)")
            if self.is_url:
                raise SenderError(f"cannot open URL {spec} (unreachable, refused or not a video; -v shows why)")
            raise SenderError(f"cannot open video file {spec} (not a video OpenCV can decode)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.5 < fps < 1000 else 25.0
        self._next_pos = 0.0  # media time (s) of the next frame in a file
        self._last_reopen = 0.0

    def size(self) -> tuple[int, int]:
        if self._cap is None:
            return 0, 0
        return int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def _open(self) -> cv2.VideoCapture | None:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._timeout, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._timeout]
        if self._index is not None:
            cap = cv2.VideoCapture(self._index)
        else:
            cap = cv2.VideoCapture(self.spec, cv2.CAP_ANY, params)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def read(self, media_time: float) -> np.ndarray | None:
        if self._cap is None:
            self._reopen()
            return None
        if self.live:
            ok, img = self._cap.read()
            if not ok:
                log.warning("source %s stopped delivering; reopening", self.spec)
                self._cap.release()
                self._cap = None
                return None
            return img
        # A file plays by its own clock: skip (grab without decoding) up to media_time.
        frame_dt = 1.0 / self.fps
        while self._next_pos + frame_dt <= media_time:  # the frame after next is due too: skip next
            if not self._cap.grab():
                raise EndOfSource(self.spec)
            self._next_pos += frame_dt
        ok, img = self._cap.read()
        if not ok:
            raise EndOfSource(self.spec)
        self._next_pos += frame_dt
        return img

    def rewind(self) -> None:
        if self._cap is not None:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._next_pos = 0.0

    def _reopen(self) -> None:
        now = time.monotonic()
        if now - self._last_reopen >= REOPEN_EVERY_S:
            self._last_reopen = now
            self._cap = self._open()
            if self._cap is not None:
                log.info("source %s is back", self.spec)
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


class FolderSource(Source):
    """A folder of still images shown as a slideshow at ``--fps``."""

    live = False

    def __init__(self, folder: Path, *, loop: bool, fps: float) -> None:
        self.name = str(folder)
        self.loop = loop
        self.fps = fps
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise SenderError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {folder}")
        self._next = 0
        self._good = 0

    def read(self, media_time: float) -> np.ndarray | None:
        while True:
            if self._next >= len(self.files):
                if not self.loop or self._good == 0:
                    if self._good == 0:
                        raise SenderError(f"none of the {len(self.files)} images in {self.name} could be read")
                    raise EndOfSource(self.name)
                self._next = 0
            path = self.files[self._next]
            self._next += 1
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                log.warning("skipping unreadable image %s", path)
                continue
            self._good += 1
            return img


class EndOfSource(Exception):
    """A file or folder source reached its end and is not looping."""


def open_source(spec: str, *, loop: bool, fps: float) -> Source:
    """Open ``--source``; raises :class:`SenderError` with a clear message."""
    if spec == "demo":
        return DemoSource(fps=fps)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, loop=loop, fps=fps)
    return VideoSource(spec, loop=loop)


# --------------------------------------------------------------------------
# Encoding


def encode(img: np.ndarray, *, max_width: int, quality: int) -> bytes:
    """Resize to at most ``max_width`` (keeping the aspect) and JPEG-encode."""
    h, w = img.shape[:2]
    if max_width and w > max_width:
        img = cv2.resize(img, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


# --------------------------------------------------------------------------
# Streaming


@dataclass
class _Station:
    address: tuple[str, int]
    expires: float  # monotonic; float("inf") for the push station
    cookie: bytes
    pushed: bool = False


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
            raise SenderError(f"cannot listen on UDP port {port}: {exc.strerror}") from None
        self._sock.setblocking(False)
        self._stations: dict[tuple[str, int], _Station] = {}
        self._cookies: dict[tuple[str, int], bytes] = {}
        if station is not None:
            self._stations[station] = _Station(station, float("inf"), b"", pushed=True)
        self.width = self.height = 0
        self._stop = False
        self._closed = False
        self.frames_sent = 0
        self.bytes_sent = 0
        self._status = (time.monotonic(), 0, 0)

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
        return [s.address for s in self._stations.values() if s.expires > now]

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
        if header.camera_id not in (0, self.camera_id):
            return
        guard = self._guards.get(header.session)
        if guard is None:
            if len(self._guards) > 256:
                self._guards.clear()
            guard = self._guards[header.session] = SessionGuard()
        if not guard.accept(header, stale=False)[0]:
            return
        msg = protocol.parse_control(header.type, opened.payload)
        if isinstance(msg, Subscribe):
            known = self._cookies.get(addr)
            if known is None or msg.cookie != known:
                self._send_hello(addr)  # prove the address is live: the station must echo our cookie
                return
            entry = self._stations.get(addr)
            if entry is None:
                log.info("station %s:%d (%s) subscribed for %ds", addr[0], addr[1], msg.station, msg.lease_s)
                entry = self._stations[addr] = _Station(addr, 0.0, known)
            entry.expires = max(entry.expires, time.monotonic() + min(msg.lease_s, 300))
        elif isinstance(msg, Bye):
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

    def send_frame(self, jpeg: bytes, frame_id: int, captured_us: int) -> None:
        targets = self.subscribers()
        if not targets:
            return
        datagrams = self._sealer.frame(frame_id, jpeg, captured_us, group_size=self.fec_group)
        self._pacer.start_frame()
        for dgram in datagrams:
            for address in targets:
                if not self._sendto(dgram, address):
                    select.select([], [self._sock], [], 0.01)  # send buffer full: wait briefly, then retry once
                    self._sendto(dgram, address)
                self._pacer.sent(len(dgram))
        self.frames_sent += 1
        self.bytes_sent += sum(len(d) for d in datagrams) * len(targets)

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
                    self.height, self.width = _encoded_size(img.shape[0], img.shape[1], self.max_width)
                now = time.monotonic()
                if now - last_hello >= HELLO_EVERY_S:
                    last_hello = now
                    self.hello_all()
                self.poll_control(0)
                self._expire()
                self.send_frame(jpeg, frame_id, int(captured * 1e6))
                frame_id += 1
                self._log_status()
        finally:
            self.close()
        return 0

    def _log_status(self) -> None:
        now = time.monotonic()
        t, frames, nbytes = self._status
        if now - t >= STATUS_EVERY_S:
            dt = now - t
            log.info(
                "status: %.1f fps, %.0f kbit/s, %d subscriber(s)",
                (self.frames_sent - frames) / dt,
                (self.bytes_sent - nbytes) * 8 / 1000 / dt,
                len(self.subscribers()),
            )
            self._status = (now, self.frames_sent, self.bytes_sent)

    def close(self) -> None:
        """Say BYE to every station and release the source and socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for entry in self._stations.values():
            self._sendto(self._sealer.control(Bye("sender stopping")), entry.address)
        self._stations.clear()
        self.source.close()
        self._sock.close()


def _encoded_size(h: int, w: int, max_width: int) -> tuple[int, int]:
    if max_width and w > max_width:
        return max(1, round(h * max_width / w)), max_width
    return h, w


# --------------------------------------------------------------------------
# Command line


def read_key(path: str) -> bytes:
    try:
        return keys.read_key(Path(path))
    except keys.KeyFileError as exc:
        raise SenderError(str(exc)) from None


def parse_station(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SenderError(f"--station wants HOST:PORT, got {text!r}")
    try:
        resolved = socket.getaddrinfo(host.strip("[]"), int(port), socket.AF_INET, socket.SOCK_DGRAM)[0][4]
    except socket.gaierror as exc:
        raise SenderError(f"cannot resolve station host {host!r}: {exc.strerror}") from None
    return str(resolved[0]), int(resolved[1])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="udp_sender.py", description="FaceStation camera sender")
    p.add_argument("--source", required=True, help='webcam index, video file, RTSP/HTTP URL, image folder, or "demo"')
    p.add_argument("--name", help="camera name (default: the host name, or the source)")
    p.add_argument("--station", help="push to this station HOST:PORT instead of announcing over mDNS")
    p.add_argument("--key-file", default="station.key", help="the station's key file (default: station.key)")
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--max-width", type=int, default=1280)
    p.add_argument("--quality", type=int, default=80)
    p.add_argument("--loop", action="store_true", help="loop a video file or image folder")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"UDP port for subscriptions (default {DEFAULT_PORT})"
    )
    p.add_argument("--bind", default="0.0.0.0", help="local address to bind (default all)")
    p.add_argument("--mdns-interface", action="append", metavar="IP", help="announce only on this interface address")
    p.add_argument(
        "--no-announce", action="store_true", help="take subscriptions on --port without announcing over mDNS"
    )
    p.add_argument("--max-mbps", type=float, default=200.0, help="pacing rate per station (default 200 Mbit/s)")
    p.add_argument(
        "--fec-group",
        type=int,
        default=protocol.DEFAULT_GROUP_SIZE,
        help="data chunks per parity chunk; 0 disables FEC",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s sender %(levelname)s %(message)s",
    )
    if not args.verbose:  # OpenCV's own warnings would bury our one clear error line
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    sender: Sender | None = None
    announcer = None
    try:
        if not 0 < args.fps <= 120:
            raise SenderError(f"--fps must be within (0, 120], got {args.fps}")
        if not 1 <= args.quality <= 100:
            raise SenderError(f"--quality must be within 1..100, got {args.quality}")
        if args.max_width < 0:
            raise SenderError("--max-width must not be negative")
        if args.fec_group < 0:
            raise SenderError("--fec-group must not be negative")
        key = read_key(args.key_file)
        station = parse_station(args.station) if args.station else None
        name = args.name or (socket.gethostname() if args.source.isdigit() else Path(args.source).stem or "camera")
        try:
            protocol.encode_control(Hello(name, 0, 0, 0))
        except ValueError as exc:
            raise SenderError(f"bad --name: {exc}") from None
        source = open_source(args.source, loop=args.loop, fps=args.fps)
        sender = Sender(
            source,
            key,
            name=name,
            fps=args.fps,
            max_width=args.max_width,
            quality=args.quality,
            station=station,
            port=args.port,
            bind_host=args.bind,
            mbps=args.max_mbps,
            fec_group=args.fec_group,
            loop=args.loop,
        )
        signal.signal(signal.SIGTERM, _raise_interrupt)  # until the loop runs: stop wherever we are
        if station is None and not args.no_announce:
            from network.discovery import Announcer

            probe_h, probe_w = _probe_size(source, args.max_width)
            announcer = Announcer(
                name, sender.port, width=probe_w, height=probe_h, fps=sender.fps, interfaces=args.mdns_interface
            )
        # From here on a signal only asks the loop to stop, so it never lands inside a log write or a
        # half-sent frame; the loop notices within one frame interval and says BYE.
        signal.signal(signal.SIGINT, sender.stop)
        signal.signal(signal.SIGTERM, sender.stop)
        status = sender.run()
        if sender.stopped:
            log.info("stopping")
        return status
    except SenderError as exc:
        print(f"udp_sender: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        log.info("stopping")
        if sender is not None:
            sender.close()
        return 0
    finally:
        if announcer is not None:
            announcer.close()


def _probe_size(source: Source, max_width: int) -> tuple[int, int]:
    """The (height, width) the stream will have, for the announcement; (0, 0) if unknown."""
    w, h = source.size()
    return _encoded_size(h, w, max_width) if w and h else (0, 0)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
