"""``main.py encrypt`` and ``main.py decrypt``: the gallery converted to SQLCipher at rest, or back, in place
and crash-safe (storage.convert). The station must be stopped; one JSON line says what was done."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cli.common import CliError, emit, gallery_key

log = logging.getLogger(__name__)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "encrypt",
        parents=[common],
        help="encrypt the gallery at rest (SQLCipher), in place; the key file is made beside it unless named",
    )
    p.add_argument("--busy-timeout", type=float, default=5.0, metavar="S", help="wait S seconds for a locked gallery")
    p.set_defaults(func=run_encrypt)
    p = sub.add_parser("decrypt", parents=[common], help="turn an encrypted gallery back into a plain one, in place")
    p.add_argument("--busy-timeout", type=float, default=5.0, metavar="S", help="wait S seconds for a locked gallery")
    p.set_defaults(func=run_decrypt)


def run_encrypt(args: argparse.Namespace) -> int:
    from storage.convert import encrypt
    from storage.errors import GalleryError

    try:
        done = encrypt(Path(args.gallery), gallery_key(args), busy_timeout_s=args.busy_timeout)
    except GalleryError as exc:
        raise CliError(str(exc)) from None
    if not done.already:
        log.info("gallery %s is encrypted with the %s: back the key up apart from the gallery", done.path, done.key)
    emit(_line(done))
    return 0


def run_decrypt(args: argparse.Namespace) -> int:
    from storage.convert import decrypt
    from storage.errors import GalleryError

    try:
        done = decrypt(Path(args.gallery), gallery_key(args), busy_timeout_s=args.busy_timeout)
    except GalleryError as exc:
        raise CliError(str(exc)) from None
    if not done.already:
        log.warning("gallery %s is no longer encrypted: anyone with a copy of the file can read it", done.path)
    emit(_line(done))
    return 0


def _line(done: object) -> dict[str, object]:
    from storage.convert import Conversion

    assert isinstance(done, Conversion)
    return {
        "event": done.direction.value,
        "gallery": done.path,
        "key": done.key,
        "already": done.already,
        "rows": done.rows,
        "bytes": done.bytes,
    }
