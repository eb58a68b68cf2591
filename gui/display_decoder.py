"""Decodes the newest frame of each *visible* camera off the GUI thread, for painting.

Friture's habit: data is stored cheaply as it arrives (one slot per camera, newest wins) and the
GUI takes it on its paint timer. Cameras whose tiles are hidden are not decoded at all, and a
tile smaller than half the picture gets OpenCV's reduced-size decode, which is 2-4x cheaper.
No Qt here: the GUI thread turns the arrays into QImages.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from network.frames import Frame
from network.udp_receiver import UdpReceiver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DisplayFrame:
    """A decoded picture ready for a tile; ``source_size`` is the camera's full (width, height)."""

    camera: str
    serial: int
    frame_id: int
    captured_at: float
    image: np.ndarray = field(repr=False)
    source_size: tuple[int, int]


def _reduction(frame_width: int, tile_width: int) -> int:
    """1, 2, 4 or 8: the JPEG scale-down that still gives at least the tile's width."""
    factor = 1
    while factor < 8 and frame_width // (factor * 2) >= tile_width:
        factor *= 2
    return factor


_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


class DisplayDecoder:
    """A thread that keeps one decoded picture per wanted camera."""

    def __init__(self, receiver: UdpReceiver) -> None:
        self._receiver = receiver
        self._lock = threading.Lock()
        self._wanted: dict[str, int] = {}  # camera -> tile width in pixels
        self._ready: dict[str, DisplayFrame] = {}
        self._sizes: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.decoded = 0
        self.errors = 0

    def start(self) -> DisplayDecoder:
        self._thread = threading.Thread(target=self._run, name="display-decoder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def want(self, widths: dict[str, int]) -> None:
        """The cameras to decode now, with their tiles' widths (called from the GUI thread)."""
        with self._lock:
            self._wanted = dict(widths)

    def take(self) -> dict[str, DisplayFrame]:
        """The pictures decoded since the last call, newest per camera."""
        with self._lock:
            ready, self._ready = self._ready, {}
        return ready

    def _run(self) -> None:
        serial = 0
        while not self._stop.is_set():
            frames = self._receiver.wait_for_frames(serial, 0.2)
            if not frames:
                continue
            serial = max(f.serial for f in frames)
            with self._lock:
                wanted = dict(self._wanted)
            for frame in frames:
                width = wanted.get(frame.camera)
                if width is None:
                    continue
                try:
                    shown = self._decode(frame, width)
                except Exception as exc:  # one bad frame never stops the thread
                    self.errors += 1
                    log.debug("display decode of %s frame %d failed: %s", frame.camera, frame.frame_id, exc)
                    continue
                with self._lock:
                    self._ready[frame.camera] = shown
                self.decoded += 1

    def _decode(self, frame: Frame, tile_width: int) -> DisplayFrame:
        full = self._sizes.get(frame.camera)
        factor = _reduction(full[0], tile_width) if full else 1
        image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), _REDUCED[factor])
        if image is None:
            raise ValueError("corrupt JPEG")
        h, w = image.shape[:2]
        if full is None or (-(-full[0] // factor), -(-full[1] // factor)) != (w, h):
            full = (w * factor, h * factor)  # first frame, or the camera changed resolution
            self._sizes[frame.camera] = full
        return DisplayFrame(frame.camera, frame.serial, frame.frame_id, frame.captured_at, image, full)
