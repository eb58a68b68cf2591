"""``main.py encrypt`` and ``main.py decrypt``: a gallery converted in place, crash-safe.

The gallery is never written in place. Under an exclusive lock on it (so no station can be writing:
one that is gets a clear "stop it first"), its WAL is checkpointed into the file and switched off, the
whole database is exported with ``sqlcipher_export`` into a new owner-only file beside it, that copy is
checked (SQLite's quick check, and the same row count in every table) and fsynced, and only then renamed
over the original in one atomic step (and the folder fsynced). Killed at any point before the rename, the
original is there as it was (with its WAL folded in) and the next run starts over; killed after it, the
gallery is converted and the next run says so. The key file of an encrypted gallery is written and
fsynced before anything is encrypted with it.

``FACESTATION_TEST_CRASH_AT=STEP`` (tests only) SIGKILLs the process at the named step: ``locked``,
``exported``, ``verified``, ``renamed``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from storage import cipher, gallerykey, private, secretfiles, sql
from storage.cipher import FileState
from storage.connection import translate
from storage.errors import GalleryBusyError, GalleryError
from storage.gallerykey import GalleryKey, KeyLike
from storage.schema import check_version

CRASH_ENV = "FACESTATION_TEST_CRASH_AT"


class Direction(StrEnum):
    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"


@dataclass(frozen=True)
class Conversion:
    """What a conversion did. ``already``: the gallery was in the wanted state; nothing was written."""

    path: str
    direction: Direction
    key: str
    already: bool
    rows: int
    bytes: int


def _crash_point(step: str) -> None:
    if os.name == "posix" and os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def encrypt(path: Path, key: KeyLike = None, *, busy_timeout_s: float = 5.0) -> Conversion:
    """Encrypt the plain gallery at ``path`` in place with the key ``key`` resolves to (the default key
    file beside it is made when missing). An already encrypted gallery is checked against the key."""
    state = _existing_state(path)
    if state is FileState.ENCRYPTED:
        found = gallerykey.key_for_existing(key, path, cipher.file_salt(path))
        return _already(path, Direction.ENCRYPT, found)
    if isinstance(key, gallerykey.KeySpec) and key.plain:
        raise GalleryError("encrypt needs a key: a key file or a passphrase, not plain")
    target = gallerykey.key_for_new(key, path)
    assert target is not None
    return _convert(path, Direction.ENCRYPT, None, target, busy_timeout_s)


def decrypt(path: Path, key: KeyLike = None, *, busy_timeout_s: float = 5.0) -> Conversion:
    """Decrypt the encrypted gallery at ``path`` in place (its key stays where it is: delete it yourself
    once you are sure). A plain gallery is left as it is."""
    state = _existing_state(path)
    if state is FileState.PLAIN:
        return _already(path, Direction.DECRYPT, None)
    source = gallerykey.key_for_existing(key, path, cipher.file_salt(path))
    return _convert(path, Direction.DECRYPT, source, None, busy_timeout_s)


def _existing_state(path: Path) -> FileState:
    if path.is_dir():
        raise GalleryError(f"{path} is a directory, not a gallery file")
    state = cipher.read_state(path)
    if state is FileState.NEW:
        raise GalleryError(f"no gallery at {path}")
    if state is FileState.NOT_DATABASE:
        raise GalleryError(f"{path} is not a SQLite database, nor an encrypted gallery")
    return state


def _already(path: Path, direction: Direction, key: GalleryKey | None) -> Conversion:
    """Nothing to convert; for an encrypted gallery, prove the key opens it (a wrong key is still an error)."""
    conn = cipher.read_only(path)
    try:
        cipher.apply_key(conn, key)
        rows = _row_counts(conn, "main")
    except sql.Error as exc:
        if key is not None and cipher.is_not_a_database(exc):
            raise cipher.diagnose(path, key) from None
        raise translate(exc, path, 0) from None
    finally:
        conn.close()
    name = "plain" if key is None else key.source
    return Conversion(str(path), direction, name, True, sum(rows.values()), path.stat().st_size)


def _temp_name(path: Path, direction: Direction) -> Path:
    return path.with_name(f".{path.name}.{direction.value}-{os.getpid()}")


def _remove_leftovers(path: Path) -> None:
    """Copies a killed conversion left beside the gallery (never the gallery itself)."""
    for direction in Direction:
        for stale in path.parent.glob(f".{path.name}.{direction.value}-*"):
            stale.unlink(missing_ok=True)


def _convert(
    path: Path, direction: Direction, source: GalleryKey | None, target: GalleryKey | None, busy_timeout_s: float
) -> Conversion:
    _remove_leftovers(path)
    conn = _lock(path, source, busy_timeout_s)
    tmp = _temp_name(path, direction)
    try:
        rows = _export(conn, path, tmp, target)
        _crash_point("exported")
        _verify(tmp, target, rows)
        _crash_point("verified")
        path.with_name(path.name + "-shm").unlink(missing_ok=True)  # a crashed station's; nobody uses it now
        os.replace(tmp, path)
        secretfiles.sync_folder(path.parent)
        _crash_point("renamed")
    except sql.Error as exc:
        raise GalleryError(f"{direction.value} of {path} failed, the gallery is as it was: {exc}") from None
    except OSError as exc:
        raise GalleryError(f"{direction.value} of {path} failed, the gallery is as it was: {exc.strerror}") from None
    finally:
        conn.close()
        tmp.unlink(missing_ok=True)
    name = "plain" if target is None else target.source
    return Conversion(str(path), direction, name, False, sum(rows.values()), path.stat().st_size)


def _lock(path: Path, key: GalleryKey | None, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection holding the gallery exclusively (no station can be using it), its WAL folded into the
    file and switched off, so that the file alone is the whole gallery."""
    conn = sql.connect(str(path), timeout=busy_timeout_s, isolation_level=None)
    try:
        cipher.apply_key(conn, key)
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        check_version(conn, str(path))
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = DELETE")
    except sql.Error as exc:
        conn.close()
        if key is not None and cipher.is_not_a_database(exc):
            raise cipher.diagnose(path, key) from None
        error = translate(exc, path, busy_timeout_s)
        if isinstance(error, GalleryBusyError):
            raise GalleryBusyError(f"{error}: stop the station (console or headless) before converting it") from None
        raise error from None
    except BaseException:
        conn.close()
        raise
    _crash_point("locked")
    return conn


