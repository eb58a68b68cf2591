"""SQLCipher at the file level: what a gallery file is (new, plain SQLite, encrypted, or neither), keying a
connection, and telling a wrong key from an encrypted file that is damaged.

An encrypted gallery is SQLCipher 4 with its defaults (AES-256 in CBC, an HMAC-SHA512 per page, 4 KiB
pages). Its first 16 bytes are the salt, and every byte after them looks random: that is how a file with
no SQLite header is told from one that is merely not a database. A wrong key fails the HMAC of every page;
a damaged file with the right key fails only on the damaged pages, which ``PRAGMA cipher_integrity_check``
lists without needing the schema, so the two get different messages.
"""

from __future__ import annotations

import sqlite3
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from storage import sql
from storage.errors import GalleryError
from storage.gallerykey import GalleryKey

SQLITE_MAGIC = b"SQLite format 3\x00"
SALT_BYTES = 16
_SAMPLE = 4096
# The chi-square of the byte counts of 4 KiB of random bytes (255 degrees of freedom) is 255 +- 23: above
# 450 (8.6 standard deviations) no encrypted page gets, and JPEG, text and other formats are far above it.
_RANDOM_CHI2 = 450.0
_MIN_ENCRYPTED = 1024


class FileState(StrEnum):
    """What a gallery path holds, judged from its first bytes before any connection is opened."""

    NEW = "new"  # no file yet, or an empty one (created by an open that stopped before SQLite wrote)
    PLAIN = "plain"  # a SQLite database, not encrypted
    ENCRYPTED = "encrypted"  # no SQLite header, and random bytes: a SQLCipher database (or random junk)
    NOT_DATABASE = "not a database"  # anything else: text, an image, a truncated SQLite header


class WrongKeyError(GalleryError):
    """The key does not open this encrypted gallery."""


def classify(head: bytes, size: int) -> FileState:
    """The state of a file whose size is ``size`` and whose first bytes (up to 4 KiB) are ``head``."""
    if size == 0:
        return FileState.NEW
    if head.startswith(SQLITE_MAGIC):
        return FileState.PLAIN if len(head) >= 100 else FileState.NOT_DATABASE
    if size >= _MIN_ENCRYPTED and looks_random(head[:_SAMPLE]):
        return FileState.ENCRYPTED
    return FileState.NOT_DATABASE


def looks_random(data: bytes) -> bool:
    """True when the byte counts of ``data`` fit uniformly random bytes (a chi-square test)."""
    if len(data) < 256:
        return False
    counts = [0] * 256
    for b in data:
        counts[b] += 1
    expected = len(data) / 256
    chi2 = sum((c - expected) ** 2 for c in counts) / expected
    return chi2 < _RANDOM_CHI2


def read_state(path: Path) -> FileState:
    """:func:`classify` for the file at ``path`` (NEW when there is none)."""
    if not path.exists():
        return FileState.NEW
    with path.open("rb") as fh:
        head = fh.read(_SAMPLE)
    return classify(head, path.stat().st_size)


def file_salt(path: Path) -> bytes:
    """The 16-byte salt at the start of an encrypted gallery (a passphrase key is derived with it)."""
    with path.open("rb") as fh:
        salt = fh.read(SALT_BYTES)
    if len(salt) != SALT_BYTES:
        raise GalleryError(f"{path} is truncated: it is too short to be an encrypted gallery")
    return salt


def apply_key(conn: sqlite3.Connection, key: GalleryKey | None) -> None:
    """Quiet SQLCipher's own log lines (one clear error per failure is ours to give), then key the
    connection. A raw key skips SQLCipher's key derivation, so opening a connection stays cheap."""
    conn.execute("PRAGMA cipher_log_level = NONE")
    if key is not None:
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")


def read_only(path: Path) -> sqlite3.Connection:
    """A connection that can only read ``path`` (never creates or changes a file), keyed by the caller."""
    return sql.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True, isolation_level=None)


def is_not_a_database(exc: sql.Error) -> bool:
    return exc.sqlite_errorname == "SQLITE_NOTADB" or "file is not a database" in str(exc).lower()


def diagnose(path: Path, key: GalleryKey) -> GalleryError:
    """Why ``key`` could not read the encrypted gallery at ``path``: a wrong key (every page fails its
    check) or a damaged file (some pages pass). Reads the file only."""
    conn = read_only(path)
    try:
        apply_key(conn, key)
        failures = [str(r[0]) for r in conn.execute("PRAGMA cipher_integrity_check").fetchall()]
    except sql.Error as exc:
        return GalleryError(f"{path} is encrypted but cannot be checked ({exc}): it may be corrupt")
    finally:
        conn.close()
    pages = max(1, path.stat().st_size // 4096)
    if len(failures) >= pages:
        return WrongKeyError(
            f"cannot decrypt {path} with the {key.source}: wrong key (every page fails its check), "
            "or not a FaceStation gallery at all; the file was left as it was"
        )
    return GalleryError(
        f"{path} is encrypted and the key is right, but {len(failures)} of {pages} pages fail their check: "
        "it is corrupt; restore it from a backup"
    )
