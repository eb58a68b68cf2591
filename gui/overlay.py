"""What a tile draws over a picture: plain frozen records, so the tile never reaches into vision/."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FaceState(Enum):
    """How a face box is coloured; an undecided face (no look good enough yet) is neutral and shows no score."""

    KNOWN = "known"
    UNKNOWN = "unknown"
    WATCHLIST = "watchlist"
    UNDECIDED = "undecided"


@dataclass(frozen=True, slots=True)
class FaceOverlay:
    """One face box in the coordinates of the camera's full-size picture; ``score`` None: compared with no one."""

    box: tuple[float, float, float, float]
    label: str
    score: float | None
    state: FaceState


@dataclass(frozen=True, slots=True)
class TileBadge:
    """The small figures in a tile's corner."""

    fps: float
    latency_ms: float | None
    loss: float
    recognition_fps: float | None = None
