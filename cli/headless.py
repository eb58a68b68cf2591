"""``main.py headless``: the station without a display; JSON lines on stdout (DESIGN.md's CLI contract).

Its lines come from the station's event bus (station/events.py), as every other consumer's do: a
camera online or offline is the contract's ``camera`` line, a recorded sighting its ``sighting`` line
(as they always were); the other events (a track started or named, a watchlist hit, an unknown face,
gallery changes) are new lines, each the event's own JSON. The integrations (MQTT, webhooks, the API)
take the gallery's settings, with these flags on top.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from cli.common import DEFAULT_LISTEN, CliError, emit, gallery_key, hostport, iso
from station import settings as table
from station.events import CameraEvent, Event, EventKind, SightingEvent

if TYPE_CHECKING:
    from vision.tracker import TrackRecord

INTEGRATION_FLAGS = ("mqtt_broker", "mqtt_prefix", "mqtt_credentials", "mqtt_tls", "api_listen", "api_tls_cert",
                     "api_tls_key")  # fmt: skip


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
    p.add_argument("--workers", type=int, metavar="N", help="recognition workers (default: by CPU count)")
    p.add_argument(
        "--worker-processes",
        action="store_true",
        help="run each recognition worker in a process of its own: more frames at many cameras and on a big PC, "
        "about 550 MiB more memory per worker (default: threads)",
    )
    table.add_arguments(p, "threshold", "max_rate_hz", "ray_address")  # checked by the one settings table
    p.add_argument("--ray-workers", type=int, default=2, metavar="N", help="recognition actors on the cluster")
    integrations = p.add_argument_group("integrations (default: the gallery's settings; all off unless set)")
    table.add_arguments(integrations, *INTEGRATION_FLAGS)  # type: ignore[arg-type]
    integrations.add_argument(
        "--webhook", action="append", metavar="URL", help="POST every event to URL (repeat for more endpoints)"
    )
    integrations.add_argument("--webhook-secret-file", metavar="FILE", help="the --webhook endpoints' signing secret")
    integrations.add_argument(
        "--webhook-event",
        action="append",
        choices=[k.value for k in EventKind],
        metavar="KIND",
        help="send only events of this kind to the --webhook endpoints (repeatable)",
    )
    integrations.add_argument(
        "--webhook-watchlist-only", action="store_true", help="send only watchlist events to the --webhook endpoints"
    )
    integrations.add_argument(
        "--api-token-file", metavar="FILE", help="the API's token file (created with mode 0600 if missing)"
    )
    p.set_defaults(func=run)


# ------------------------------------------------------------------ lines


def sighting_line(event: SightingEvent) -> dict[str, Any]:
    """The contract's sighting line; its score is null when the face was compared with no one."""
    return {
        "event": "sighting",
        "camera": event.camera,
        "person": event.person,
        "state": event.decision.value,  # named, unknown, or undecided (no look good enough)
        "score": None if event.score is None else round(float(event.score), 4),
        "start": iso(event.start if event.start is not None else event.at),
        "end": iso(event.end if event.end is not None else event.at),
        "track": event.track,
        "frames": event.frames,
    }


def print_sighting(record: TrackRecord) -> None:
    """A sighting line from an ended track (``main.py scan`` prints its sightings with this)."""
    emit(
        {
            "event": "sighting",
            "camera": record.camera,
            "person": record.person,
            "state": record.decision.state.value,  # named, unknown, or undecided (no look good enough)
            "score": None if record.score is None else round(record.score, 4),
            "start": iso(record.start),
            "end": iso(record.end),
            "track": record.track_id,
            "frames": record.frames,
            "looks": record.looks,  # how many of the track's faces were embedded
        }
    )


def camera_line(event: CameraEvent) -> dict[str, Any]:
    """The contract's camera line."""
    line: dict[str, Any] = {
        "event": "camera",
        "camera": event.camera,
        "state": "online" if event.online else "offline",
        "address": event.address,
    }
    if event.reason:
        line["reason"] = event.reason
    return line


