"""The outbox's SQL (storage/outbox.py is its facade): what is owed to each destination, oldest first,
bounded per destination, with a count of what the bound dropped."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

COLUMNS = "id, destination, camera, kind, topic, payload, created, attempts"


def insert(conn: sqlite3.Connection, rows: Sequence[tuple[str, str, str, str, str, bytes, float]]) -> None:
    """Rows of (destination, camera, person, kind, topic, payload, created), in order."""
    conn.executemany(
        "INSERT INTO outbox (destination, camera, person, kind, topic, payload, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def trim(conn: sqlite3.Connection, destination: str, limit: int) -> int:
    """Delete the oldest entries of ``destination`` beyond ``limit``, count them as dropped; returns how many."""
    count = int(conn.execute("SELECT count(*) FROM outbox WHERE destination = ?", (destination,)).fetchone()[0])
    excess = count - limit
    if excess <= 0:
        return 0
    conn.execute(
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE destination = ? ORDER BY id LIMIT ?)",
        (destination, excess),
    )
    conn.execute(
        "INSERT INTO outbox_dropped (destination, dropped) VALUES (?, ?) "
        "ON CONFLICT (destination) DO UPDATE SET dropped = dropped + excluded.dropped",
        (destination, excess),
    )
    return excess


def oldest(conn: sqlite3.Connection, destination: str, limit: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        f"SELECT {COLUMNS} FROM outbox WHERE destination = ? ORDER BY id LIMIT ?", (destination, int(limit))
    ).fetchall()


def delete(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    conn.executemany("DELETE FROM outbox WHERE id = ?", [(int(i),) for i in ids])


def attempted(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    conn.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", [(int(i),) for i in ids])


def counts(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """Per destination: (entries pending, entries ever dropped by the bound)."""
    out: dict[str, tuple[int, int]] = {}
    for dest, n in conn.execute("SELECT destination, count(*) FROM outbox GROUP BY destination"):
        out[str(dest)] = (int(n), 0)
    for dest, dropped in conn.execute("SELECT destination, dropped FROM outbox_dropped"):
        out[str(dest)] = (out.get(str(dest), (0, 0))[0], int(dropped))
    return out


def forget_person(conn: sqlite3.Connection, person: str, keep_kind: str) -> int:
    """Delete what is still owed about ``person`` (but the ``keep_kind`` entries: the news of the erasure)."""
    cur = conn.execute(
        "DELETE FROM outbox WHERE person = ? COLLATE NOCASE AND person != '' AND kind != ?", (person, keep_kind)
    )
    return int(cur.rowcount)


def purge(conn: sqlite3.Connection, destination: str) -> int:
    """Forget everything owed to ``destination`` (it was removed from the settings)."""
    return int(conn.execute("DELETE FROM outbox WHERE destination = ?", (destination,)).rowcount)
