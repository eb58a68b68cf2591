"""The cameras the station has heard from, with when it first and last saw each: the history filter's
camera list, and a record of what was on the LAN."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Camera:
    name: str
    address: str
    first_seen: float
    last_seen: float


def note(conn: sqlite3.Connection, name: str, address: str, now: float) -> None:
    """Upsert: the first time seen is kept (or moved earlier), the address follows, the last time seen only grows."""
    conn.execute(
        "INSERT INTO cameras (name, address, first_seen, last_seen) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET address = CASE WHEN excluded.address != '' THEN excluded.address "
        "ELSE address END, first_seen = min(first_seen, excluded.first_seen), "
        "last_seen = max(last_seen, excluded.last_seen)",
        (name, address, now, now),
    )


def all_cameras(conn: sqlite3.Connection) -> list[Camera]:
    rows = conn.execute("SELECT name, address, first_seen, last_seen FROM cameras ORDER BY name").fetchall()
    return [Camera(str(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in rows]
