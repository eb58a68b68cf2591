"""Recorded footage through the live engine, as fast as the CPU allows: ``main.py scan`` and the console's
"Scan a video file…".

The file is read at the live analysis rate (``fps`` frames per second of media time; frames in
between are grabbed and skipped, never converted), its frames are detected, aligned and measured on
a small pool of threads, and their results go through one camera's tracker in frame order, which
embeds, decides and ends tracks exactly as it does live (vision/tracker.py). Each ended track is
one sighting, recorded in the gallery with times taken from ``start`` plus the frame's offset in the
file, so an investigator searches the history of that footage like any camera's.

Nothing queues without a bound: the reader stays at most ``workers × 2`` frames ahead.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from station.runtime import FacePipelineLike, RecognitionSettings, load_matcher
from storage.gallery import Gallery
from vision.matcher import Matcher, template_decider
from vision.results import FrameRef
from vision.service import ServiceConfig
from vision.sightings import to_new_sighting
from vision.stages import StageTimes
from vision.tracker import Tracker, TrackerConfig, TrackInput, TrackRecord
from vision.types import FloatArray, ImageBGR

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


class _Ordered:
    """Detection futures handed back in frame order, with at most ``ahead`` in flight (the bound); a frame
    submitted without a function comes back with None (it is refined in order, near the live tracks)."""

    def __init__(self, pool: ThreadPoolExecutor, ahead: int) -> None:
        self._pool = pool
        self._pending: queue.Queue[tuple[_Sampled, Future[list[Any]] | None]] = queue.Queue(maxsize=ahead)

    def submit(self, item: _Sampled, fn: Callable[[ImageBGR], list[Any]] | None) -> None:
        self._pending.put((item, None if fn is None else self._pool.submit(fn, item.image)))

    def full(self) -> bool:
        return self._pending.full()

    def empty(self) -> bool:
        return self._pending.empty()

    def next(self) -> tuple[_Sampled, list[Any] | None]:
        item, future = self._pending.get()
        return item, None if future is None else future.result()


def scan_file(
    path: Path,
    *,
    pipeline: FacePipelineLike,
    gallery: Gallery | None,
    settings: RecognitionSettings,
    camera: str | None = None,
    start: float | None = None,
    fps: float = DEFAULT_SCAN_FPS,
    workers: int = 2,
    matcher: Matcher | None = None,
    tracker: TrackerConfig | None = None,
    on_sighting: Callable[[TrackRecord], None] | None = None,
    progress: Callable[[float], None] | None = None,
    stop: threading.Event | None = None,
    full_detect_every: int | None = None,
) -> ScanSummary:
    """Scan one file; see the module docstring. ``start`` defaults to the file's modification time.

    ``progress`` is called with the fraction of the file done; ``stop`` ends the scan early (the tracks
    seen so far still become sightings). ``full_detect_every`` is the live engine's (ServiceConfig) unless given.
    """
    if fps < 0:
        raise ScanError("the scan rate must not be negative")
    stop = stop or threading.Event()
    name = camera or path.stem or "footage"
    if start is None:
        try:
            start = path.stat().st_mtime
        except OSError as exc:
            raise ScanError(f"cannot read {path}: {exc.strerror}") from None
    frames, native, count = _frames(path, fps, stop)
    if matcher is None and gallery is not None:
        matcher = load_matcher(gallery, pipeline.model, settings)
    timer = StageTimes()
    track = Tracker(name, tracker or TrackerConfig())
    decide = template_decider(matcher)
    embedded = faces = analysed = sightings = named = submitted = 0
    live = ServiceConfig()  # the live engine's schedule
    full_detect_every = live.full_detect_every if full_detect_every is None else full_detect_every
    hint_age_s = live.hint_age_s
    last_offset = 0.0
    began = time.monotonic()

    def detect(image: ImageBGR) -> list[Any]:
        return list(pipeline.candidates(image, min_face=settings.min_face_px, timer=timer))

    refine_step = getattr(pipeline, "refine_candidates", None)

    def refine(image: ImageBGR, offset: float) -> list[Any]:
        """O-Net near the live tracks' last boxes (the live engine's step between full detections)."""
        hints = track.recent_boxes(offset, hint_age_s)
        assert refine_step is not None
        return list(refine_step(image, hints, min_face=settings.min_face_px, timer=timer)) if hints else []

    def embed(crops: list[ImageBGR]) -> FloatArray:
        return pipeline.embed_crops(crops)

    def record(ended: tuple[TrackRecord, ...] | list[TrackRecord]) -> None:
        nonlocal sightings, named
        if not ended:
            return
        if gallery is not None:
            gallery.record_sightings([to_new_sighting(r) for r in ended])
        for r in ended:
            sightings += 1
            named += r.person is not None
            if on_sighting is not None:
                on_sighting(r)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="scan") as pool:
        ordered = _Ordered(pool, ahead=max(2, 2 * workers))
        source = iter(frames)
        exhausted = False
        while not (exhausted and ordered.empty()):
            while not exhausted and not ordered.full():
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                # As live: every ``full_detect_every``-th frame searched whole (ahead, on the pool), the rest
                # refined in order near the tracks (their boxes are known only once the frame before is in).
                whole = refine_step is None or full_detect_every <= 1 or submitted % full_detect_every == 0
                ordered.submit(item, detect if whole else None)
                submitted += 1
            if ordered.empty():
                break
            item, detected = ordered.next()
            found = detected if detected is not None else refine(item.image, item.offset_s)
            at = start + item.offset_s
            height, width = item.image.shape[:2]
            ref = FrameRef(None, width, height, image=item.image)
            inputs = [
                TrackInput(f.detection.box, float(f.quality.score), f.crop, f.embedding, f.model, frame=ref)
                for f in found
            ]
            update = track.update(inputs, at=at, now=item.offset_s, embed=embed, decide=decide)
            analysed += 1
            faces += len(found)
            embedded += sum(1 for v in update.views if v.embedded)
            last_offset = item.offset_s
            record(update.ended)
            if progress is not None and count > 0:
                progress(min(1.0, (item.index + 1) / count))
        record(track.flush())
    if gallery is not None:
        gallery.flush(timeout=30.0)
    return ScanSummary(
        path=str(path),
        camera=name,
        start=start,
        duration_s=max(last_offset, count / native if count else last_offset),
        frames=analysed,
        faces=faces,
        embedded=embedded,
        sightings=sightings,
        named=named,
        seconds=time.monotonic() - began,
    )
