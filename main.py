"""FaceStation entry point: the console by default, and the subcommands of DESIGN.md's CLI contract.

JSON output goes to stdout, one object per line; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent
DEFAULT_GALLERY = Path("data/gallery.db")
DEFAULT_LISTEN = "0.0.0.0:47800"
VERSION = "0.1.0"

log = logging.getLogger("facestation")


class CliError(Exception):
    """A problem the operator must fix: printed as one line, exit status 2."""


def emit(obj: dict[str, Any]) -> None:
    """Print one JSON line on stdout, now."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def default_key_path(gallery: Path) -> Path:
    """The station key lives beside the gallery: data/station.key by default."""
    return gallery.parent / "station.key"


# ---------------------------------------------------------------- keygen


def cmd_keygen(args: argparse.Namespace) -> int:
    from network import keys

    try:
        keys.write_new_key(Path(args.file))
    except keys.KeyFileError as exc:
        raise CliError(str(exc)) from None
    emit({"event": "keygen", "file": str(args.file), "mode": "0600"})
    return 0


# -------------------------------------------------------------- headless


def _load_station_key(args: argparse.Namespace) -> bytes:
    from network import keys

    try:
        if args.key_file:
            return keys.read_key(Path(args.key_file))
        path = default_key_path(Path(args.gallery))
        key, created = keys.load_or_create(path)
        if created:
            log.info("created a new station key at %s (mode 0600); give it to your cameras", path)
        return key
    except keys.KeyFileError as exc:
        raise CliError(str(exc)) from None


def _hostport(text: str, flag: str) -> tuple[str, int]:
    from network.udp_receiver import parse_hostport

    try:
        return parse_hostport(text)
    except ValueError as exc:
        raise CliError(f"{flag}: {exc}") from None


def cmd_headless(args: argparse.Namespace) -> int:
    from network.udp_receiver import ReceiverConfig, UdpReceiver, format_stats

    listen = _hostport(args.listen, "--listen")
    connects = [_hostport(c, "--connect") for c in args.connect or []]
    key = _load_station_key(args)
    if args.stats_every <= 0:
        raise CliError("--stats-every must be positive")
    receiver = UdpReceiver(key, listen[0], listen[1], config=ReceiverConfig(offline_after_s=args.offline_after))
    try:
        receiver.start()
    except OSError as exc:
        raise CliError(f"cannot listen on {args.listen}: {exc.strerror}") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host, port = receiver.address
    emit({"event": "listening", "address": f"{host}:{port}"})
    browser = None
    demo: list[subprocess.Popen[bytes]] = []
    try:
        for h, p in connects:
            try:
                receiver.subscribe(h, p)
            except ValueError as exc:
                raise CliError(f"--connect {h}:{p}: {exc}") from None
        if args.discover or args.mdns_interface:
            from network.discovery import Browser, DiscoveredSender

            def found(sender: DiscoveredSender, present: bool) -> None:
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
                if present:
                    receiver.subscribe(sender.host, sender.port)

            browser = Browser(interfaces=args.mdns_interface, on_change=found)
        if args.demo:
            from network.demo_senders import start_demo_senders

            key_file = Path(args.key_file) if args.key_file else default_key_path(Path(args.gallery))
            demo = start_demo_senders((host, port), key_file, args.demo)
        started = time.monotonic()
        next_stats = started + args.stats_every
        while not stop.is_set():
            now = time.monotonic()
            if args.duration is not None and now - started >= args.duration:
                break
            for ev in receiver.drain_events():
                line: dict[str, Any] = {
                    "event": "camera",
                    "camera": ev.camera,
                    "state": ev.state,
                    "address": ev.address,
                }
                if ev.reason:
                    line["reason"] = ev.reason
                emit(line)
            if now >= next_stats:
                next_stats += args.stats_every
                for st in receiver.stats():
                    emit(format_stats(st))
                rejected = receiver.rejected()
                if rejected:
                    emit({"event": "rejected", "rejected": rejected, "total": sum(rejected.values())})
            stop.wait(0.1)
    finally:
        if demo:
            from network.demo_senders import stop_demo_senders

            stop_demo_senders(demo)
        if browser is not None:
            browser.close()
        receiver.stop()
        for ev in receiver.drain_events():
            emit({"event": "camera", "camera": ev.camera, "state": ev.state, "address": ev.address})
    return 0


# --------------------------------------------------------------- history


def cmd_history(args: argparse.Namespace) -> int:
    from storage.errors import GalleryError
    from storage.export import history_command

    try:
        return history_command(
            args.gallery,
            sys.stdout,
            person=args.person,
            camera=args.camera,
            since=args.since,
            until=args.until,
            unknown_only=args.unknown,
            min_score=args.min_score,
            fmt=args.format,
            limit=args.limit,
            offset=args.offset,
            busy_timeout_s=args.busy_timeout,
        )
    except GalleryError as exc:
        raise CliError(str(exc)) from None


