"""The station key on disk: one 32-byte key as 64 hex digits, mode 0600."""

from __future__ import annotations

import os
from pathlib import Path

from network import protocol


class KeyFileError(Exception):
    """A key file that is missing, unreadable, malformed or would be overwritten."""


def _make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents owner-only (0700 at most, whatever the umask): the key's
    folder is usually the gallery's, which holds faces. Folders that exist keep their mode."""
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise KeyFileError(f"cannot create the folder {d} for the key: {exc.strerror}") from None


def write_new_key(path: Path) -> bytes:
    """Create ``path`` holding a fresh random key, readable by its owner only.

    Refuses to overwrite an existing file: replacing a station key unpairs
    every camera.
    """
    _make_private_dirs(path.parent)
    key = protocol.new_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a station key") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(protocol.encode_key(key))
    os.chmod(path, 0o600)  # in case the umask widened nothing, but a filesystem ignored the mode
    return key


def read_key(path: Path) -> bytes:
    """Read a key file, with a clear :class:`KeyFileError` for every failure."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(f"key file not found: {path}") from None
    except IsADirectoryError:
        raise KeyFileError(f"key file {path} is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from None
    try:
        return protocol.decode_key(text)
    except protocol.KeyError_ as exc:
        raise KeyFileError(f"bad key file {path}: {exc}") from None


def load_or_create(path: Path) -> tuple[bytes, bool]:
    """The station's default key: read it, or create it on first run. Returns (key, created)."""
    if path.exists():
        return read_key(path), False
    return write_new_key(path), True
