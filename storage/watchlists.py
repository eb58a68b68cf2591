"""Watchlists, plural: named lists of persons, each with its own strictness, cameras, priority, sound and
actions (storage/watchlist_records.py). ``Gallery.watchlists`` is this facade; the SQL is in
storage/watchlist_sql.py.

Every change bumps the gallery's revision (the matcher's "on any list" flag and the station's alarm rules
reload on it) and is audited: a list's creation, change and deletion, and each person put on or taken off a
list (action ``watchlist``, with ``on``: whether they are on any list afterwards, as issue 18's events read it).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from storage import people
from storage import watchlist_sql as sql
from storage.codec import check_text, is_int
from storage.core import GalleryCore
from storage.errors import GalleryError
from storage.people import PersonRef
from storage.watchlist_records import (
    DEFAULT_ACTIONS,
    DEFAULT_LIST,
    MAX_NAME,
    SOUNDS,
    ListAction,
    Priority,
    Watchlist,
)

ListRef = str | int
MAX_ESCALATE_S = 86_400.0


def check_name(name: object) -> str:
    """A list's name: not empty, at most MAX_NAME characters, printable (GalleryError naming the problem)."""
    return check_text(name, "watchlist name", max_len=MAX_NAME)


def checked(w: Watchlist) -> Watchlist:
    """``w`` with every field checked: one GalleryError naming the first bad one."""
    name = check_name(w.name)
    if w.threshold is not None and (
        isinstance(w.threshold, bool) or not math.isfinite(float(w.threshold)) or not 0.0 < float(w.threshold) < 1.0
    ):
        raise GalleryError(f"the strictness of {name!r} must be a threshold between 0 and 1 (or the station's)")
    cameras = tuple(dict.fromkeys(check_text(c, "camera name") for c in w.cameras))
    if w.priority not in set(Priority):
        raise GalleryError(f"the priority of {name!r} must be 1 (critical) .. 4 (low)")
    if w.sound not in SOUNDS:
        raise GalleryError(f"the sound of {name!r} must be one of {', '.join(SOUNDS)}")
    actions = tuple(dict.fromkeys(ListAction(a) for a in w.actions))
    if not 0.0 <= float(w.escalate_after_s) <= MAX_ESCALATE_S:
        raise GalleryError(f"the escalation of {name!r} must be 0 (never) .. {MAX_ESCALATE_S:.0f} seconds")
    threshold = None if w.threshold is None else float(w.threshold)
    return replace(w, name=name, threshold=threshold, cameras=cameras, actions=actions, priority=int(w.priority))


