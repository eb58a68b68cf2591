"""What a watchlist is, as the gallery hands it out (frozen: it crosses from the writer and readers to the
station's alarm rules and the console)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

MAX_NAME = 60
DEFAULT_LIST = "Watchlist"  # today's single watchlist became this list (schema migration "watchlists")
SOUNDS = ("bell", "bell x3", "none")  # the console rings the system bell once, three times, or not at all


class ListAction(StrEnum):
    """What a list does when someone on it is seen (at its strictness, on its cameras)."""

    QUEUE = "queue"  # an alarm in the alarm queue, kept until closed
    TRAY = "tray"  # a desktop (tray) message
    FOCUS = "focus"  # bring the alarm queue to the front
    PUBLISH = "publish"  # hand the alarm to the integrations (MQTT, webhooks: issue 18)


class Priority(IntEnum):
    """1 is the most urgent; the alarm queue is ordered by it, then by time."""

    CRITICAL = 1
    HIGH = 2
    NORMAL = 3
    LOW = 4

    @property
    def label(self) -> str:
        return self.name.lower()


DEFAULT_ACTIONS = (ListAction.QUEUE, ListAction.TRAY)


@dataclass(frozen=True)
class Watchlist:
    """A named list. ``threshold`` None: the station's own; ``cameras`` empty: every camera;
    ``escalate_after_s`` 0: its alarms never escalate. ``members`` is how many persons are on it."""

    id: int
    name: str
    threshold: float | None = None
    cameras: tuple[str, ...] = ()
    priority: int = Priority.NORMAL
    sound: str = "bell"
    actions: tuple[ListAction, ...] = DEFAULT_ACTIONS
    escalate_after_s: float = 120.0
    created: float = 0.0
    members: int = 0

    def applies_to(self, camera: str) -> bool:
        return not self.cameras or camera in self.cameras

    def strictness(self, station_threshold: float) -> float:
        """The score a face needs to raise this list's alarm: its own threshold, never under the station's
        (the engine names no face below the station's threshold, so a more lenient list could not see it)."""
        return station_threshold if self.threshold is None else max(station_threshold, self.threshold)

    def does(self, action: ListAction) -> bool:
        return action in self.actions
