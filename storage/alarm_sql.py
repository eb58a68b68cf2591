"""The SQL of alarms (storage/alarms.py is the facade). Every change bumps the ``alarms`` counter, which the
consoles poll to reload their queue."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage import counters
from storage.alarm_records import Alarm, AlarmKind, AlarmState, Box
from storage.errors import GalleryError

_COLUMNS = (
    "a.id, a.kind, a.state, a.priority, a.raised, a.last_seen, a.hits, a.camera, a.track, a.frame_id, a.box, "
    "a.person_id, p.name, a.watchlist_id, a.watchlist, a.score, a.sighting_id, a.subject, a.detail, a.sound, "
    "a.actions, a.escalate_after_s, a.escalations, a.escalated_at, a.acknowledged_by, a.acknowledged_at, "
    "a.ack_note, a.closed_by, a.closed_at, a.close_note"
)
_FROM = "alarms a LEFT JOIN persons p ON p.id = a.person_id"


def _box(text: object) -> Box | None:
    if not isinstance(text, str):
        return None
    try:
        v = json.loads(text)
        return (float(v[0]), float(v[1]), float(v[2]), float(v[3]))
    except (ValueError, TypeError, IndexError):
        return None


def _opt_float(v: object) -> float | None:
    return None if v is None else float(v)  # type: ignore[arg-type]


def _opt_int(v: object) -> int | None:
    return None if v is None else int(v)  # type: ignore[call-overload]


def _opt_str(v: object) -> str | None:
    return None if v is None else str(v)


def _row(r: Sequence[Any]) -> Alarm:
    try:
        actions = tuple(str(a) for a in json.loads(str(r[20])))
    except ValueError:
        actions = ()
    return Alarm(
        id=int(r[0]),
        kind=AlarmKind(str(r[1])),
        state=AlarmState(str(r[2])),
        priority=int(r[3]),
        raised=float(r[4]),
        last_seen=float(r[5]),
        hits=int(r[6]),
        camera=str(r[7]),
        track=str(r[8]),
        frame_id=_opt_int(r[9]),
        box=_box(r[10]),
        person_id=_opt_int(r[11]),
        person=_opt_str(r[12]),
        watchlist_id=_opt_int(r[13]),
        watchlist=str(r[14]),
        score=_opt_float(r[15]),
        sighting_id=_opt_int(r[16]),
        subject=str(r[17]),
        detail=str(r[18]),
        sound=str(r[19]),
        actions=actions,
        escalate_after_s=float(r[21]),
        escalations=int(r[22]),
        escalated_at=_opt_float(r[23]),
        acknowledged_by=_opt_str(r[24]),
        acknowledged_at=_opt_float(r[25]),
        ack_note=_opt_str(r[26]),
        closed_by=_opt_str(r[27]),
        closed_at=_opt_float(r[28]),
        close_note=_opt_str(r[29]),
    )


@dataclass(frozen=True)
class NewAlarm:
    """The columns of an alarm being raised."""

    kind: AlarmKind
    priority: int
    at: float
    camera: str = ""
    track: str = ""
    frame_id: int | None = None
    box: Box | None = None
    person_id: int | None = None
    watchlist_id: int | None = None
    watchlist: str = ""
    score: float | None = None
    sighting_id: int | None = None
    subject: str = ""
    detail: str = ""
    sound: str = "bell"
    actions: tuple[str, ...] = ("queue", "tray")
    escalate_after_s: float = 0.0


def by_id(conn: sqlite3.Connection, alarm_id: int) -> Alarm:
    row = conn.execute(f"SELECT {_COLUMNS} FROM {_FROM} WHERE a.id = ?", (int(alarm_id),)).fetchone()
    if row is None:
        raise GalleryError(f"no alarm with id {int(alarm_id)}")
    return _row(row)


def insert(conn: sqlite3.Connection, a: NewAlarm) -> int:
    cur = conn.execute(
        "INSERT INTO alarms (kind, priority, raised, last_seen, camera, track, frame_id, box, person_id, "
        "watchlist_id, watchlist, score, sighting_id, subject, detail, sound, actions, escalate_after_s) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(a.kind),
            int(a.priority),
            a.at,
            a.at,
            a.camera,
            a.track,
            a.frame_id,
            None if a.box is None else json.dumps([round(float(v), 1) for v in a.box]),
            a.person_id,
            a.watchlist_id,
            a.watchlist,
            a.score,
            a.sighting_id,
            a.subject,
            a.detail,
            a.sound,
            json.dumps(list(a.actions)),
            a.escalate_after_s,
        ),
    )
    counters.bump(conn, counters.ALARMS)
    return int(cur.lastrowid or 0)


def open_alarm(
    conn: sqlite3.Connection,
    kind: AlarmKind,
    *,
    since: float,
    person_id: int | None = None,
    watchlist_id: int | None = None,
    subject: str = "",
) -> int | None:
    """The newest open alarm of this kind about the same person and list (or system subject), seen since
    ``since``: another hit goes on it instead of a new alarm."""
    row = conn.execute(
        "SELECT id FROM alarms WHERE kind = ? AND state != 'closed' AND last_seen >= ? "
        "AND person_id IS ? AND watchlist_id IS ? AND subject = ? ORDER BY id DESC LIMIT 1",
        (str(kind), since, person_id, watchlist_id, subject),
    ).fetchone()
    return None if row is None else int(row[0])


def hit(conn: sqlite3.Connection, alarm_id: int, at: float, score: float | None, detail: str | None = None) -> None:
    """Another sighting on an open alarm: counted, its time kept, the best score kept."""
    conn.execute(
        "UPDATE alarms SET hits = hits + 1, last_seen = max(last_seen, ?), "
        "score = CASE WHEN ? IS NULL THEN score WHEN score IS NULL THEN ? ELSE max(score, ?) END, "
        "detail = coalesce(?, detail) WHERE id = ?",
        (at, score, score, score, detail, int(alarm_id)),
    )
    counters.bump(conn, counters.ALARMS)


def link_sighting(conn: sqlite3.Connection, camera: str, track: str, sighting_id: int) -> list[int]:
    """The sighting recorded for a track, on the alarms raised for that track; the ids linked."""
    ids = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM alarms WHERE camera = ? AND track = ? AND sighting_id IS NULL", (camera, track)
        )
    ]
    if ids:
        conn.executemany("UPDATE alarms SET sighting_id = ? WHERE id = ?", [(int(sighting_id), i) for i in ids])
        counters.bump(conn, counters.ALARMS)
    return ids


def acknowledge(conn: sqlite3.Connection, alarm_id: int, by: str, at: float, note: str) -> bool:
    """New -> acknowledged; False when it was no longer new (someone else was first)."""
    cur = conn.execute(
        "UPDATE alarms SET state = 'acknowledged', acknowledged_by = ?, acknowledged_at = ?, ack_note = ? "
        "WHERE id = ? AND state = 'new'",
        (by, at, note, int(alarm_id)),
    )
    if cur.rowcount:
        counters.bump(conn, counters.ALARMS)
    return cur.rowcount > 0


def close(conn: sqlite3.Connection, alarm_id: int, by: str, at: float, note: str) -> bool:
    """New or acknowledged -> closed (a new one is acknowledged by the same hand); False when already closed."""
    cur = conn.execute(
        "UPDATE alarms SET state = 'closed', closed_by = ?, closed_at = ?, close_note = ?, "
        "acknowledged_by = coalesce(acknowledged_by, ?), acknowledged_at = coalesce(acknowledged_at, ?) "
        "WHERE id = ? AND state != 'closed'",
        (by, at, note, by, at, int(alarm_id)),
    )
    if cur.rowcount:
        counters.bump(conn, counters.ALARMS)
    return cur.rowcount > 0


def escalate_due(conn: sqlite3.Connection, now: float) -> list[int]:
    """New alarms left unacknowledged past their escalation time (again after each period): escalated now."""
    ids = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM alarms WHERE state = 'new' AND escalate_after_s > 0 "
            "AND coalesce(escalated_at, raised) + escalate_after_s <= ?",
            (now,),
        )
    ]
    if ids:
        conn.executemany(
            "UPDATE alarms SET escalations = escalations + 1, escalated_at = ? WHERE id = ?", [(now, i) for i in ids]
        )
        counters.bump(conn, counters.ALARMS)
    return ids


@dataclass(frozen=True)
class AlarmQuery:
    """The alarm queue's filter; None (or empty) means any."""

    states: tuple[AlarmState, ...] = ()
    watchlist: str | None = None
    camera: str | None = None
    kind: AlarmKind | None = None
    limit: int = 500


