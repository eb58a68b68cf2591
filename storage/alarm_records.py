"""What an alarm is, as the gallery hands it out (frozen: it crosses from the writer and readers to the station's
rules and the console's alarm queue)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

Box = tuple[float, float, float, float]

MAX_NOTE = 2000


class AlarmKind(StrEnum):
    WATCHLIST = "watchlist"  # someone on a list, seen at its strictness on its cameras
    STRANGER = "stranger"  # an unknown face the stranger rules ask about
    SYSTEM = "system"  # the station's own trouble: a nearly full disk, sightings not being recorded


class AlarmState(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


OPEN_STATES = (AlarmState.NEW, AlarmState.ACKNOWLEDGED)


@dataclass(frozen=True)
class Alarm:
    """One alarm. ``person`` is the person's name now (None for a stranger, a system alarm, or a person since
    erased); ``watchlist`` the list's name when it was raised. ``hits``: how often it was seen again while the
    alarm was open; ``escalations``: how often it escalated while nobody acknowledged it."""

    id: int
    kind: AlarmKind
    state: AlarmState
    priority: int
    raised: float
    last_seen: float
    hits: int
    camera: str
    track: str
    frame_id: int | None
    box: Box | None
    person_id: int | None
    person: str | None
    watchlist_id: int | None
    watchlist: str
    score: float | None
    sighting_id: int | None
    subject: str
    detail: str
    sound: str
    actions: tuple[str, ...]
    escalate_after_s: float
    escalations: int
    escalated_at: float | None
    acknowledged_by: str | None
    acknowledged_at: float | None
    ack_note: str | None
    closed_by: str | None
    closed_at: float | None
    close_note: str | None

    @property
    def open(self) -> bool:
        return self.state is not AlarmState.CLOSED

    def title(self) -> str:
        """What the alarm is about, in a few words ("Colin Powell on Barred", "stranger", "disk nearly full")."""
        if self.kind is AlarmKind.WATCHLIST:
            who = self.person or "(a person since deleted)"
            return f"{who} on {self.watchlist}" if self.watchlist else who
        if self.kind is AlarmKind.STRANGER:
            return "stranger"
        return self.detail or self.subject


@dataclass(frozen=True)
class RaiseResult:
    """What raising did: a new alarm, or another hit on an open one (``new`` False)."""

    alarm_id: int
    new: bool
