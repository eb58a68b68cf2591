"""The recognition service: newest frame of each camera in, frozen results and ended tracks out, no Qt.

One feed thread waits on the frame feed and keeps, per camera, only the newest frame not yet taken (a
newer one replaces it: nothing queues). N worker threads share the cameras: a free worker takes the
camera that was served least recently among those with a waiting frame, no camera has more than one
frame in flight, and a camera with a rate cap waits for its turn. So when analysis is slower than the
cameras, every camera's rate drops by the same share and latency stays one frame's work.

Each worker hands its camera's frame to an :class:`EngineHost`, which runs that camera's
:class:`~vision.engine.CameraEngine` (in this process: :class:`LocalEngines`; in worker processes:
``vision.worker_processes.ProcessEngines``, where each worker thread drives one process and each camera
lives in one of them). The outcome's result goes to the listeners, called on the worker thread that made
it (keep them cheap; the console hands them to its own thread), and is kept per camera for
:meth:`latest_results`; its ended tracks go to the sighting sink; its stage times are added up.

The feed thread also polls the gallery's revision every ``revision_poll_s`` and, when it changed, builds
a fresh decider on a short-lived thread and swaps it in; a failing reload is logged and the old one kept
until the gallery changes again. Tracks of cameras gone quiet are ended on the same poll.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from vision.camera_slot import CameraSlot
from vision.decision import Confirmer, Decider
from vision.engine import CameraEngine, Embed, FrameLost, FrameOutcome
from vision.face_sources import LiveSettings, SourceFactory
from vision.frames import CameraFrame, FrameDecodeError
from vision.matcher import limit_blas_threads
from vision.results import FrameResult, RecognitionStats
from vision.stages import StageTotals
from vision.tracker import TrackerConfig, TrackRecord

log = logging.getLogger(__name__)


class FrameFeed(Protocol):
    """Where frames come from (the station adapts its receiver: station/frame_feed.py)."""

    def wait_for_frames(self, after_serial: int, timeout: float) -> list[CameraFrame]: ...

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(camera)`` for every frame delivered, on the feed's own thread (counts skips)."""
        ...


class EngineHost(Protocol):
    """Runs the cameras' engines (see the module docstring). ``home`` is the worker that must run a camera's
    frames (None: any worker)."""

    def home(self, camera: str) -> int | None: ...
    def set_decider(self, decider: Decider) -> None: ...
    def process(self, worker: int, camera: str, frame: CameraFrame, settings: LiveSettings) -> FrameOutcome: ...
    def expire(self, now: float) -> list[TrackRecord]: ...
    def flush(self) -> list[TrackRecord]: ...
    def live_tracks(self) -> dict[str, int]: ...
    def close(self) -> None: ...


ResultListener = Callable[[FrameResult], None]
SightingSink = Callable[[Sequence[TrackRecord]], None]
DeciderFactory = Callable[[], Decider]


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class ServiceConfig:
    """How many workers, how fast each camera may be recognised, the live schedule and the service's timings."""

    workers: int = field(default_factory=default_workers)
    max_rate_hz: float | None = None  # every camera's cap, None for as fast as the workers go
    camera_rate_hz: Mapping[str, float] = field(default_factory=dict)  # per-camera caps, over max_rate_hz
    max_frame_age_s: float = 2.0  # a frame received longer ago than this is never recognised
    revision_poll_s: float = 0.5
    stats_window_s: float = 2.0
    stop_timeout_s: float = 5.0
    blas_threads: int | None = 1  # process-wide numpy BLAS threads set on start (None leaves it alone)
    # Process-wide GIL switch interval set on start (None: Python's 5 ms): a worker waits up to one interval
    # for the GIL after each of its many short native calls while other threads run Python.
    gil_switch_s: float | None = 0.001
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    # Search every K-th frame whole and, in between, only near the live tracks (1: every frame whole).
    full_detect_every: int = 3
    hint_age_s: float = 0.5  # a track unseen for longer is not looked for between full detections
    min_face: float = 40.0

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= 64:
            raise ValueError(f"workers must lie in 1..64, got {self.workers}")
        if self.full_detect_every < 1:
            raise ValueError(f"full_detect_every must be >= 1, got {self.full_detect_every}")
        rates = dict(self.camera_rate_hz)
        for name, hz in [("max_rate_hz", self.max_rate_hz), *rates.items()]:
            if hz is not None and not hz > 0:
                raise ValueError(f"recognition rate for {name} must be > 0 Hz, got {hz}")
        object.__setattr__(self, "camera_rate_hz", MappingProxyType(rates))

    def rate_for(self, camera: str) -> float | None:
        return self.camera_rate_hz.get(camera, self.max_rate_hz)

    @property
    def live(self) -> LiveSettings:
        return LiveSettings(self.min_face, self.full_detect_every, self.hint_age_s)


