"""Looking after the file: an online backup copy, the integrity check, and row counts for status displays."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from storage import cipher, private, sql
from storage.errors import GalleryError
from storage.gallerykey import GalleryKey

COUNTED = ("persons", "samples", "negatives", "sightings", "sighting_crops", "sighting_snapshots", "audit")


def backup(
    src: sqlite3.Connection, target: Path, *, overwrite: bool, pages: int, key: GalleryKey | None = None
) -> Path:
    """Copy the database behind ``src`` to ``target`` with SQLite's online backup API, ``pages`` at a time
    so the writer keeps going. The copy is written owner-only beside ``target``, checked, then renamed. The
    copy of an encrypted gallery is encrypted with the same ``key`` (it opens with the gallery's key)."""
    if target.is_dir():
        raise GalleryError(f"backup target {target} is a directory")
    if target.exists() and not overwrite:
        raise GalleryError(f"backup target {target} exists (pass overwrite to replace it)")
    if not target.parent.is_dir():
        raise GalleryError(f"backup folder {target.parent} does not exist")
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        tmp.unlink(missing_ok=True)  # a crashed run's leftover
        private.create_file(tmp)  # before SQLite opens it: the copy (and its journal) are owner-only
        out = sql.connect(str(tmp), isolation_level=None)
        try:
            cipher.apply_key(out, key)
            src.backup(out, pages=pages, sleep=0.002)
            check = out.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise GalleryError(f"the backup copy failed its check: {check}")
        finally:
            out.close()
        os.replace(tmp, target)
    except sql.Error as exc:
        tmp.unlink(missing_ok=True)
        raise GalleryError(f"backup to {target} failed: {exc}") from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GalleryError(f"backup to {target} failed: {exc.strerror}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def integrity(conn: sqlite3.Connection) -> str:
    """``ok``, or SQLite's description of what is damaged."""
    return "\n".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall())


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in COUNTED}
