"""Alarms with a workflow, stored in the gallery: raised (a watchlist hit, a stranger, the station's own trouble),
acknowledged by someone with a note, escalated while nobody does, closed. Kept until closed, across restarts;
every step audited. ``Gallery.alarms`` is this facade; the SQL is in storage/alarm_sql.py.

Another hit of the same person on the same list (or the same system trouble) while its alarm is open, and seen
within ``REPEAT_S`` of its last, is counted on that alarm instead of raising a new one. Two consoles on one
gallery acknowledging the same alarm: the writer runs one change at a time and each is conditional on the
state it expects, so the second is refused with :class:`AlarmConflict` naming who was first, and when.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from storage import alarm_sql as sql
from storage import people
from storage.alarm_records import MAX_NOTE, Alarm, AlarmKind, AlarmState, Box, RaiseResult
from storage.alarm_sql import AlarmQuery, NewAlarm
from storage.codec import check_number, check_text
from storage.core import GalleryCore
from storage.errors import AlarmConflict, GalleryError
from storage.timeutil import iso
from storage.watchlist_records import Priority, Watchlist

REPEAT_S = 600.0  # a hit within this long of an open alarm's last one goes on that alarm


class Alarms:
    """The gallery's alarms; see the module docstring."""

    def __init__(self, core: GalleryCore) -> None:
        self._core = core

    # ------------------------------------------------------------------ read

    def revision(self) -> int:
        """Grows on every change of any alarm: cheap to poll (the consoles reload their queue on it)."""
        return self._core.counter("alarms")

    def get(self, alarm_id: int) -> Alarm:
        return self._core.read(lambda conn: sql.by_id(conn, alarm_id))

    def query(
        self,
        *,
        states: Sequence[AlarmState] = (),
        watchlist: str | None = None,
        camera: str | None = None,
        kind: AlarmKind | None = None,
        limit: int = 500,
    ) -> list[Alarm]:
        """Alarms in these states (any when empty), of this list, camera and kind: by priority, then newest first."""
        if not 1 <= int(limit) <= 10_000:
            raise GalleryError("limit must be 1..10000")
        q = AlarmQuery(tuple(AlarmState(s) for s in states), watchlist, camera, None if kind is None else kind, limit)
        return self._core.read(lambda conn: sql.select(conn, q))

    def facets(self) -> tuple[list[str], list[str]]:
        """(list names, cameras) alarms were raised for: the queue's filter choices."""
        return self._core.read(sql.facets)

    def waiting(self) -> int:
        """How many alarms nobody has acknowledged yet."""
        return self._core.read(sql.open_count)

    # ----------------------------------------------------------------- raise

    def raise_watchlist(
        self,
        watchlist: Watchlist,
        *,
        person_id: int,
        camera: str,
        track: str,
        score: float | None,
        at: float | None = None,
        frame_id: int | None = None,
        box: Box | None = None,
        sighting_id: int | None = None,
        repeat_s: float = REPEAT_S,
    ) -> RaiseResult:
        """Someone on ``watchlist`` was seen: a new alarm with the list's priority, sound, actions and escalation,
        or another hit on their open one. Audited when new."""
        when = time.time() if at is None else check_number(at, "alarm time")
        new = NewAlarm(
            kind=AlarmKind.WATCHLIST,
            priority=int(watchlist.priority),
            at=when,
            camera=check_text(camera, "camera"),
            track=check_text(track, "track", allow_empty=True),
            frame_id=frame_id,
            box=box,
            person_id=int(person_id),
            watchlist_id=watchlist.id,
            watchlist=watchlist.name,
            score=None if score is None else check_number(score, "score"),
            sighting_id=sighting_id,
            sound=watchlist.sound,
            actions=tuple(str(a) for a in watchlist.actions),
            escalate_after_s=watchlist.escalate_after_s,
        )
        return self._raise(new, repeat_s)

    def raise_stranger(
        self,
        *,
        camera: str,
        track: str,
        at: float,
        detail: str,
        priority: int = Priority.NORMAL,
        sighting_id: int | None = None,
        sound: str = "bell",
        escalate_after_s: float = 0.0,
    ) -> RaiseResult:
        """An unknown face the stranger rules ask about (station/stranger_rules.py decides, once per cluster and
        window). Audited."""
        new = NewAlarm(
            kind=AlarmKind.STRANGER,
            priority=int(Priority(priority)),
            at=check_number(at, "alarm time"),
            camera=check_text(camera, "camera"),
            track=check_text(track, "track", allow_empty=True),
            sighting_id=sighting_id,
            detail=check_text(detail, "detail", max_len=500, allow_empty=True),
            sound=sound,
            escalate_after_s=escalate_after_s,
        )
        return self._raise(new, repeat_s=0.0)

    def raise_system(self, subject: str, detail: str, *, priority: int = Priority.HIGH) -> RaiseResult:
        """The station's own trouble (``subject``: "disk", "writes"): one open alarm per subject; a repeat is
        counted on it with the newest detail. Audited when new."""
        new = NewAlarm(
            kind=AlarmKind.SYSTEM,
            priority=int(Priority(priority)),
            at=time.time(),
            subject=check_text(subject, "subject", max_len=40),
            detail=check_text(detail, "detail", max_len=500),
            escalate_after_s=0.0,
        )
        return self._raise(new, repeat_s=float("inf"))

    def hit(self, alarm_id: int, *, at: float, score: float | None = None, detail: str | None = None) -> None:
        """Another sighting counted on an open alarm (the stranger rules' cluster came back)."""
        self._core._write(lambda conn: sql.hit(conn, alarm_id, at, score, detail), "alarm hit")

    def _raise(self, new: NewAlarm, repeat_s: float) -> RaiseResult:
        def run(conn: sqlite3.Connection) -> RaiseResult:
            found = None
            if repeat_s > 0:
                since = new.at - repeat_s
                found = sql.open_alarm(
                    conn,
                    new.kind,
                    since=since,
                    person_id=new.person_id,
                    watchlist_id=new.watchlist_id,
                    subject=new.subject,
                )
            if found is not None:
                sql.hit(conn, found, new.at, new.score, new.detail or None)
                return RaiseResult(found, False)
            alarm_id = sql.insert(conn, new)
            self._core._audit(conn, "alarm_raised", _raised_details(conn, alarm_id, new))
            return RaiseResult(alarm_id, True)

        return self._core._write(run, "alarm")

    def link_sighting(self, camera: str, track: str, sighting_id: int) -> list[int]:
        """The recorded sighting of a track, on the alarms raised for it (their crop and evidence snapshot)."""
        return self._core._write(lambda conn: sql.link_sighting(conn, camera, track, int(sighting_id)), "alarm link")

    # -------------------------------------------------------------- workflow

    def acknowledge(self, alarm_id: int, note: str = "", *, by: str | None = None) -> Alarm:
        """New -> acknowledged by ``by`` (default: the gallery's actor) with ``note``. Refuses one that is no
        longer new with AlarmConflict naming who acknowledged (or closed) it and when. Audited."""
        return self._step(alarm_id, note, by, closing=False)

    def close(self, alarm_id: int, note: str = "", *, by: str | None = None) -> Alarm:
        """New or acknowledged -> closed with ``note``; refuses one already closed (AlarmConflict). Audited."""
        return self._step(alarm_id, note, by, closing=True)

    def _step(self, alarm_id: int, note: str, by: str | None, *, closing: bool) -> Alarm:
        text = check_text(note, "note", max_len=MAX_NOTE, allow_empty=True)
        who = check_text(self._core.actor if by is None else by, "who", max_len=100)

        def run(conn: sqlite3.Connection) -> Alarm:
            before = sql.by_id(conn, alarm_id)
            now = time.time()
            done = (sql.close if closing else sql.acknowledge)(conn, alarm_id, who, now, text)
            if not done:
                raise AlarmConflict(_conflict(before, closing))
            after = sql.by_id(conn, alarm_id)
            action = "alarm_closed" if closing else "alarm_acknowledged"
            self._core._audit(conn, action, {**_alarm_details(after), "by": who, "note": text})
            return after

        return self._core._write(run, "alarm " + ("close" if closing else "acknowledgement"))

    def escalate_due(self, now: float | None = None) -> list[Alarm]:
        """Escalate every new alarm left unacknowledged past its list's time (again each period); the console
        repeats its sound and tray message. Runs on the station's schedule. Audited per alarm."""
        when = time.time() if now is None else float(now)

        def run(conn: sqlite3.Connection) -> list[Alarm]:
            out = [sql.by_id(conn, i) for i in sql.escalate_due(conn, when)]
            for a in out:
                self._core._audit(conn, "alarm_escalated", {**_alarm_details(a), "escalations": a.escalations})
            return out

        return self._core._write(run, "alarm escalation")