class LocalEngines:
    """Every camera's engine in this process; any worker thread may run any camera. An engine is not
    thread-safe: each has a lock, held while a worker runs a frame through it and while the feed thread
    ends its tracks of a camera gone quiet."""

    def __init__(
        self, sources: SourceFactory, embed: Embed | None, tracker: TrackerConfig, confirmer: Confirmer | None = None
    ) -> None:
        self._sources = sources
        self._embed = embed
        self._tracker = tracker
        self._confirmer = confirmer
        self._lock = threading.Lock()
        self._engines: dict[str, tuple[CameraEngine, threading.Lock]] = {}
        self._decider: Decider | None = None

    def home(self, camera: str) -> int | None:
        return None

    def set_decider(self, decider: Decider) -> None:
        self._decider = decider

    def _engine(self, camera: str) -> tuple[CameraEngine, threading.Lock]:
        with self._lock:
            found = self._engines.get(camera)
            if found is None:
                engine = CameraEngine(camera, self._sources(camera), self._embed, self._tracker, self._confirmer)
                found = self._engines[camera] = (engine, threading.Lock())
            return found

    def process(self, worker: int, camera: str, frame: CameraFrame, settings: LiveSettings) -> FrameOutcome:
        engine, lock = self._engine(camera)
        with lock:
            return engine.process(frame, self._decider, settings)

    def _each(self) -> list[tuple[CameraEngine, threading.Lock]]:
        with self._lock:
            return list(self._engines.values())

    def expire(self, now: float) -> list[TrackRecord]:
        out: list[TrackRecord] = []
        for engine, lock in self._each():
            with lock:
                out += engine.expire(now)
        return out

    def flush(self) -> list[TrackRecord]:
        out: list[TrackRecord] = []
        for engine, lock in self._each():
            with lock:
                out += engine.flush()
        return out

    def live_tracks(self) -> dict[str, int]:
        return {engine.camera: engine.live_tracks for engine, _ in self._each()}

    def close(self) -> None:
        return None