def event_line(event: Event) -> dict[str, Any]:
    """What headless prints for an event: the contract's line for the facts it always printed, else the event."""
    if isinstance(event, CameraEvent):
        return camera_line(event)
    if isinstance(event, SightingEvent) and event.kind is EventKind.SIGHTING_ENDED:
        return sighting_line(event)
    return event.to_json()


def _rounded(stats: Any) -> dict[str, Any]:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(stats).items()}


def _discovered_line(sender: Any, present: bool) -> None:
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


# ------------------------------------------------------------------ options


def _webhooks(args: argparse.Namespace) -> str | None:
    """The --webhook endpoints as the webhooks setting's JSON (None: the gallery's setting applies)."""
    if not args.webhook:
        return None
    from integrations.webhook_config import WebhookConfigError, endpoint, to_text

    base: dict[str, Any] = {"events": args.webhook_event or [], "watchlist_only": args.webhook_watchlist_only}
    if args.webhook_secret_file:
        base["secret_file"] = args.webhook_secret_file
    try:
        return to_text(tuple(endpoint({"url": url, **base}, i) for i, url in enumerate(args.webhook)))
    except WebhookConfigError as exc:
        raise CliError(f"--webhook: {exc}") from None


def _options(args: argparse.Namespace) -> Any:
    from station.station import StationOptions

    if args.stats_every <= 0:
        raise CliError("--stats-every must be positive")
    overrides: dict[str, object] = dict(table.cli_overrides(args, *INTEGRATION_FLAGS))
    webhooks = _webhooks(args)
    if webhooks is not None:
        overrides["webhooks"] = webhooks
    return StationOptions(
        gallery=Path(args.gallery),
        listen=hostport(args.listen, "--listen"),
        key_file=Path(args.key_file) if args.key_file else None,
        gallery_key=gallery_key(args),
        actor="headless",
        recognition=args.recognition,
        threshold=args.threshold,
        max_rate_hz=args.max_rate,
        workers=args.workers,
        worker_processes=args.worker_processes,
        ray_address=args.ray_address or "",  # headless uses a cluster only when told to
        ray_workers=args.ray_workers,
        offline_after_s=args.offline_after,
        connect=tuple(hostport(c, "--connect", allow_zero=False) for c in args.connect or []),
        discover=bool(args.discover or args.mdns_interface),
        auto_subscribe=True,
        mdns_interfaces=tuple(args.mdns_interface) if args.mdns_interface else None,
        demo_cameras=args.demo,
        demo_people=bool(args.demo),
        integrations=overrides,
        api_token_file=Path(args.api_token_file) if args.api_token_file else None,
    )


# ------------------------------------------------------------------ running


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _print_stats(station: Any) -> None:
    from network.udp_receiver import format_stats

    receiver = station.receiver
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


def _print_events(lines: Any) -> None:
    for event in lines.drain():
        emit(event_line(event))


def _loop(station: Any, lines: Any, args: argparse.Namespace, stop: threading.Event) -> None:
    started = time.monotonic()
    next_stats = started + args.stats_every
    while not stop.is_set():
        now = time.monotonic()
        if args.duration is not None and now - started >= args.duration:
            return
        _print_events(lines)
        if now >= next_stats:
            next_stats += args.stats_every
            _print_stats(station)
        stop.wait(0.1)


def run(args: argparse.Namespace) -> int:
    from station.station import Station, StationError

    station = Station(_options(args))
    station.add_discovery_listener(_discovered_line)
    lines = station.events.subscribe("headless", capacity=100_000)  # before start: no event is missed
    try:
        station.start()
    except StationError as exc:
        raise CliError(str(exc)) from None
    stop = _stop_on_signals()
    assert station.receiver is not None
    host, port = station.receiver.address
    emit({"event": "listening", "address": f"{host}:{port}"})
    try:
        _loop(station, lines, args, stop)
    finally:
        station.stop()  # open tracks become sightings, recorded and printed
        _print_events(lines)
    return 0
