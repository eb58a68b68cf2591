"""Recorded footage through the live engine, as fast as the CPU allows: ``main.py scan`` and the console's
"Scan a video file…".

The file is read at the live analysis rate (``fps`` frames per second of media time; frames in between are
grabbed and skipped, never converted) and its frames go, in order, through one camera's
:class:`~vision.engine.CameraEngine`, the same engine the live workers run: the same detection schedule,
tracker and decisions. The only difference is speed: the frames the schedule searches whole are searched
ahead of time on a small pool of threads (:class:`_Ahead`, the engine's ``WholeAhead``) while earlier frames
are tracked. Each ended track is one sighting, recorded in the gallery with times taken from ``start`` plus
the frame's offset in the file, so an investigator searches the history of that footage like any camera's.

Nothing queues without a bound: the reader stays at most ``workers × 2`` frames ahead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from station.runtime import PhotoModel, RecognitionSettings, load_decider
from storage.gallery import Gallery
from vision.decision import Decider, next_revision
from vision.engine import CameraEngine
from vision.face_sources import DetectionSchedule, LivePipeline, LiveSettings, StationDetection
from vision.faces import Face
from vision.frames import CameraFrame
from vision.photo_confirmer import PhotoConfirmer
from vision.service import ServiceConfig
from vision.sightings import to_new_sighting
from vision.stages import StageClock, StageTimes
from vision.tracker import TrackerConfig, TrackRecord
from vision.types import ImageBGR

log = logging.getLogger(__name__)

DEFAULT_SCAN_FPS = 15.0


class ScanError(ValueError):
    """The file cannot be scanned (missing, not a video OpenCV can decode): one line for the operator."""


@dataclass(frozen=True)
class ScanSummary:
    """What one file's scan did: frames analysed, sightings recorded, and how long it took."""

    path: str
    camera: str
    start: float
    duration_s: float  # media time covered
    frames: int  # frames analysed
    faces: int
    embedded: int
    sightings: int
    named: int
    seconds: float  # wall time of the scan (the models were loaded before)

    def as_json(self) -> dict[str, object]:
        return {
            "event": "scan",
            "path": self.path,
            "camera": self.camera,
            "frames": self.frames,
            "faces": self.faces,
            "embedded": self.embedded,
            "sightings": self.sightings,
            "named": self.named,
            "media_s": round(self.duration_s, 3),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class _Sampled:
    index: int  # frame number in the file
    offset_s: float
    image: ImageBGR


def _frames(path: Path, fps: float, stop: threading.Event) -> tuple[Iterator[_Sampled], float, int]:
    """The file's frames at ``fps`` of media time (every frame when ``fps`` is 0), its fps and frame count."""
    if not path.is_file():
        raise ScanError(f"no video file at {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ScanError(f"cannot open video file {path} (not a video OpenCV can decode)")
    native = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    native = native if 0.5 < native < 1000 else 25.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    step = 1.0 / fps if fps > 0 else 0.0

    def read() -> Iterator[_Sampled]:
        index, next_due = 0, 0.0
        try:
            while not stop.is_set():
                offset = index / native
                if offset + 1e-9 >= next_due:
                    ok, image = cap.read()
                    if not ok:
                        return
                    next_due = max(next_due + step, offset) if step else offset
                    yield _Sampled(index, offset, np.asarray(image, dtype=np.uint8))
                elif not cap.grab():  # not due: skip it without converting its pixels
                    return
                index += 1
        finally:
            cap.release()

    return read(), native, count


class _Ahead:
    """The whole-frame searches of the frames read ahead, running on a thread pool (vision.face_sources.WholeAhead)."""

    def __init__(self, pool: ThreadPoolExecutor, pipeline: LivePipeline, min_face: float) -> None:
        self._pool = pool
        self._pipeline = pipeline
        self._min_face = min_face
        self._made: dict[int, Future[tuple[list[Face], StageTimes]]] = {}

    def submit(self, frame_id: int, image: ImageBGR) -> None:
        self._made[frame_id] = self._pool.submit(self._search, image)

    def _search(self, image: ImageBGR) -> tuple[list[Face], StageTimes]:
        clock = StageClock()
        faces = self._pipeline.candidates(image, min_face=self._min_face, clock=clock)
        return faces, clock.times()

    def take(self, frame: CameraFrame) -> tuple[list[Face], StageTimes] | None:
        made = self._made.pop(frame.frame_id, None)
        return None if made is None else made.result()


@dataclass
class _Counts:
    analysed: int = 0
    faces: int = 0
    looks: int = 0
    sightings: int = 0
    named: int = 0
    last_offset: float = 0.0


def scan_file(
    path: Path,
    *,
    pipeline: LivePipeline,
    gallery: Gallery | None,
    settings: RecognitionSettings,
    camera: str | None = None,
    start: float | None = None,
    fps: float = DEFAULT_SCAN_FPS,
    workers: int = 2,
    decider: Decider | None = None,
    photo: PhotoModel | None = None,
    tracker: TrackerConfig | None = None,
    on_sighting: Callable[[TrackRecord], None] | None = None,
    progress: Callable[[float], None] | None = None,
    stop: threading.Event | None = None,
    full_detect_every: int | None = None,
) -> ScanSummary:
    """Scan one file; see the module docstring. ``start`` defaults to the file's modification time.

    ``progress`` is called with the fraction of the file done; ``stop`` ends the scan early (the tracks
    seen so far still become sightings). ``full_detect_every`` is the live engine's (ServiceConfig) unless given.
    The decision is ``decider`` or else the gallery's, confirmed by ``photo`` as live (None: the live model alone).
    """
    if fps < 0:
        raise ScanError("the scan rate must not be negative")
    stop = stop or threading.Event()
    name = camera or path.stem or "footage"
    start = _start_time(path) if start is None else start
    frames, native, count = _frames(path, fps, stop)
    if decider is None:
        photo_model = None if photo is None else photo.model
        decider = (
            Decider(None, next_revision())
            if gallery is None
            else load_decider(gallery, pipeline.model, settings, photo_model)
        )
    live = ServiceConfig()  # the live engine's schedule
    every = live.full_detect_every if full_detect_every is None else full_detect_every
    live_settings = LiveSettings(settings.min_face_px, every, live.hint_age_s)
    counts = _Counts()
    began = time.monotonic()

    def record(ended: list[TrackRecord] | tuple[TrackRecord, ...]) -> None:
        if gallery is not None and ended:
            gallery.record_sightings([to_new_sighting(r) for r in ended])
        for r in ended:
            counts.sightings += 1
            counts.named += r.person is not None
            if on_sighting is not None:
                on_sighting(r)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="scan") as pool:
        ahead = _Ahead(pool, pipeline, settings.min_face_px)
        confirmer = None if photo is None else PhotoConfirmer(photo.pipeline, photo.model)
        source = StationDetection(pipeline, ahead)
        engine = CameraEngine(name, source, pipeline.embed_crops, tracker or TrackerConfig(), confirmer)
        for item in _read_ahead(frames, ahead, every, max(2, 2 * workers)):
            frame = CameraFrame(name, item.index, start + item.offset_s, start + item.offset_s, image=item.image)
            outcome = engine.process(frame, decider, live_settings, now=item.offset_s)
            counts.analysed += 1
            counts.faces += len(outcome.result.faces)
            counts.looks += outcome.looks
            counts.last_offset = item.offset_s
            record(outcome.ended)
            if progress is not None and count > 0:
                progress(min(1.0, (item.index + 1) / count))
        record(engine.flush())
    if gallery is not None:
        gallery.flush(timeout=30.0)
    return ScanSummary(
        path=str(path),
        camera=name,
        start=start,
        duration_s=max(counts.last_offset, count / native if count else counts.last_offset),
        frames=counts.analysed,
        faces=counts.faces,
        embedded=counts.looks,
        sightings=counts.sightings,
        named=counts.named,
        seconds=time.monotonic() - began,
    )


def _start_time(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError as exc:
        raise ScanError(f"cannot read {path}: {exc.strerror}") from None


def _read_ahead(frames: Iterator[_Sampled], ahead: _Ahead, every: int, depth: int) -> Iterator[_Sampled]:
    """The file's frames in order, read up to ``depth`` ahead, each one the schedule will search whole handed to
    ``ahead`` as it is read (the same schedule the engine's detection follows: vision.face_sources)."""
    queue: deque[_Sampled] = deque()
    for n, item in enumerate(frames):
        if DetectionSchedule.whole_at(n, every):
            ahead.submit(item.index, item.image)
        queue.append(item)
        if len(queue) >= depth:
            yield queue.popleft()
    while queue:
        yield queue.popleft()
