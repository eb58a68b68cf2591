"""The change counters in ``meta``: ``revision`` (the enrolled gallery: people, samples, negatives, watchlists),
``sightings_epoch`` (sightings deleted or rewritten) and ``alarms`` (the alarm queue). Pollers and caches
compare them instead of re-reading the tables they stand for."""

from __future__ import annotations

import sqlite3

REVISION = "revision"
SIGHTINGS_EPOCH = "sightings_epoch"
ALARMS = "alarms"  # every change of an alarm (raised, repeated, linked, acknowledged, escalated, closed)


def bump(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = ?", (key,))


def value(conn: sqlite3.Connection, key: str) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])


def data_version(conn: sqlite3.Connection) -> int:
    """SQLite's per-connection counter that changes when another connection commits: a cheap poll."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