def _export(conn: sqlite3.Connection, path: Path, tmp: Path, target: GalleryKey | None) -> dict[str, int]:
    """Every table, index and the schema version into ``tmp`` (owner-only), keyed with ``target``."""
    tmp.unlink(missing_ok=True)
    private.create_file(tmp)
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.execute("ATTACH DATABASE ? AS target KEY ?", (str(tmp), "" if target is None else f"x'{target.hex()}'"))
    try:
        conn.execute("SELECT sqlcipher_export('target')")
        conn.execute(f"PRAGMA target.user_version = {version}")
    finally:
        conn.execute("DETACH DATABASE target")
    return _row_counts(conn, "main")


def _verify(tmp: Path, key: GalleryKey | None, rows: dict[str, int]) -> None:
    """The copy passes SQLite's quick check and holds as many rows in every table; then it is fsynced."""
    conn = sql.connect(str(tmp), isolation_level=None)
    try:
        cipher.apply_key(conn, key)
        check = str(conn.execute("PRAGMA quick_check").fetchone()[0])
        if check != "ok":
            raise GalleryError(f"the converted copy failed its check ({check}); the gallery is as it was")
        copied = _row_counts(conn, "main")
    finally:
        conn.close()
    if copied != rows:
        raise GalleryError("the converted copy does not hold every row; the gallery is as it was")
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _row_counts(conn: sqlite3.Connection, schema: str) -> dict[str, int]:
    tables = [
        str(r[0])
        for r in conn.execute(
            f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {t: int(conn.execute(f'SELECT count(*) FROM {schema}."{t}"').fetchone()[0]) for t in tables}
