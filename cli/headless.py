"""``main.py headless``: the station without a display; JSON lines on stdout (DESIGN.md's CLI contract)."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from cli.common import DEFAULT_LISTEN, CliError, emit, hostport, iso
from station import settings as table


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("headless", parents=[common], help="receive without a GUI, printing JSON lines")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT to receive on (default {DEFAULT_LISTEN})")
    p.add_argument("--key-file", help="station key (default: station.key beside the gallery, created if missing)")
    p.add_argument("--connect", action="append", metavar="HOST:PORT", help="subscribe to the sender at HOST:PORT")
    p.add_argument("--stats-every", type=float, default=5.0, metavar="S", help="print stats every S seconds")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--discover", action="store_true", help="find senders over mDNS on all interfaces")
    p.add_argument("--mdns-interface", action="append", metavar="IP", help="discover over mDNS on this address only")
    p.add_argument("--offline-after", type=float, default=3.0, metavar="S", help="silence before a camera is offline")
    p.add_argument("--demo", type=int, nargs="?", const=1, default=0, metavar="N", help="start N local demo senders")
    p.add_argument("--no-recognition", dest="recognition", action="store_false", help="receive only: load no models")
    p.add_argument("--workers", type=int, metavar="N", help="recognition threads (default: by CPU count)")
    table.add_arguments(p, "threshold", "max_rate_hz", "ray_address")  # checked by the one settings table
    p.add_argument("--ray-workers", type=int, default=2, metavar="N", help="recognition actors on the cluster")
    p.set_defaults(func=run)


def print_sighting(record: Any) -> None:
    """A sighting line; its score is null when the face was compared with no one (an empty gallery)."""
    from vision.matcher import NO_SCORE

    emit(
        {
            "event": "sighting",
            "camera": record.camera,
            "person": record.person,
            "score": None if record.score is None or record.score <= NO_SCORE else round(float(record.score), 4),
            "start": iso(record.start),
            "end": iso(record.end),
            "track": record.track_id,
            "frames": record.frames,
        }
    )


def _rounded(stats: Any) -> dict[str, Any]:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(stats).items()}


def _camera_line(ev: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"event": "camera", "camera": ev.camera, "state": ev.state, "address": ev.address}
    if ev.reason:
        line["reason"] = ev.reason
    return line


def run(args: argparse.Namespace) -> int:
    from network.udp_receiver import format_stats
    from station.station import Station, StationError, StationOptions

    listen = hostport(args.listen, "--listen")
    connects = tuple(hostport(c, "--connect", allow_zero=False) for c in args.connect or [])
    if args.stats_every <= 0:
        raise CliError("--stats-every must be positive")
    options = StationOptions(
        gallery=Path(args.gallery),
        listen=listen,
        key_file=Path(args.key_file) if args.key_file else None,
        actor="headless",
        recognition=args.recognition,
        threshold=args.threshold,
        max_rate_hz=args.max_rate,
        workers=args.workers,
        ray_address=args.ray_address or "",  # headless uses a cluster only when told to
        ray_workers=args.ray_workers,
        offline_after_s=args.offline_after,
        connect=connects,
        discover=bool(args.discover or args.mdns_interface),
        auto_subscribe=True,
        mdns_interfaces=tuple(args.mdns_interface) if args.mdns_interface else None,
        demo_cameras=args.demo,
        demo_people=bool(args.demo),
    )
    station = Station(options)

    def found(sender: Any, present: bool) -> None:
        emit(
            {
                "event": "discovered",
                "camera": sender.name,
                "address": sender.address,
                "present": present,
                "width": sender.width,
                "height": sender.height,
                "fps": sender.fps,
            }
        )

    station.add_discovery_listener(found)
    station.add_sighting_listener(print_sighting)
    try:
        station.start()
    except StationError as exc:
        raise CliError(str(exc)) from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    receiver = station.receiver
    assert receiver is not None
    host, port = receiver.address
    emit({"event": "listening", "address": f"{host}:{port}"})
    try:
        started = time.monotonic()
        next_stats = started + args.stats_every
        while not stop.is_set():
            now = time.monotonic()
            if args.duration is not None and now - started >= args.duration:
                break
            for ev in receiver.drain_events():
                emit(_camera_line(ev))
            if now >= next_stats:
                next_stats += args.stats_every
                for st in receiver.stats():
                    emit(format_stats(st))
                if station.recogniser is not None:
                    for rs in station.recogniser.stats():
                        emit({"event": "recognition", **_rounded(rs)})
                if station.ray_pool is not None:
                    emit({"event": "ray", **asdict(station.ray_pool.stats())})
                if station.storage is not None:
                    emit(station.storage.status().as_json())
                rejected = receiver.rejected()
                if rejected:
                    emit({"event": "rejected", "rejected": rejected, "total": sum(rejected.values())})
            stop.wait(0.1)
    finally:
        station.stop()  # open tracks become sightings, printed and recorded
        for ev in receiver.drain_events():
            emit(_camera_line(ev))
    return 0
