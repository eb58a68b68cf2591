"""Opening the gallery file: the checks that turn an unusable file into one clear message, the owner-only
modes (storage.private), and the pragmas."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path

from storage import cipher, gallerykey, locations, private, sql
from storage.cipher import SQLITE_MAGIC, FileState
from storage.errors import GalleryBusyError, GalleryError
from storage.gallerykey import GalleryKey, KeyLike, KeySpec
from storage.schema import migrate

log = logging.getLogger(__name__)


def check_path(path: Path, *, create: bool) -> FileState:
    """Refuse, before SQLite touches it, a path that cannot be a writable gallery; returns what the file is
    (new, plain or encrypted). A new gallery is created here, empty and owner-only, in folders made 0700:
    SQLite gives its WAL and SHM the file's mode."""
    if path.is_dir():
        raise GalleryError(f"{path} is a directory, not a gallery file")
    if not path.exists():
        _create_empty(path, create=create)
        return FileState.NEW
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise GalleryError(f"{path} is not a regular file")
    state = _state(path)
    # os.access says yes to root whatever the mode; a file with no write bit at all is read-only on purpose.
    if not os.access(path, os.W_OK) or not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise GalleryError(
            f"{path} is read-only: the station must be able to write its gallery (check its permissions)"
        )
    _check_folder_writable(path)
    return state


def _create_empty(path: Path, *, create: bool) -> None:
    if path.is_symlink():
        raise GalleryError(f"{path} is a broken symbolic link")
    if not create:
        raise GalleryError(f"no gallery at {path}")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise GalleryError(f"cannot create {path}: {parent} is not a directory")
    try:
        private.make_dirs(parent)
    except OSError as exc:
        raise GalleryError(f"cannot create the folder {parent}: {exc.strerror}") from None
    _check_folder_writable(path)
    try:
        private.create_file(path)
    except OSError as exc:
        raise GalleryError(f"cannot create {path}: {exc.strerror}") from None


def _state(path: Path) -> FileState:
    try:
        state = cipher.read_state(path)
    except OSError as exc:
        raise GalleryError(f"cannot read {path}: {exc.strerror}") from None
    if state is not FileState.NOT_DATABASE:
        return state
    with path.open("rb") as fh:
        head = fh.read(100)
    if head.startswith(SQLITE_MAGIC):
        raise GalleryError(f"{path} is truncated ({len(head)} bytes): it is not a usable SQLite database")
    raise GalleryError(
        f"{path} is not a SQLite database (it does not start with the SQLite header, "
        "and it is not an encrypted gallery either)"
    )


def tighten(path: Path) -> list[Path]:
    """Make an existing gallery owner-only: the file, its WAL, SHM and rollback journal, and its folder when
    that is one of the station's own. Returns what was changed (nothing for a gallery that already was)."""
    files = [path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]
    folder = path.parent
    own = folder.resolve() in {f.resolve() for f in locations.station_folders()}
    return private.tighten([*files, folder] if own else files)


