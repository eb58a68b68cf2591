"""Small secret files the station keeps beside its gallery: the gallery's encryption key and the evidence
signing key. Each is written once, owner-only (0600, in folders made 0700), never overwritten; a secret
file that group or others may read is refused with one line saying how to fix it, since whoever read it
could decrypt the gallery or sign evidence in the station's name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from storage import private
from storage.errors import GalleryError

MAX_SECRET_BYTES = 4096
_POSIX = os.name == "posix"


class SecretFileError(GalleryError):
    """A key file that is missing, unreadable, malformed, too open, or would be overwritten."""


class MissingSecretError(SecretFileError):
    """The key file does not exist."""


def write_new(path: Path, data: bytes, what: str) -> None:
    """Create ``path`` holding ``data``, owner-only, flushed to disk; refuses to replace an existing file."""
    try:
        private.make_dirs(path.parent)
        nofollow = os.O_NOFOLLOW if _POSIX else 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, private.FILE_MODE)
    except FileExistsError:
        raise SecretFileError(f"{path} already exists; refusing to overwrite a {what}") from None
    except OSError as exc:
        raise SecretFileError(f"cannot create the {what} {path}: {exc.strerror}") from None
    try:
        if _POSIX:
            os.fchmod(fd, private.FILE_MODE)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so a file created or renamed in it survives a power cut (a no-op where unsupported)."""
    if not _POSIX:
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path, what: str) -> bytes:
    """The bytes of the secret file ``path``, refusing a missing, non-regular, oversized or too-open file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MissingSecretError(f"the {what} {path} is missing") from None
    except OSError as exc:
        raise SecretFileError(f"cannot read the {what} {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretFileError(f"the {what} {path} is not a regular file")
    if _POSIX and st.st_mode & 0o077:
        raise SecretFileError(
            f"the {what} {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"make it owner-only with chmod 600 {path}"
        )
    if st.st_size > MAX_SECRET_BYTES:
        raise SecretFileError(f"the {what} {path} is {st.st_size} bytes: not a key file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SecretFileError(f"cannot read the {what} {path}: {exc.strerror}") from None


def read_hex(path: Path, what: str, size: int) -> bytes:
    """A secret file holding ``size`` bytes as hex digits (whitespace around them ignored)."""
    text = read(path, what).strip()
    try:
        value = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise SecretFileError(f"the {what} {path} is not {size * 2} hex digits") from None
    if len(value) != size:
        raise SecretFileError(f"the {what} {path} holds {len(value)} bytes, not {size}")
    return value