def select(conn: sqlite3.Connection, q: AlarmQuery) -> list[Alarm]:
    """Alarms matching ``q``: by priority (critical first), then newest first."""
    where: list[str] = []
    params: list[Any] = []
    if q.states:
        where.append(f"a.state IN ({','.join('?' * len(q.states))})")
        params.extend(str(s) for s in q.states)
    for column, value in (("a.watchlist", q.watchlist), ("a.camera", q.camera), ("a.kind", q.kind)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(str(value))
    sql = f"SELECT {_COLUMNS} FROM {_FROM} WHERE {' AND '.join(where) or '1'} ORDER BY a.priority, a.raised DESC"
    return [_row(r) for r in conn.execute(sql + " LIMIT ?", (*params, int(q.limit)))]


def of_person(conn: sqlite3.Connection, pid: int) -> list[Alarm]:
    """Every alarm raised about a person, oldest first (their data-protection export)."""
    sql = f"SELECT {_COLUMNS} FROM {_FROM} WHERE a.person_id = ? ORDER BY a.raised, a.id"
    return [_row(r) for r in conn.execute(sql, (pid,))]


def facets(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """The list names and cameras alarms were raised for (the queue's filter choices)."""
    lists = [str(r[0]) for r in conn.execute("SELECT DISTINCT watchlist FROM alarms WHERE watchlist != ''")]
    cameras = [str(r[0]) for r in conn.execute("SELECT DISTINCT camera FROM alarms WHERE camera != ''")]
    return sorted(lists, key=str.casefold), sorted(cameras, key=str.casefold)


def open_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM alarms WHERE state = 'new'").fetchone()[0])
