"""The SQL of watchlists: the lists, their settings, and who is on which (storage/watchlists.py is the facade).

``persons.watchlist`` ("on any list") is kept by triggers (schema migration "watchlists"), so every change of
membership here is also the matcher's flag and retention's keep.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from storage.errors import GalleryError
from storage.watchlist_records import ListAction, Watchlist

_COLUMNS = (
    "w.id, w.name, w.threshold, w.cameras, w.priority, w.sound, w.actions, w.escalate_after_s, w.created, "
    "(SELECT count(*) FROM watchlist_members m WHERE m.watchlist_id = w.id)"
)


def _json_list(text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _row(r: Sequence[Any]) -> Watchlist:
    actions = tuple(ListAction(a) for a in _json_list(str(r[6])) if a in ListAction.__members__.values())
    return Watchlist(
        id=int(r[0]),
        name=str(r[1]),
        threshold=None if r[2] is None else float(r[2]),
        cameras=tuple(str(c) for c in _json_list(str(r[3]))),
        priority=int(r[4]),
        sound=str(r[5]),
        actions=actions,
        escalate_after_s=float(r[7]),
        created=float(r[8]),
        members=int(r[9]),
    )


def all_lists(conn: sqlite3.Connection) -> list[Watchlist]:
    """Every list, by priority (critical first), then name."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM watchlists w ORDER BY w.priority, w.name COLLATE NOCASE")
    return [_row(r) for r in rows]


def find(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT id FROM watchlists WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
    return None if row is None else int(row[0])


def by_id(conn: sqlite3.Connection, list_id: int) -> Watchlist:
    row = conn.execute(f"SELECT {_COLUMNS} FROM watchlists w WHERE w.id = ?", (int(list_id),)).fetchone()
    if row is None:
        raise GalleryError(f"no watchlist with id {int(list_id)}")
    return _row(row)


def insert(conn: sqlite3.Connection, w: Watchlist) -> int:
    if find(conn, w.name) is not None:
        raise GalleryError(f"a watchlist named {w.name!r} already exists")
    cur = conn.execute(
        "INSERT INTO watchlists (name, threshold, cameras, priority, sound, actions, escalate_after_s, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (*_values(w), time.time()),
    )
    return int(cur.lastrowid or 0)


def update(conn: sqlite3.Connection, w: Watchlist) -> None:
    clash = find(conn, w.name)
    if clash is not None and clash != w.id:
        raise GalleryError(f"a watchlist named {w.name!r} already exists")
    conn.execute(
        "UPDATE watchlists SET name = ?, threshold = ?, cameras = ?, priority = ?, sound = ?, actions = ?, "
        "escalate_after_s = ? WHERE id = ?",
        (*_values(w), w.id),
    )


def _values(w: Watchlist) -> tuple[Any, ...]:
    return (
        w.name,
        w.threshold,
        json.dumps(list(w.cameras)),
        int(w.priority),
        w.sound,
        json.dumps([str(a) for a in w.actions]),
        float(w.escalate_after_s),
    )


def delete(conn: sqlite3.Connection, list_id: int) -> int:
    """Delete a list (its memberships go with it; the persons stay); returns how many were on it."""
    members = by_id(conn, list_id).members
    conn.execute("DELETE FROM watchlists WHERE id = ?", (int(list_id),))
    return members


def add_member(conn: sqlite3.Connection, list_id: int, pid: int) -> bool:
    """Put a person on a list; False when they already were."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO watchlist_members (watchlist_id, person_id, added) VALUES (?, ?, ?)",
        (int(list_id), int(pid), time.time()),
    )
    return cur.rowcount > 0


def remove_member(conn: sqlite3.Connection, list_id: int, pid: int) -> bool:
    cur = conn.execute(
        "DELETE FROM watchlist_members WHERE watchlist_id = ? AND person_id = ?", (int(list_id), int(pid))
    )
    return cur.rowcount > 0


def remove_from_all(conn: sqlite3.Connection, pid: int) -> int:
    return int(conn.execute("DELETE FROM watchlist_members WHERE person_id = ?", (int(pid),)).rowcount)


def lists_of(conn: sqlite3.Connection, pid: int) -> list[Watchlist]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM watchlists w JOIN watchlist_members m ON m.watchlist_id = w.id "
        "WHERE m.person_id = ? ORDER BY w.priority, w.name COLLATE NOCASE",
        (int(pid),),
    )
    return [_row(r) for r in rows]


def memberships(conn: sqlite3.Connection) -> dict[int, tuple[int, ...]]:
    """Person id -> the ids of the lists they are on."""
    out: dict[int, list[int]] = {}
    for pid, lid in conn.execute("SELECT person_id, watchlist_id FROM watchlist_members ORDER BY watchlist_id"):
        out.setdefault(int(pid), []).append(int(lid))
    return {pid: tuple(ids) for pid, ids in out.items()}


def members(conn: sqlite3.Connection, list_id: int) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT p.id, p.name FROM watchlist_members m JOIN persons p ON p.id = m.person_id "
        "WHERE m.watchlist_id = ? ORDER BY p.name COLLATE NOCASE",
        (int(list_id),),
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def move_members(conn: sqlite3.Connection, src: int, dst: int) -> None:
    """A merge: ``src``'s lists become ``dst``'s too (before ``src`` is deleted and its rows cascade away)."""
    conn.execute(
        "INSERT OR IGNORE INTO watchlist_members (watchlist_id, person_id, added) "
        "SELECT watchlist_id, ?, added FROM watchlist_members WHERE person_id = ?",
        (int(dst), int(src)),
    )
