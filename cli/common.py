"""What every subcommand shares: one-line errors, JSON lines on stdout, the gallery option, image lists."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage import locations

VERSION = "0.1.0"
DEFAULT_LISTEN = "0.0.0.0:47800"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class CliError(Exception):
    """A problem the operator must fix: printed as one line, exit status 2."""


def emit(obj: dict[str, Any]) -> None:
    """Print one JSON line on stdout, now."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def common_options(*, top_level: bool) -> argparse.ArgumentParser:
    """``--gallery`` and ``-v``, accepted before or after the subcommand's name. The subcommands' copies
    use SUPPRESS, so a value given before the subcommand is not overwritten by their default; the
    gallery's default is resolved later (:func:`gallery_path`), since ``--demo`` changes it."""
    common = argparse.ArgumentParser(add_help=False)
    default: dict[str, Any] = {"default": None} if top_level else {"default": argparse.SUPPRESS}
    common.add_argument(
        "--gallery",
        help=f"gallery database (default {locations.default_gallery()}; with --demo, {locations.demo_gallery()})",
        **default,
    )
    common.add_argument(
        "--gallery-key",
        metavar="FILE",
        help="the gallery's encryption key file (default: gallery.key beside the gallery, made for a new one)",
        **default,
    )
    common.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="unlock (or encrypt) the gallery with the passphrase in FILE (owner-only) instead of a key file",
        **default,
    )
    verbose: dict[str, Any] = {"default": False} if top_level else {"default": argparse.SUPPRESS}
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr", **verbose)
    return common


def resolve_gallery(args: argparse.Namespace) -> None:
    """Fill in ``args.gallery``: the one named, else the demo's own gallery for a demo, else the default."""
    if getattr(args, "gallery", None) is None:
        demo = bool(getattr(args, "demo", False))
        args.gallery = str(locations.demo_gallery() if demo else locations.default_gallery())


def gallery_key(args: argparse.Namespace) -> Any:
    """The gallery's key as the operator gave it (storage.gallerykey.KeySpec): --gallery-key or
    --passphrase-file, else the default key file beside the gallery."""
    from storage.gallerykey import KeySpec

    key_file, passphrase_file = getattr(args, "gallery_key", None), getattr(args, "passphrase_file", None)
    if key_file and passphrase_file:
        raise CliError("give --gallery-key or --passphrase-file, not both")
    return KeySpec(
        key_file=Path(key_file) if key_file else None,
        passphrase_file=Path(passphrase_file) if passphrase_file else None,
    )


def hostport(text: str, flag: str, *, allow_zero: bool = True) -> tuple[str, int]:
    from network.addresses import parse_hostport

    try:
        return parse_hostport(text, allow_zero=allow_zero)
    except ValueError as exc:
        raise CliError(f"{flag}: {exc}") from None


def image_paths(paths: Sequence[str]) -> list[tuple[Path, str | None]]:
    """Every image named or inside a named folder (sorted), with an error for what cannot be used."""
    out: list[tuple[Path, str | None]] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                out.append((path, "no image files in this folder"))
            out.extend((p, None) for p in found)
        elif path.exists():
            out.append((path, None))
        else:
            out.append((path, "no such file"))
    return out


def read_image(path: Path) -> Any:
    """A photo as a BGR array, or ValueError with the reason."""
    from vision.pipeline import read_image as read

    image = read(path)
    if image is None:
        raise ValueError("not an image, or unreadable")
    return image


def open_gallery(args: argparse.Namespace, actor: str) -> Any:
    from storage.errors import GalleryError
    from storage.gallery import Gallery

    path = Path(args.gallery)
    try:
        return Gallery.open(path, actor=actor, key=gallery_key(args))
    except (GalleryError, OSError) as exc:
        raise CliError(str(exc)) from None


def load_pipeline(model: str | None = None, *, detector: Any = None) -> Any:
    """The face pipeline for ``model`` (the live model when None), or CliError naming what is missing."""
    from vision.embedders import MODEL_NAMES, load_embedder
    from vision.pipeline import FacePipeline
    from vision.types import VisionError

    if model is not None and model not in MODEL_NAMES:
        raise CliError(f"--model must be one of {', '.join(MODEL_NAMES)}, not {model!r}")
    try:
        return FacePipeline(detector=detector, embedder=load_embedder(model) if model else None)
    except VisionError as exc:
        raise CliError(str(exc)) from None
