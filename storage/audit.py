"""The audit log: who did what, when (enrol, rename, merge, delete, export, search). Written in the same
transaction as the change it records, so a change and its entry commit or fail together."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from storage.records import AuditEntry


def record(conn: sqlite3.Connection, actor: str, action: str, details: dict[str, Any]) -> AuditEntry:
    """Insert one entry (inside the caller's transaction) and return it, id included."""
    now = time.time()
    text = json.dumps(details, sort_keys=True, default=str)
    sql = "INSERT INTO audit (time, actor, action, details) VALUES (?, ?, ?, ?)"
    cur = conn.execute(sql, (now, actor, action, text))
    return AuditEntry(int(cur.lastrowid or 0), now, actor, action, text)


def entries(conn: sqlite3.Connection, *, action: str | None, limit: int, offset: int) -> list[AuditEntry]:
    """Newest first; every action, or only ``action``."""
    where, params = ("WHERE action = ?", (action,)) if action else ("", ())
    rows = conn.execute(
        f"SELECT id, time, actor, action, details FROM audit {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*params, int(limit), int(offset)),
    ).fetchall()
    return [AuditEntry(int(r[0]), float(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]
