"""``main.py [--demo]``: the operator console (gui/), the default when no subcommand is named."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import DEFAULT_LISTEN, CliError, gallery_key, hostport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The console's options live on the top-level parser: ``main.py`` alone opens it."""
    parser.add_argument("--demo", action="store_true", help="also start two local demo cameras (127.0.0.1 only)")
    parser.add_argument("--listen", help=f"HOST:PORT the console receives on (default {DEFAULT_LISTEN})")
    parser.add_argument("--key-file", help="station key (default: station.key beside the gallery, created if missing)")
    parser.add_argument("--mdns-interface", action="append", metavar="IP", help="discover senders on this address only")
    parser.add_argument(
        "--ray-address", metavar="HOST:PORT", help="recognise on this Ray cluster (default: the console setting)"
    )
    parser.add_argument("--ray-workers", type=int, default=2, metavar="N", help="recognition actors on the cluster")
    parser.add_argument(
        "--ask-passphrase",
        action="store_true",
        help="ask for the gallery's passphrase at start (asked anyway when it is encrypted and has no key file)",
    )
    parser.add_argument("--quit-after", type=float, metavar="S", help=argparse.SUPPRESS)  # smoke tests


def run(args: argparse.Namespace) -> int:
    """The console. With --demo it listens on 127.0.0.1, starts two local demo senders, browses on
    loopback only, and enrols the demo people into the (demo) gallery where it lacks them."""
    try:
        from gui.app import ConsoleError, ConsoleOptions, run_console
    except ImportError as exc:
        raise CliError(f"the console needs the station extra (pip install '.[station]'): {exc}") from None
    listen = hostport(args.listen or ("127.0.0.1:0" if args.demo else DEFAULT_LISTEN), "--listen")
    interfaces = tuple(args.mdns_interface) if args.mdns_interface else (("127.0.0.1",) if args.demo else None)
    options = ConsoleOptions(
        gallery=Path(args.gallery),
        listen=listen,
        key_file=Path(args.key_file) if args.key_file else None,
        gallery_key=gallery_key(args),
        ask_passphrase=args.ask_passphrase,
        demo_cameras=2 if args.demo else 0,
        demo_people=bool(args.demo),
        mdns_interfaces=interfaces,
        offscreen_quit_after_s=args.quit_after,
        ray_address=args.ray_address,
        ray_workers=args.ray_workers,
    )
    try:
        return run_console(options)
    except ConsoleError as exc:
        raise CliError(str(exc)) from None
