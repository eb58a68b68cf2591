"""The local API's tokens (storage/tokens.py is their facade): a name and a keyed hash each."""

from __future__ import annotations

import sqlite3
from typing import Any


def insert(conn: sqlite3.Connection, name: str, digest: str, created: float) -> int:
    cur = conn.execute("INSERT INTO api_tokens (name, digest, created) VALUES (?, ?, ?)", (name, digest, created))
    return int(cur.lastrowid or 0)


def by_name(conn: sqlite3.Connection, name: str) -> tuple[Any, ...] | None:
    row = conn.execute(
        "SELECT id, name, digest, created, last_used FROM api_tokens WHERE name = ? COLLATE NOCASE", (name,)
    ).fetchone()
    return None if row is None else tuple(row)


def all_tokens(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT id, name, digest, created, last_used FROM api_tokens ORDER BY name").fetchall()


def delete(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute("DELETE FROM api_tokens WHERE name = ? COLLATE NOCASE", (name,)).rowcount)


def used(conn: sqlite3.Connection, names_times: list[tuple[float, str]]) -> None:
    conn.executemany("UPDATE api_tokens SET last_used = ? WHERE name = ?", names_times)