class RecognitionService:
    """Recognises the newest frame of each camera on a small worker pool; see the module docstring."""

    def __init__(
        self,
        feed: FrameFeed,
        host: EngineHost,
        deciders: DeciderFactory | None = None,
        *,
        revision: Callable[[], int] | None = None,
        sighting_sink: SightingSink | None = None,
        config: ServiceConfig | None = None,
    ) -> None:
        self.config = config or ServiceConfig()
        self._feed = feed
        self._host = host
        self._deciders = deciders
        self._revision = revision
        self._sink = sighting_sink
        self.stages = StageTotals()
        self.decider = Decider(None, 0)
        self._seen_revision: int | None = None
        self._cond = threading.Condition()
        self._cameras: dict[str, CameraSlot] = {}
        self._listeners: list[ResultListener] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._serial = 0
        self._listening = False
        self._reloading = threading.Event()
        self.sink_errors = 0
        self.reloads = 0

    # ------------------------------------------------------------------ life

    def start(self) -> RecognitionService:
        """Build the decider (its errors propagate) and start the feed thread and the workers."""
        if self._threads:
            raise RuntimeError("the recognition service is already running")
        if self.config.blas_threads is not None and not limit_blas_threads(self.config.blas_threads):
            log.info("threadpoolctl is not installed: numpy keeps its own BLAS thread count")
        if self.config.gil_switch_s is not None:
            sys.setswitchinterval(min(sys.getswitchinterval(), self.config.gil_switch_s))
        if self._revision is not None:
            self._seen_revision = self._revision()
        if self._deciders is not None:
            self.set_decider(self._deciders())
        if not self._listening:
            self._feed.add_listener(self._on_delivered)
            self._listening = True
        self._stop.clear()
        feed = threading.Thread(target=self._feed_loop, name="recognition-feed", daemon=True)
        workers = [
            threading.Thread(target=self._work_loop, args=(i,), name=f"recognition-{i}", daemon=True)
            for i in range(self.config.workers)
        ]
        self._threads = [feed, *workers]
        for t in self._threads:
            t.start()
        return self

    def stop(self, *, flush: bool = True) -> None:
        """Stop and join the threads (within ``stop_timeout_s``); with ``flush``, live tracks become sightings."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + self.config.stop_timeout_s
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("recognition thread %s did not stop within %.1f s", t.name, self.config.stop_timeout_s)
        self._threads = []
        if flush:
            self._emit_sightings(self._host.flush())
        self._host.close()

    def __enter__(self) -> RecognitionService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    # --------------------------------------------------------------- readers

    def add_listener(self, listener: ResultListener) -> None:
        """Call ``listener(result)`` for every recognised frame, on the worker thread that made it."""
        with self._cond:
            self._listeners = [*self._listeners, listener]

    def latest_results(self) -> dict[str, FrameResult]:
        """The newest result of each camera (for polling at display rate)."""
        with self._cond:
            return {c.name: c.latest for c in self._cameras.values() if c.latest is not None}

    def set_config(self, config: ServiceConfig) -> None:
        """Take new rate caps and live settings now (for cameras already seen too); the worker count and the
        tracker's settings apply from the next start."""
        with self._cond:
            self.config = config
            for cam in self._cameras.values():
                cam.set_rate(config.rate_for(cam.name))
            self._cond.notify_all()

    def set_decider(self, decider: Decider) -> None:
        """Decide with ``decider`` from the next frame on (live tracks are decided again)."""
        self._host.set_decider(decider)
        self.decider = decider

    def stats(self) -> list[RecognitionStats]:
        now = time.monotonic()
        live = self._host.live_tracks()
        with self._cond:
            return [c.stats(now, self.config.stats_window_s, live.get(c.name, 0)) for c in self._cameras.values()]

    # ------------------------------------------------------------ the threads

    def _camera(self, name: str) -> CameraSlot:
        """The camera's slot, created on first sight (call with ``_cond`` held)."""
        cam = self._cameras.get(name)
        if cam is None:
            cam = self._cameras[name] = CameraSlot(name, self.config.rate_for(name), self._host.home(name))
        return cam

    def _on_delivered(self, camera: str) -> None:
        """Feed listener: count deliveries, so skipped frames can be counted."""
        with self._cond:
            self._camera(camera).delivered += 1

    def _feed_loop(self) -> None:
        next_poll = time.monotonic() + self.config.revision_poll_s
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                frames = self._feed.wait_for_frames(self._serial, 0.1)
            except Exception:
                log.exception("recognition: reading frames failed")
                frames = []
            if frames:
                self._take_in(frames)
            elif time.monotonic() - began < 0.01:
                self._stop.wait(0.05)  # the feed answers at once when stopped: do not spin
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + self.config.revision_poll_s
                self._poll_revision()
                self._emit_sightings(self._host.expire(now))

    def _take_in(self, frames: list[CameraFrame]) -> None:
        wall = time.time()
        with self._cond:
            for frame in frames:
                self._serial = max(self._serial, frame.serial)
                if wall - frame.received_at <= self.config.max_frame_age_s:  # else a left-over slot: not news
                    self._camera(frame.camera).pending = frame
            self._cond.notify_all()

    def _poll_revision(self) -> None:
        """Start a reload on its own thread when the gallery changed (a big gallery takes a second to load)."""
        if self._revision is None or self._deciders is None or self._reloading.is_set():
            return
        try:
            revision = self._revision()
        except Exception:
            log.exception("recognition: reading the gallery revision failed")
            return
        if revision == self._seen_revision:
            return
        self._reloading.set()
        threading.Thread(target=self._reload, args=(revision,), name="recognition-decider", daemon=True).start()

    def _reload(self, revision: int) -> None:
        assert self._deciders is not None
        try:
            self.set_decider(self._deciders())
            self.reloads += 1
            log.info("recognition: gallery revision %s loaded", revision)
        except Exception:
            log.exception("recognition: loading gallery revision %s failed; keeping the previous decider", revision)
        finally:
            self._seen_revision = revision  # a failed revision is retried when the gallery changes again
            self._reloading.clear()

    def _next(self, worker: int) -> tuple[CameraSlot, CameraFrame] | None:
        """Wait for this worker's next camera and frame (None when stopping)."""
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                cam, wait = self._pick(worker, now)
                if cam is not None:
                    return cam, cam.take(now)
                self._cond.wait(wait)
        return None

    def _pick(self, worker: int, now: float) -> tuple[CameraSlot | None, float]:
        """The least recently served camera this worker may run, with a frame waiting and its turn due."""
        best: CameraSlot | None = None
        wait = 0.25
        for cam in self._cameras.values():
            if not cam.ready(worker):
                continue
            due = cam.due()
            if due > now:
                wait = min(wait, due - now)
            elif best is None or cam.last_started < best.last_started:
                best = cam
        return best, wait

    def _work_loop(self, worker: int) -> None:
        while (picked := self._next(worker)) is not None:
            cam, frame = picked
            outcome = self._run(worker, cam, frame)
            with self._cond:
                cam.finish(outcome)
                listeners = self._listeners
                self._cond.notify_all()
            if outcome is None:
                continue
            self.stages.add(outcome.times)
            for listener in listeners:
                try:
                    listener(outcome.result)
                except Exception:
                    log.exception("recognition listener failed")
            self._emit_sightings(outcome.ended)

    def _run(self, worker: int, cam: CameraSlot, frame: CameraFrame) -> FrameOutcome | None:
        try:
            return self._host.process(worker, cam.name, frame, self.config.live)
        except FrameDecodeError as exc:
            self._failed(cam, frame, f"bad frame: {exc}", exc_info=False)
        except FrameLost as exc:
            self._failed(cam, frame, f"{type(exc).__name__}: {exc}", exc_info=False)
        except Exception as exc:
            self._failed(cam, frame, f"{type(exc).__name__}: {exc}", exc_info=True)
        return None

    def _failed(self, cam: CameraSlot, frame: CameraFrame, message: str, *, exc_info: bool) -> None:
        log.warning("recognition: %s frame %d skipped: %s", cam.name, frame.frame_id, message, exc_info=exc_info)
        with self._cond:
            cam.failed(message)

    def _emit_sightings(self, ended: Sequence[TrackRecord]) -> None:
        if not ended or self._sink is None:
            return
        try:
            self._sink(ended)
        except Exception:
            self.sink_errors += len(ended)
            log.exception("recognition: %d sighting(s) could not be recorded", len(ended))
