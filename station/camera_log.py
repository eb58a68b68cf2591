"""The cameras table kept by the station: every camera that sends a frame is noted in the gallery with when it
was first and last seen (the History page's camera filter and a record of what was on the LAN).

The receiver delivers each camera's frames many times a second on its receive thread; this listener only
compares two numbers per frame and hands the gallery's writer one note per camera every ``every_s`` seconds
(and the first frame's at once). ``close`` notes the last frame of every camera, so the table's last seen
is exact to the frame when the station stops, and within ``every_s`` while it runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from network.frames import Frame
from storage.errors import GalleryError

log = logging.getLogger(__name__)

NOTE_EVERY_S = 10.0

NoteCamera = Callable[[str, str, float], None]  # (name, address, seen at) -> queued
AddressOf = Callable[[str], str]


class CameraLog:
    """A frame listener (``UdpReceiver.add_listener``) that notes cameras in the gallery, throttled per camera."""

    def __init__(
        self,
        note: NoteCamera,
        address_of: AddressOf,
        *,
        every_s: float = NOTE_EVERY_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not every_s > 0:
            raise ValueError("every_s must be positive")
        self._note = note
        self._address_of = address_of
        self._every = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._noted: dict[str, float] = {}  # camera -> when it was last noted
        self._seen: dict[str, float] = {}  # camera -> its newest frame
        self.notes = 0  # notes handed to the gallery (for tests and the stats)
        self.failures = 0

    def __call__(self, frame: Frame) -> None:
        now = self._clock()
        camera = frame.camera
        with self._lock:
            self._seen[camera] = now
            last = self._noted.get(camera)
            if last is not None and now - last < self._every:
                return
            self._noted[camera] = now
        self._write(camera, now)

    def close(self) -> None:
        """Note each camera's newest frame that was not noted yet (the station is stopping)."""
        with self._lock:
            due = [(cam, seen) for cam, seen in self._seen.items() if seen > self._noted.get(cam, -1.0)]
            self._noted.update(due)
        for camera, seen in due:
            self._write(camera, seen)

    def _write(self, camera: str, at: float) -> None:
        try:
            self._note(camera, self._address_of(camera), at)
            self.notes += 1
        except GalleryError as exc:  # a closed or failing gallery: the frames still flow
            self.failures += 1
            log.warning("camera %s not noted in the gallery: %s", camera, exc)