class Watchlists:
    """The gallery's watchlists; see the module docstring."""

    def __init__(self, core: GalleryCore) -> None:
        self._core = core

    # ----------------------------------------------------------------- lists

    def all(self) -> list[Watchlist]:
        """Every list, by priority then name, with how many persons are on each."""
        return self._core.read(sql.all_lists)

    def get(self, ref: ListRef) -> Watchlist:
        """A list by name (case-insensitive) or id."""
        return self._core.read(lambda conn: sql.by_id(conn, _list_id(conn, ref)))

    def create(
        self,
        name: str,
        *,
        threshold: float | None = None,
        cameras: Sequence[str] = (),
        priority: int = Priority.NORMAL,
        sound: str = "bell",
        actions: Iterable[ListAction] = DEFAULT_ACTIONS,
        escalate_after_s: float = 120.0,
    ) -> Watchlist:
        """A new list; refuses an empty or over-long name, or one another list has. Audited."""
        w = checked(Watchlist(0, name, threshold, tuple(cameras), priority, sound, tuple(actions), escalate_after_s))

        def run(conn: sqlite3.Connection) -> Watchlist:
            new = sql.by_id(conn, sql.insert(conn, w))
            self._core._changed(conn, "watchlist_created", _details(new))
            return new

        return self._core._write(run, "new watchlist")

    def ensure(self, name: str) -> Watchlist:
        """The list called ``name``, created with the defaults if there is none (``enrol --watchlist``)."""
        wanted = check_name(name)

        def run(conn: sqlite3.Connection) -> Watchlist:
            found = sql.find(conn, wanted)
            if found is not None:
                return sql.by_id(conn, found)
            new = sql.by_id(conn, sql.insert(conn, checked(Watchlist(0, wanted))))
            self._core._changed(conn, "watchlist_created", _details(new))
            return new

        return self._core._write(run, "new watchlist")

    def update(self, ref: ListRef, **changes: Any) -> Watchlist:
        """Change a list's settings (name, threshold, cameras, priority, sound, actions, escalate_after_s). Audited."""
        allowed = {"name", "threshold", "cameras", "priority", "sound", "actions", "escalate_after_s"}
        unknown = set(changes) - allowed
        if unknown:
            raise GalleryError(f"a watchlist has no setting {sorted(unknown)[0]!r}")

        def run(conn: sqlite3.Connection) -> Watchlist:
            old = sql.by_id(conn, _list_id(conn, ref))
            new = checked(replace(old, **changes))
            sql.update(conn, new)
            self._core._changed(conn, "watchlist_updated", {**_details(new), "from": _details(old)})
            return sql.by_id(conn, new.id)

        return self._core._write(run, "watchlist change")

    def delete(self, ref: ListRef) -> int:
        """Delete a list; the persons on it stay in the gallery (on their other lists). Returns how many were
        on it. Its alarms keep their list's name. Audited."""

        def run(conn: sqlite3.Connection) -> int:
            w = sql.by_id(conn, _list_id(conn, ref))
            members = sql.delete(conn, w.id)
            self._core._changed(conn, "watchlist_deleted", {**_details(w), "members": members})
            return members

        return self._core._write(run, "watchlist deletion")

    # --------------------------------------------------------------- members

    def add(self, person: PersonRef, ref: ListRef) -> bool:
        """Put a person on a list; False when they already were. Audited."""
        return self._member(person, ref, on=True)

    def remove(self, person: PersonRef, ref: ListRef) -> bool:
        """Take a person off a list; False when they were not on it. Audited."""
        return self._member(person, ref, on=False)

    def _member(self, person: PersonRef, ref: ListRef, *, on: bool) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            pid = people.person_id(conn, person)
            lid = _list_id(conn, ref)
            changed = sql.add_member(conn, lid, pid) if on else sql.remove_member(conn, lid, pid)
            if changed:
                self._membership_changed(conn, pid, sql.by_id(conn, lid).name, on)
            return changed

        return self._core._write(run, "watchlist membership")

    def set_lists(self, person: PersonRef, refs: Iterable[ListRef]) -> None:
        """Put a person on exactly these lists (off every other), in one transaction. Audited per change."""
        wanted_refs = list(refs)

        def run(conn: sqlite3.Connection) -> None:
            pid = people.person_id(conn, person)
            wanted = {_list_id(conn, r) for r in wanted_refs}
            current = {w.id for w in sql.lists_of(conn, pid)}
            for lid in sorted(current - wanted):
                sql.remove_member(conn, lid, pid)
                self._membership_changed(conn, pid, sql.by_id(conn, lid).name, False)
            for lid in sorted(wanted - current):
                sql.add_member(conn, lid, pid)
                self._membership_changed(conn, pid, sql.by_id(conn, lid).name, True)

        self._core._write(run, "watchlist membership")

    def set_default(self, person: PersonRef, on: bool) -> None:
        """Today's one-flag watchlist: on puts the person on the default list (created if it was deleted),
        off takes them off every list."""

        def run(conn: sqlite3.Connection) -> None:
            pid = people.person_id(conn, person)
            if on:
                lid = sql.find(conn, DEFAULT_LIST)
                if lid is None:
                    lid = sql.insert(conn, checked(Watchlist(0, DEFAULT_LIST)))
                if sql.add_member(conn, lid, pid):
                    self._membership_changed(conn, pid, DEFAULT_LIST, True)
                return
            for w in sql.lists_of(conn, pid):
                sql.remove_member(conn, w.id, pid)
                self._membership_changed(conn, pid, w.name, False)

        self._core._write(run, "watchlist change")

    def _membership_changed(self, conn: sqlite3.Connection, pid: int, list_name: str, added: bool) -> None:
        on_any = bool(sql.lists_of(conn, pid))
        details = {"person": people.name_of(conn, pid), "person_id": pid, "list": list_name, "added": added}
        self._core._changed(conn, "watchlist", {**details, "on": on_any})

    def lists_of(self, person: PersonRef) -> list[Watchlist]:
        """The lists a person is on, by priority then name."""
        return self._core.read(lambda conn: sql.lists_of(conn, people.person_id(conn, person)))

    def members(self, ref: ListRef) -> list[tuple[int, str]]:
        """(person id, name) of everyone on a list, by name."""
        return self._core.read(lambda conn: sql.members(conn, _list_id(conn, ref)))

    def memberships(self) -> dict[int, tuple[int, ...]]:
        """Person id -> the ids of the lists they are on (the alarm rules' lookup)."""
        return self._core.read(sql.memberships)


def _list_id(conn: sqlite3.Connection, ref: ListRef) -> int:
    if is_int(ref):
        return sql.by_id(conn, int(ref)).id
    name = check_name(ref)
    found = sql.find(conn, name)
    if found is None:
        raise GalleryError(f"no watchlist named {name!r}")
    return found


def _details(w: Watchlist) -> dict[str, Any]:
    return {
        "list": w.name,
        "list_id": w.id,
        "threshold": w.threshold,
        "cameras": list(w.cameras),
        "priority": Priority(w.priority).label,
        "sound": w.sound,
        "actions": [str(a) for a in w.actions],
        "escalate_after_s": w.escalate_after_s,
    }
