"""Times in the gallery are epoch seconds (UTC); operators type and read ISO 8601."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from storage.errors import GalleryError

TimeLike = float | int | datetime


def to_epoch(value: TimeLike, what: str) -> float:
    """Epoch seconds from a number or a datetime (a naive datetime is taken as UTC)."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return dt.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GalleryError(f"{what} must be epoch seconds or a datetime, got {type(value).__name__}")
    t = float(value)
    if not math.isfinite(t):
        raise GalleryError(f"{what} is not finite")
    return t


def parse_iso(text: str, what: str) -> float:
    """Epoch seconds from ISO 8601 text (a date, or a date and time; no offset means UTC)."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise GalleryError(
            f"{what}: {text!r} is not an ISO 8601 time (e.g. 2026-11-29 or 2026-11-29T14:30:00Z)"
        ) from None
    return to_epoch(dt, what)


def iso(t: float) -> str:
    """ISO 8601 in UTC, to the millisecond."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
