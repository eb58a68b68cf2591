"""Capture sources for the sender: a webcam, a video file or stream URL, a folder of images, or the demo.

Each yields BGR pictures through ``read(media_time)``; a file plays by its own clock (frames that
are not due are grabbed and skipped, never decoded), a live source is read as fast as it delivers.
Only numpy and OpenCV: this runs on the camera host.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("facestation.sender")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
URL_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
REOPEN_EVERY_S = 2.0


class SourceError(Exception):
    """A source that cannot be opened or read: one line for the operator."""


class Source:
    """Something that yields pictures. ``read`` returns None when it has nothing now."""

    name = "source"
    live = True  # a live source is read as fast as it produces; a file is read by its clock
    fps: float = 0.0

    def read(self, media_time: float) -> np.ndarray | None:
        raise NotImplementedError

    def size(self) -> tuple[int, int]:
        """(width, height) if known before the first frame, else (0, 0)."""
        return 0, 0

    def close(self) -> None:
        pass


class DemoSource(Source):
    """A synthetic moving picture: needs no camera and no files."""

    live = False

    def __init__(self, width: int = 640, height: int = 480, fps: float = 15.0) -> None:
        self.name = "demo"
        self.fps = fps
        self.width, self.height = width, height
        y, x = np.mgrid[0:height, 0:width]
        self._base = np.dstack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)), np.full_like(x, 96)])
        self._base = self._base.astype(np.uint8)
        self._count = 0

    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def read(self, media_time: float) -> np.ndarray | None:
        self._count += 1
        img = np.roll(self._base, int(media_time * 40) % self.width, axis=1).copy()
        cx = int(self.width / 2 + self.width / 3 * np.sin(media_time * 1.3))
        cy = int(self.height / 2 + self.height / 3 * np.cos(media_time * 0.9))
        cv2.circle(img, (cx, cy), max(8, self.height // 8), (40, 40, 230), -1)
        stamp = time.strftime("%H:%M:%S")
        cv2.putText(
            img,
            f"FaceStation demo  {stamp}  #{self._count}",
            (12, 30),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.7,
            (255, 255, 255),
            2,
            cv2.LINE_AA,
        )
        return img


class VideoSource(Source):
    """A webcam, a video file or a stream URL, through OpenCV."""

    def __init__(self, spec: str, *, loop: bool, open_timeout_ms: int = 5000, start_s: float = 0.0) -> None:
        self.spec = spec
        self.loop = loop
        self.name = spec
        self._index: int | None = int(spec) if spec.isdigit() else None
        self.is_url = spec.lower().startswith(URL_PREFIXES)
        self.live = self._index is not None or self.is_url
        self._timeout = open_timeout_ms
        if self._index is None and not self.is_url and not Path(spec).is_file():
            raise SourceError(f"video file not found: {spec}")
        self._cap = self._open()
        if self._cap is None:
            if self._index is not None:
                raise SourceError(f"cannot open camera {self._index} (no such device, or busy)")
            if self.is_url:
                raise SourceError(f"cannot open URL {spec} (unreachable, refused or not a video; -v shows why)")
            raise SourceError(f"cannot open video file {spec} (not a video OpenCV can decode)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.5 < fps < 1000 else 25.0
        self._next_pos = 0.0  # media time (s) of the next frame in a file
        self._last_reopen = 0.0
        self.start_s = 0.0
        if start_s > 0:
            if self.live:
                raise SourceError("--start applies to video files, not to cameras or streams")
            self.start_s = start_s
            self._seek(start_s)

    def size(self) -> tuple[int, int]:
        if self._cap is None:
            return 0, 0
        return int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def _open(self) -> cv2.VideoCapture | None:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._timeout, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._timeout]
        if self._index is not None:
            cap = cv2.VideoCapture(self._index)
        else:
            cap = cv2.VideoCapture(self.spec, cv2.CAP_ANY, params)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def read(self, media_time: float) -> np.ndarray | None:
        if self._cap is None:
            self._reopen()
            return None
        if self.live:
            ok, img = self._cap.read()
            if not ok:
                log.warning("source %s stopped delivering; reopening", self.spec)
                self._cap.release()
                self._cap = None
                return None
            return img
        # A file plays by its own clock: skip (grab without decoding) up to media_time.
        frame_dt = 1.0 / self.fps
        while self._next_pos + frame_dt <= media_time:  # the frame after next is due too: skip next
            if not self._cap.grab():
                raise EndOfSource(self.spec)
            self._next_pos += frame_dt
        ok, img = self._cap.read()
        if not ok:
            raise EndOfSource(self.spec)
        self._next_pos += frame_dt
        return img

    def rewind(self) -> None:
        """Back to the start of the file (a loop starts at the beginning, not at ``start_s``)."""
        if self._cap is not None:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._next_pos = 0.0

    def _seek(self, seconds: float) -> None:
        """Skip the first ``seconds`` of a file; a start past its end is refused."""
        assert self._cap is not None
        frames = float(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        if frames > 0 and seconds * self.fps >= frames:
            raise SourceError(f"--start {seconds:g} s is past the end of {self.spec} ({frames / self.fps:.1f} s)")
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, round(seconds * self.fps))

    def _reopen(self) -> None:
        now = time.monotonic()
        if now - self._last_reopen >= REOPEN_EVERY_S:
            self._last_reopen = now
            self._cap = self._open()
            if self._cap is not None:
                log.info("source %s is back", self.spec)
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


class FolderSource(Source):
    """A folder of still images shown as a slideshow at ``--fps``."""

    live = False

    def __init__(self, folder: Path, *, loop: bool, fps: float) -> None:
        self.name = str(folder)
        self.loop = loop
        self.fps = fps
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise SourceError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {folder}")
        self._next = 0
        self._good = 0

    def read(self, media_time: float) -> np.ndarray | None:
        while True:
            if self._next >= len(self.files):
                if not self.loop or self._good == 0:
                    if self._good == 0:
                        raise SourceError(f"none of the {len(self.files)} images in {self.name} could be read")
                    raise EndOfSource(self.name)
                self._next = 0
            path = self.files[self._next]
            self._next += 1
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                log.warning("skipping unreadable image %s", path)
                continue
            self._good += 1
            return img


class EndOfSource(Exception):
    """A file or folder source reached its end and is not looping."""


def open_source(spec: str, *, loop: bool, fps: float, start_s: float = 0.0) -> Source:
    """Open ``--source``; raises :class:`SourceError` with a clear message."""
    if spec == "demo":
        return DemoSource(fps=fps)
    path = Path(spec)
    if path.is_dir():
        if start_s:
            raise SourceError("--start applies to video files, not to image folders")
        return FolderSource(path, loop=loop, fps=fps)
    return VideoSource(spec, loop=loop, start_s=start_s)