def _check_folder_writable(path: Path) -> None:
    parent = path.parent
    mode = parent.stat().st_mode
    if not os.access(parent, os.W_OK | os.X_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise GalleryError(
            f"the folder {parent} is read-only: SQLite needs to create its journal files beside {path.name}"
        )


def connect(path: Path, busy_timeout_s: float, *, reader: bool, key: GalleryKey | None = None) -> sqlite3.Connection:
    """A connection with the house settings: keyed when the gallery is encrypted, WAL, foreign keys, a busy
    timeout, autocommit (explicit BEGINs)."""
    conn = sql.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    try:
        cipher.apply_key(conn, key)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if reader:
            conn.execute("PRAGMA query_only = ON")
        else:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise GalleryError(f"{path}: SQLite refused WAL mode (journal mode stays {mode})")
            # In WAL mode NORMAL loses no committed transaction when the process dies; only a power cut
            # can cost the last commits, never consistency.
            conn.execute("PRAGMA synchronous = NORMAL")
            # Checkpoint every ~16 MiB of WAL rather than every 4 MiB: fewer fsyncs under a flood of
            # sightings; the WAL file is cut back to 64 MiB after a checkpoint.
            conn.execute("PRAGMA wal_autocheckpoint = 4000")
            conn.execute("PRAGMA journal_size_limit = 67108864")
            # Deleted rows (an erased person's crops, expired sightings) are overwritten with zeros, not
            # left in free pages: erasure.py truncates the WAL after each erasure, so no copy remains.
            conn.execute("PRAGMA secure_delete = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def translate(exc: sql.Error, path: Path, busy_timeout_s: float) -> GalleryError:
    """One readable line for a SQLite error on ``path``."""
    text = str(exc)
    low = text.lower()
    name = getattr(exc, "sqlite_errorname", "") or ""
    if "locked" in low or "busy" in low or name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return GalleryBusyError(
            f"{path} is locked by another process (waited {busy_timeout_s:g} s): is another station using it?"
        )
    if "readonly" in low or "read-only" in low:
        return GalleryError(f"{path} is read-only: the station must be able to write its gallery ({text})")
    if "not a database" in low or name == "SQLITE_NOTADB":
        return GalleryError(f"{path} is not a usable SQLite database ({text}): it may be corrupt")
    if "malformed" in low or "corrupt" in low or name.startswith("SQLITE_CORRUPT"):
        return GalleryError(f"{path} is corrupt ({text}): restore it from a backup")
    if "disk i/o" in low or "unable to open" in low or name.startswith("SQLITE_IOERR") or name == "SQLITE_CANTOPEN":
        return GalleryError(f"cannot use {path}: {text}")
    if "database or disk is full" in low or name == "SQLITE_FULL":
        return GalleryError(f"{path}: the disk is full ({text})")
    return GalleryError(f"{path}: {text}")


@dataclass(frozen=True)
class Opened:
    """The writer's connection to a gallery, and the key it was opened with (None: a plain gallery)."""

    conn: sqlite3.Connection
    key: GalleryKey | None


def open_writer(path: Path, busy_timeout_s: float, *, create: bool, key: KeyLike = None) -> Opened:
    """The checked, owner-only, migrated write connection to the gallery at ``path``, or one GalleryError.
    A new gallery is encrypted unless ``key`` says plain; an encrypted one is opened with the key ``key``
    resolves to (storage.gallerykey); a plain one opens as it is, with one warning saying how to encrypt it.
    Tightening an existing gallery is said in one INFO line naming what changed."""
    state = check_path(path, create=create)
    resolved = _resolve_key(path, state, key)
    tightened = tighten(path)
    if tightened:
        log.info("gallery %s was readable by others; made owner-only: %s", path, ", ".join(map(str, tightened)))
    conn: sqlite3.Connection | None = None
    try:
        conn = connect(path, busy_timeout_s, reader=False, key=resolved)
        migrate(conn, str(path))
    except sql.Error as exc:
        if conn is not None:
            conn.close()
        if resolved is not None and state is FileState.ENCRYPTED and cipher.is_not_a_database(exc):
            raise cipher.diagnose(path, resolved) from None
        raise translate(exc, path, busy_timeout_s) from None
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    if state is FileState.PLAIN and not (isinstance(key, KeySpec) and key.plain):
        warn_plain(path)  # not when plain was asked for (benchmarks, tests of the file's bytes)
    return Opened(conn, resolved)


def _resolve_key(path: Path, state: FileState, key: KeyLike) -> GalleryKey | None:
    if state is FileState.PLAIN:
        return None
    if state is FileState.NEW:
        try:
            return gallerykey.key_for_new(key, path)
        except BaseException:
            if path.exists() and path.stat().st_size == 0:
                path.unlink()  # the empty file check_path made: a failed create leaves nothing behind
            raise
    return gallerykey.key_for_existing(key, path, cipher.file_salt(path))


_warned: set[Path] = set()


def warn_plain(path: Path) -> None:
    """One warning per gallery and process: a plain gallery opens, but anyone with the file reads it."""
    resolved = path.resolve()
    if resolved in _warned:
        return
    _warned.add(resolved)
    log.warning(
        "gallery %s is not encrypted: anyone with a copy of the file can read its faces; "
        "encrypt it with: main.py encrypt --gallery %s",
        path,
        path,
    )


def open_raw(path: Path, key: KeyLike = None, *, timeout: float = 5.0) -> sqlite3.Connection:
    """A bare connection to the existing gallery file at ``path``, keyed when it is encrypted (``key`` as for
    ``Gallery.open``), autocommit, no house settings and no checks: for tests and tools that look inside
    the file itself. Everything else goes through ``Gallery``."""
    state = cipher.read_state(path)
    resolved = gallerykey.key_for_existing(key, path, cipher.file_salt(path)) if state is FileState.ENCRYPTED else None
    conn = sql.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        cipher.apply_key(conn, resolved)
    except BaseException:
        conn.close()
        raise
    return conn
