"""Room left for the gallery: the free space of its disk, or the file's own page limit when one is set
(SQLite's ``max_page_count``: a quota for the file, and how the tests make a full disk without mounting one).

Free pages inside the file count as room too: SQLite reuses them before it grows the file.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from storage.errors import GalleryError

MAX_LIMIT_BYTES = 1 << 44  # 16 TiB: past any disk this station runs on


def _pragma(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


def room(conn: sqlite3.Connection, folder: Path) -> int:
    """Bytes the gallery can still grow by, on the writer's connection (whose page limit is the one that holds)."""
    page = _pragma(conn, "page_size")
    free_pages = _pragma(conn, "freelist_count")
    under_cap = (_pragma(conn, "max_page_count") - _pragma(conn, "page_count") + free_pages) * page
    try:
        disk = shutil.disk_usage(folder).free + free_pages * page
    except OSError as exc:
        raise GalleryError(f"cannot measure the free space of {folder}: {exc.strerror}") from None
    return max(0, min(under_cap, disk))


def limit(conn: sqlite3.Connection, max_bytes: int | None) -> int:
    """Cap the file at ``max_bytes`` (None: SQLite's own ceiling); returns the page limit now in force. SQLite
    never sets the limit below the file's current size."""
    if max_bytes is not None and not 0 < max_bytes <= MAX_LIMIT_BYTES:
        raise GalleryError(f"the size limit must be 1..{MAX_LIMIT_BYTES} bytes")
    page = _pragma(conn, "page_size")
    pages = (MAX_LIMIT_BYTES if max_bytes is None else max_bytes) // page
    return int(conn.execute(f"PRAGMA max_page_count = {max(1, int(pages))}").fetchone()[0])
