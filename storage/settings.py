"""Station settings: JSON values by key (thresholds, grid layout, ...), kept in the gallery so that a
backup or a move of ``gallery.db`` carries them along."""

from __future__ import annotations

import sqlite3

import sqlite_utils


def get(conn: sqlite3.Connection, key: str) -> str | None:
    """The stored JSON text, or None when unset."""
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def put(conn: sqlite3.Connection, key: str, text: str) -> None:
    sqlite_utils.Database(conn, execute_plugins=False).table("settings").upsert({"key": key, "value": text}, pk="key")