def _conflict(alarm: Alarm, closing: bool) -> str:
    if alarm.state is AlarmState.CLOSED:
        who, when, note = alarm.closed_by, alarm.closed_at, alarm.close_note
        verb = "closed"
    else:
        who, when, note = alarm.acknowledged_by, alarm.acknowledged_at, alarm.ack_note
        verb = "acknowledged"
    said = f' ("{note}")' if note else ""
    at = iso(when) if when is not None else "an unknown time"
    hint = "" if closing or alarm.state is AlarmState.CLOSED else "; it can still be closed"
    return f"alarm {alarm.id} was already {verb} by {who} at {at}{said}{hint}"


def _alarm_details(a: Alarm) -> dict[str, Any]:
    return {
        "alarm_id": a.id,
        "kind": str(a.kind),
        "state": str(a.state),
        "priority": int(a.priority),
        "camera": a.camera,
        "track": a.track,
        "list": a.watchlist,
        "person": a.person,
        "person_id": a.person_id,
        "subject": a.subject,
    }


def _raised_details(conn: sqlite3.Connection, alarm_id: int, new: NewAlarm) -> dict[str, Any]:
    person = None if new.person_id is None else people.name_of(conn, new.person_id)
    return {
        "alarm_id": alarm_id,
        "kind": str(new.kind),
        "state": str(AlarmState.NEW),
        "priority": int(new.priority),
        "camera": new.camera,
        "track": new.track,
        "list": new.watchlist,
        "person": person,
        "person_id": new.person_id,
        "score": new.score,
        "subject": new.subject,
        "detail": new.detail,
    }
