"""``main.py history``: sightings from the gallery, newest first, as JSON lines or CSV."""

from __future__ import annotations

import argparse
import sys

from cli.common import CliError, gallery_key


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("history", parents=[common], help="print sightings from the gallery, newest first")
    p.add_argument("--person", metavar="NAME", help="only this person")
    p.add_argument("--camera", metavar="NAME", help="only this camera")
    p.add_argument(
        "--since", metavar="ISO", help="sightings starting at or after this time (UTC unless an offset is given)"
    )
    p.add_argument("--until", metavar="ISO", help="sightings starting before this time")
    p.add_argument("--unknown", action="store_true", help="only unknown faces (looked at well, nobody close enough)")
    p.add_argument("--undecided", action="store_true", help="only faces never seen well enough to decide")
    p.add_argument("--min-score", type=float, metavar="S", help="only sightings scoring at least S")
    p.add_argument("--format", choices=("json", "csv"), default="json", help="JSON lines (default) or CSV")
    p.add_argument("--limit", type=int, default=1000, metavar="N", help="at most N sightings (default 1000, max 10000)")
    p.add_argument("--offset", type=int, default=0, metavar="N", help="skip the N newest matches first")
    p.add_argument("--busy-timeout", type=float, default=5.0, metavar="S", help="wait S seconds for a locked gallery")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
            state="undecided" if args.undecided else None,
            fmt=args.format,
            limit=args.limit,
            offset=args.offset,
            busy_timeout_s=args.busy_timeout,
            key=gallery_key(args),
        )
    except GalleryError as exc:
        raise CliError(str(exc)) from None
