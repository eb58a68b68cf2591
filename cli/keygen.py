"""``main.py keygen FILE``: a new random station key, owner-only. ``main.py keygen --show-public``: the
public half of the station's evidence signing key (made once, owner-only, on first use)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import CliError, emit


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("keygen", parents=[common], help="write a new random station key (mode 0600)")
    p.add_argument("file", nargs="?", help="the station key file to write")
    p.add_argument(
        "--show-public",
        action="store_true",
        help="print the public key that verifies this station's evidence exports (made once if missing)",
    )
    p.add_argument("--signing-key", metavar="FILE", help="the signing key (default: signing.key beside the gallery)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.show_public:
        return show_public(args)
    if not args.file:
        raise CliError("keygen needs FILE (the station key to write), or --show-public")
    from network import keys

    try:
        keys.write_new_key(Path(args.file))
    except keys.KeyFileError as exc:
        raise CliError(str(exc)) from None
    emit({"event": "keygen", "file": str(args.file), "mode": "0600"})
    return 0


def show_public(args: argparse.Namespace) -> int:
    from station.evidence import signing_key
    from storage.errors import GalleryError

    try:
        key, created = signing_key(Path(args.gallery), Path(args.signing_key) if args.signing_key else None)
    except GalleryError as exc:
        raise CliError(str(exc)) from None
    emit(
        {
            "event": "signing_key",
            "public_key": key.public.hex(),
            "fingerprint": key.fingerprint,
            "file": str(key.path),
            "created": created,
        }
    )
    return 0
