"""``main.py paths`` and ``main.py backup``: where the station keeps its files, and a safe copy of the gallery."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

from cli.common import CliError, emit, gallery_key
from storage import locations


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("paths", parents=[common], help="where the gallery, the key and the logs are (JSON)")
    p.add_argument("--key-file", help="station key (default: station.key beside the gallery)")
    p.set_defaults(func=run_paths)

    p = sub.add_parser("backup", parents=[common], help="copy the gallery to DEST while the station runs (JSON)")
    p.add_argument("dest", metavar="DEST", help="the copy's file name, or a folder to put a dated copy in")
    p.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    p.set_defaults(func=run_backup)


def run_paths(args: argparse.Namespace) -> int:
    """One JSON object: the gallery, key, logs and data folder this station uses, and whether it is frozen."""
    key = Path(args.key_file) if getattr(args, "key_file", None) else None
    emit(locations.locations(Path(args.gallery), key).as_json())
    return 0


def run_backup(args: argparse.Namespace) -> int:
    """Copy the gallery with SQLite's online backup API (safe while the console or headless writes)."""
    from storage.errors import GalleryError
    from storage.gallery import Gallery

    source = Path(args.gallery)
    if not source.is_file():
        raise CliError(f"no gallery at {source}: nothing to back up (use --gallery to name it)")
    dest = Path(args.dest)
    if dest.is_dir():
        dest = dest / f"{source.stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}{source.suffix or '.db'}"
    if dest.resolve() == source.resolve():
        raise CliError(f"{dest} is the gallery itself: back up to another file")
    started = time.monotonic()
    try:
        gallery = Gallery.open(source, actor="cli", key=gallery_key(args))
    except (GalleryError, OSError) as exc:
        raise CliError(str(exc)) from None
    try:
        written = gallery.backup(dest, overwrite=args.overwrite)
    except GalleryError as exc:
        raise CliError(str(exc)) from None
    finally:
        gallery.close()
    emit(
        {
            "event": "backup",
            "gallery": str(source),
            "file": str(written),
            "bytes": written.stat().st_size,
            "seconds": round(time.monotonic() - started, 3),
        }
    )
    return 0
