"""Is the gallery keeping up? Lost writes and the room left on its disk, watched for the operator.

Every sighting the writer could not store is counted (``Gallery.on_writer_error``), and failures that go on
for ``persist_s`` raise an alarm once per episode. On the station's schedule the watch measures the room left
(``Gallery.room``: the disk's free space, or what the file's size limit leaves). Below the margin (the
``storage.margin_mb`` setting) it warns once, raises an alarm, and has the gallery store new sightings without
their evidence snapshots; with room again (the margin and a tenth more, so it does not flap) it says so and
snapshots are kept again. If the disk fills all the same, the writer keeps the sightings without snapshots,
then without crops, before giving any up (storage.writer). The console shows :meth:`StorageWatch.status` in
its status bar, headless prints it in its stats.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.records import WriterError

log = logging.getLogger(__name__)

MB = 1_000_000
PERSIST_S = 30.0  # lost writes for this long raise an alarm
RESUME_FACTOR = 1.1  # room must be back above the margin by this much before snapshots are kept again

AlarmSink = Callable[[str, str], object]  # (subject, text): one system alarm per subject while it is open


@dataclass(frozen=True)
class StorageStatus:
    """The gallery's health as the operator sees it; ``room_bytes`` None when it could not be measured."""

    room_bytes: int | None
    margin_bytes: int
    low_space: bool
    lost_sightings: int  # sightings the writer could not store since the station started
    lost_other: int  # other writes (alarms, audit entries, notes) it could not store
    losing: bool  # writes have been failing for PERSIST_S or more
    last_error: str
    snapshots_dropped: int  # left out of stored sightings to save room
    crops_dropped: int

    def as_json(self) -> dict[str, object]:
        """Headless's storage line (beside the stats lines)."""
        return {
            "event": "storage",
            "room_mb": None if self.room_bytes is None else round(self.room_bytes / MB, 1),
            "margin_mb": round(self.margin_bytes / MB, 1),
            "low_space": self.low_space,
            "lost_sightings": self.lost_sightings,
            "lost_writes": self.lost_other,
            "snapshots_dropped": self.snapshots_dropped,
            "crops_dropped": self.crops_dropped,
            **({"last_error": self.last_error} if self.last_error else {}),
        }

    def warning(self) -> str:
        """The status bar's warning: empty when all is well."""
        parts = []
        if self.low_space and self.room_bytes is not None:
            parts.append(
                f"Gallery disk nearly full: {_mb(self.room_bytes)} left (margin {_mb(self.margin_bytes)}); "
                "new sightings are stored without snapshots"
            )
        lost = self.lost_sightings + self.lost_other
        if lost:
            parts.append(f"{lost} write(s) lost ({self.lost_sightings} sightings): {self.last_error}")
        return " · ".join(parts)


class StorageWatch:
    """Counts lost writes as they are reported and measures the room left on :meth:`check`."""

    def __init__(
        self,
        gallery: Gallery,
        margin_bytes: Callable[[], int],
        *,
        on_alarm: AlarmSink | None = None,
        persist_s: float = PERSIST_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gallery = gallery
        self._margin = margin_bytes
        self._on_alarm = on_alarm
        self._persist_s = persist_s
        self._clock = clock
        self._lock = threading.Lock()
        self._room: int | None = None
        self._margin_now = 0
        self._low = False
        self._lost_sightings = 0
        self._lost_other = 0
        self._last_error = ""
        self._failing_since: float | None = None  # the first failure of the current episode
        self._last_failure = 0.0
        self._losing = False
        gallery.on_writer_error(self._on_error)

    # ----------------------------------------------------------- lost writes

    def _on_error(self, err: WriterError) -> None:
        """On the writer thread: count the loss; an episode that lasts ``persist_s`` raises one alarm."""
        now = self._clock()
        with self._lock:
            if err.what.startswith("sighting"):
                self._lost_sightings += max(1, err.count)
            else:
                self._lost_other += max(1, err.count)
            self._last_error = err.message
            if self._failing_since is None or now - self._last_failure > self._persist_s:
                self._failing_since = now  # a new episode: the last failure was long ago
                self._losing = False
            self._last_failure = now
            newly = not self._losing and now - self._failing_since >= self._persist_s
            self._losing = self._losing or newly
            count = self._lost_sightings
        if newly:
            self._alarm("writes", f"sightings are not being recorded ({count} lost so far): {err.message}")

    # ------------------------------------------------------------------ room

    def check(self) -> StorageStatus:
        """Measure the room left and act on it (runs on the station's schedule; also callable any time)."""
        margin = max(0, int(self._margin()))
        try:
            room: int | None = self.gallery.room()
        except GalleryError as exc:
            log.warning("the gallery's free space could not be measured: %s", exc)
            room = None
        with self._lock:
            was_low = self._low
            self._room, self._margin_now = room, margin
            if room is not None:
                self._low = room < margin if not was_low else room < margin * RESUME_FACTOR
            self._settle_losing()
            low = self._low
        if low != was_low:
            self.gallery.keep_snapshots(not low)
            if low:
                text = f"the gallery's disk has {_mb(room)} left, under the {_mb(margin)} margin"
                log.warning("%s: new sightings are stored without their evidence snapshots", text)
                self._alarm("disk", text + "; new sightings are stored without snapshots until room returns")
            else:
                log.info("the gallery's disk has room again (%s): evidence snapshots are kept again", _mb(room))
        return self.status()

    def _settle_losing(self) -> None:
        """With the lock held: an episode of failures ends after ``persist_s`` without one."""
        if self._failing_since is not None and self._clock() - self._last_failure > self._persist_s:
            self._failing_since, self._losing = None, False

    def status(self) -> StorageStatus:
        snapshots, crops = self.gallery.dropped()
        with self._lock:
            return StorageStatus(
                room_bytes=self._room,
                margin_bytes=self._margin_now,
                low_space=self._low,
                lost_sightings=self._lost_sightings,
                lost_other=self._lost_other,
                losing=self._losing,
                last_error=self._last_error,
                snapshots_dropped=snapshots,
                crops_dropped=crops,
            )

    def _alarm(self, subject: str, text: str) -> None:
        if self._on_alarm is None:
            return
        try:
            self._on_alarm(subject, text)
        except Exception:  # the disk may be too full for the alarm too: the log and the status still say it
            log.exception("the storage alarm could not be raised")


def _mb(n: int | None) -> str:
    if n is None:
        return "an unknown amount"
    return f"{n / MB:.0f} MB" if n >= 10 * MB else f"{n / MB:.1f} MB"