# -------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    """LFW verification from the raw photos; prints one JSON object (vision/lfw.py has the protocol)."""
    pairs, images = Path(args.pairs), Path(args.images)
    if not pairs.is_file():
        raise CliError(f"--pairs: {pairs} is not a file")
    if not images.is_dir():
        raise CliError(f"--images: {images} is not a folder")
    try:
        from vision.lfw import PairsError, evaluate
        from vision.types import VisionError
    except ImportError as exc:
        raise CliError(f"evaluate needs the station extra (pip install '.[station]'): {exc}") from None
    try:
        result = evaluate(pairs, images, model=args.model)
    except (PairsError, VisionError) as exc:
        raise CliError(str(exc)) from None
    emit(result.as_json())
    return 0


# --------------------------------------------------------------- console


def cmd_console(args: argparse.Namespace) -> int:
    """The operator console. With --demo it listens on 127.0.0.1 and starts two local demo senders."""
    try:
        from gui.app import ConsoleError, ConsoleOptions, run_console
    except ImportError as exc:
        raise CliError(f"the console needs the station extra (pip install '.[station]'): {exc}") from None
    listen = _hostport(args.listen or ("127.0.0.1:0" if args.demo else DEFAULT_LISTEN), "--listen")
    interfaces = tuple(args.mdns_interface) if args.mdns_interface else (("127.0.0.1",) if args.demo else None)
    options = ConsoleOptions(
        gallery=Path(args.gallery),
        listen=listen,
        key_file=Path(args.key_file) if args.key_file else None,
        demo_cameras=2 if args.demo else 0,
        mdns_interfaces=interfaces,
        offscreen_quit_after_s=args.quit_after,
    )
    try:
        return run_console(options)
    except ConsoleError as exc:
        raise CliError(str(exc)) from None


# ------------------------------------------------------------------ main


def _common(defaults: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name. Subcommands use SUPPRESS so a
    value given before the subcommand is not overwritten by the subcommand's default."""
    common = argparse.ArgumentParser(add_help=False)
    default: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    common.add_argument(
        "--gallery", help="gallery database (default data/gallery.db)", **(default or {"default": str(DEFAULT_GALLERY)})
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr", **default)
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common(defaults=False)
    parser = argparse.ArgumentParser(
        prog="main.py", description="FaceStation face-recognition control station", parents=[_common(defaults=True)]
    )
    parser.add_argument("--version", action="version", version=f"FaceStation {VERSION}")
    parser.add_argument("--demo", action="store_true", help="also start two local demo cameras (127.0.0.1 only)")
    parser.add_argument("--listen", help=f"HOST:PORT the console receives on (default {DEFAULT_LISTEN})")
    parser.add_argument("--key-file", help="station key (default: station.key beside the gallery, created if missing)")
    parser.add_argument("--mdns-interface", action="append", metavar="IP", help="discover senders on this address only")
    parser.add_argument("--quit-after", type=float, metavar="S", help=argparse.SUPPRESS)  # smoke tests
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("keygen", parents=[common], help="write a new random station key (mode 0600)")
    p.add_argument("file")
    p.set_defaults(func=cmd_keygen)

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
    p.set_defaults(func=cmd_headless)

    p = sub.add_parser("history", parents=[common], help="print sightings from the gallery, newest first")
    p.add_argument("--person", metavar="NAME", help="only this person")
    p.add_argument("--camera", metavar="NAME", help="only this camera")
    p.add_argument(
        "--since", metavar="ISO", help="sightings starting at or after this time (UTC unless an offset is given)"
    )
    p.add_argument("--until", metavar="ISO", help="sightings starting before this time")
    p.add_argument("--unknown", action="store_true", help="only unknown faces")
    p.add_argument("--min-score", type=float, metavar="S", help="only sightings scoring at least S")
    p.add_argument("--format", choices=("json", "csv"), default="json", help="JSON lines (default) or CSV")
    p.add_argument("--limit", type=int, default=1000, metavar="N", help="at most N sightings (default 1000, max 10000)")
    p.add_argument("--offset", type=int, default=0, metavar="N", help="skip the N newest matches first")
    p.add_argument("--busy-timeout", type=float, default=5.0, metavar="S", help="wait S seconds for a locked gallery")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("evaluate", parents=[common], help="measure accuracy on a benchmark (lfw)")
    bench = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    q = bench.add_parser("lfw", parents=[common], help="LFW verification pairs, from the raw photos")
    q.add_argument("--pairs", required=True, metavar="FILE", help="LFW pairs.txt (10 folds, or one)")
    q.add_argument("--images", required=True, metavar="DIR", help="folder of NAME/NAME_NNNN.jpg photos")
    q.add_argument("--model", default="facenet-512", help="embedding model (facenet-512, dlib-128, vggface2-2048)")
    q.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        if args.command is None:
            return cmd_console(args)
        return int(args.func(args))
    except CliError as exc:
        print(f"main.py: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
