"""The recognition service: newest frame of each camera in, frozen results and sightings out, no Qt.

One feed thread waits on the receiver for new frames and keeps, per camera, only the newest
frame not yet taken (a newer one replaces it: nothing queues). N worker threads share the
cameras: a free worker takes the camera that was served least recently among those with a
waiting frame, no camera has more than one frame in flight, and a camera with a rate cap
waits for its turn. So when analysis is slower than the cameras, every camera's recognition
rate drops by the same share and latency stays one frame's work, instead of a backlog growing.

Each result goes to the listeners, called on the worker thread that made it (keep them cheap;
the console hands them to its own thread), and is kept per camera for :meth:`latest_results`.
Ended tracks go to the sighting sink, called on a worker thread or on the feed thread (for
tracks that timed out) or in :meth:`stop` (for the tracks still live).

Frames of a camera that detects itself carry its faces; ``analyse_edge`` aligns their crops instead of decode +
``analyse`` (a crop that fails to decode: counted, logged, then ``analyse``). With ``refine``, see ``_detect``.

The feed thread also polls the gallery revision every ``revision_poll_s`` and, when it changed,
loads a fresh matcher on a short-lived thread and swaps it in; a failing reload is logged and
the old matcher kept until the gallery changes again.
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

import numpy as np

from network.frames import Frame, FrameDecodeError
from network.wire.faces import EdgeFaces
from vision.camera_slot import CameraSlot, percentile
from vision.edge import EdgeCropError
from vision.matcher import Match, Matcher, limit_blas_threads, template_decider
from vision.results import FaceResult, FrameRef, FrameResult, RecognitionStats
from vision.stages import StageTimes, spent_local, spent_now
from vision.tracker import Decide, Tracker, TrackerConfig, TrackInput, TrackRecord
from vision.types import Box, Detection, FloatArray, ImageBGR

log = logging.getLogger(__name__)


class QualityLike(Protocol):
    @property
    def score(self) -> float: ...


class ObservationLike(Protocol):
    """What the service reads of one detected face (``vision.pipeline.FaceCandidate`` and
    ``FaceObservation`` fit). ``embedding`` is None until the tracker asks for one."""

    @property
    def detection(self) -> Detection: ...
    @property
    def quality(self) -> QualityLike: ...
    @property
    def crop(self) -> ImageBGR: ...
    @property
    def embedding(self) -> FloatArray | None: ...
    @property
    def model(self) -> str: ...


class FrameSource(Protocol):
    """What the service needs of ``network.udp_receiver.UdpReceiver``."""

    def wait_for_frames(self, after_serial: int, timeout: float) -> list[Frame]: ...
    def add_listener(self, listener: Callable[[Frame], None]) -> None: ...


# Detects, aligns and measures the faces of a decoded frame (no embedding: the tracker asks for those).
Analyse = Callable[[ImageBGR], Sequence[ObservationLike]]
# The faces near the given boxes only (where a live track's face was a moment ago): the cheap step
# between full detections (vision.pipeline ``refine_candidates``).
Refine = Callable[[ImageBGR, Sequence[Box]], Sequence[ObservationLike]]
# Analyses a whole received frame (its JPEG bytes), e.g. on a remote worker (vision.ray_workers); used
# instead of decode + ``analyse`` when given. It may raise FrameDecodeError for a bad frame.
AnalyseFrame = Callable[[Frame], Sequence[ObservationLike]]
# Aligns and measures the faces a camera found itself (their crops), instead of decode + ``analyse``.
AnalyseEdge = Callable[[EdgeFaces], Sequence[ObservationLike]]
# Embeds aligned crops, (N, dim) unit rows: called for the faces the tracker chose (new tracks first).
EmbedCrops = Callable[[list[ImageBGR]], FloatArray]
ResultListener = Callable[[FrameResult], None]
SightingSink = Callable[[Sequence[TrackRecord]], None]


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class ServiceConfig:
    """How many workers, how fast each camera may be recognised, and the service's timings."""

    workers: int = field(default_factory=_default_workers)
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
    # With a ``refine`` step: search every K-th frame whole and, in between, only near the live tracks
    # (a new face is found within K frames; 1: every frame whole).
    full_detect_every: int = 3
    hint_age_s: float = 0.5  # a track unseen for longer is not looked for between full detections

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


class RecognitionService:
    """Recognises the newest frame of each camera on a small worker pool; see the module docstring."""

    def __init__(
        self,
        source: FrameSource,
        analyse: Analyse,
        load_matcher: Callable[[], Matcher | None] | None = None,
        *,
        revision: Callable[[], int] | None = None,
        sighting_sink: SightingSink | None = None,
        config: ServiceConfig | None = None,
        analyse_frame: AnalyseFrame | None = None,
        embed: EmbedCrops | None = None,
        analyse_edge: AnalyseEdge | None = None,
        refine: Refine | None = None,
    ) -> None:
        self.config = config or ServiceConfig()
        self._source = source
        self._analyse_edge = analyse_edge
        wait_analysis = getattr(source, "wait_for_analysis", None) if analyse_edge else None  # edge cameras: with faces
        self._wait: Callable[[int, float], list[Frame]] = wait_analysis or source.wait_for_frames
        self._analyse = analyse
        self._analyse_frame = analyse_frame
        self._embed = embed
        self._refine = refine
        self.stages = StageTimes()
        self._deciders: tuple[Matcher | None, Decide | None] = (None, None)
        self._timed: dict[int, tuple[Decide, Decide]] = {}
        self._load_matcher = load_matcher
        self._revision = revision
        self._sink = sighting_sink
        self._matcher: Matcher | None = None
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
        self.matcher_reloads = 0

    # ------------------------------------------------------------------ life

    def start(self) -> RecognitionService:
        """Load the matcher (its errors propagate) and start the feed thread and the workers."""
        if self._threads:
            raise RuntimeError("the recognition service is already running")
        if self.config.blas_threads is not None and not limit_blas_threads(self.config.blas_threads):
            log.info("threadpoolctl is not installed: numpy keeps its own BLAS thread count")
        if self.config.gil_switch_s is not None:
            sys.setswitchinterval(min(sys.getswitchinterval(), self.config.gil_switch_s))
        if self._revision is not None:
            self._seen_revision = self._revision()
        if self._load_matcher is not None:
            self._matcher = self._load_matcher()
        if not self._listening:
            self._source.add_listener(self._on_delivered)
            self._listening = True
        self._stop.clear()
        feed = threading.Thread(target=self._feed_loop, name="recognition-feed", daemon=True)
        workers = [
            threading.Thread(target=self._work_loop, name=f"recognition-{i}", daemon=True)
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
            for cam in self._camera_list():
                with cam.lock:
                    ended = cam.tracker.flush()
                self._emit_sightings(ended)

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

    @property
    def matcher(self) -> Matcher | None:
        return self._matcher

    def set_config(self, config: ServiceConfig) -> None:
        """Take new rate caps now (for cameras already seen too); worker count and tracker settings
        apply from the next start."""
        with self._cond:
            self.config = config
            for cam in self._cameras.values():
                rate = config.rate_for(cam.name)
                cam.min_interval = 0.0 if rate is None else 1.0 / rate
            self._cond.notify_all()

    def set_matcher(self, matcher: Matcher | None) -> None:
        """Swap the matcher now (workers pick it up with their next frame)."""
        self._matcher = matcher

    def stats(self) -> list[RecognitionStats]:
        now = time.monotonic()
        window = self.config.stats_window_s
        out = []
        with self._cond:
            for cam in self._cameras.values():
                recent = sum(1 for t in cam.done_at if now - t <= window)
                lat = np.asarray(cam.latencies, dtype=np.float64) if cam.latencies else None
                waiting = 1 if cam.pending is not None else 0
                out.append(
                    RecognitionStats(
                        camera=cam.name,
                        fps=round(recent / window, 2),
                        recognised=cam.recognised,
                        dropped=max(0, cam.delivered - cam.taken - waiting),
                        errors=cam.errors,
                        latency_ms_p50=None if lat is None else round(float(np.percentile(lat, 50)), 2),
                        latency_ms_p95=None if lat is None else round(float(np.percentile(lat, 95)), 2),
                        live_tracks=cam.tracker.live,
                        last_error=cam.last_error,
                        first_decision_ms_p50=percentile(cam.first_decisions, 50),
                        first_decision_ms_p95=percentile(cam.first_decisions, 95),
                        embedded=cam.embeds,
                        detect=cam.detect,
                        edge_frames=cam.edge_frames,
                        edge_fallbacks=cam.edge_fallbacks,
                        full_detections=cam.full_detections,
                    )
                )
        return out

    # ------------------------------------------------------------ the threads

    def _camera(self, name: str) -> CameraSlot:
        """The camera's state, created on first sight (call with ``_cond`` held)."""
        cam = self._cameras.get(name)
        if cam is None:
            rate = self.config.rate_for(name)
            cam = CameraSlot(name, Tracker(name, self.config.tracker), 0.0 if rate is None else 1.0 / rate)
            self._cameras[name] = cam
        return cam

    def _camera_list(self) -> list[CameraSlot]:
        with self._cond:
            return list(self._cameras.values())

    def _on_delivered(self, frame: Frame) -> None:
        """Receiver listener (receive thread): count deliveries, so skipped frames can be counted."""
        with self._cond:
            cam = self._camera(frame.camera)
            if cam.detect != "edge":  # an edge camera's frames count when they come with its faces
                cam.delivered += 1

    def _feed_loop(self) -> None:
        next_poll = time.monotonic() + self.config.revision_poll_s
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                frames = self._wait(self._serial, 0.1)
            except Exception:
                log.exception("recognition: reading frames failed")
                frames = []
            if frames:
                wall = time.time()
                with self._cond:
                    for frame in frames:
                        self._serial = max(self._serial, frame.serial)
                        if wall - frame.received_at > self.config.max_frame_age_s:
                            continue  # a slot left over from a camera gone quiet: not news
                        cam = self._camera(frame.camera)
                        if frame.faces is not None:
                            cam.delivered += 1
                        cam.pending = frame
                    self._cond.notify_all()
            elif time.monotonic() - began < 0.01:
                self._stop.wait(0.05)  # the source answers at once when stopped: do not spin
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + self.config.revision_poll_s
                self._poll_revision()
                for cam in self._camera_list():
                    with cam.lock:
                        ended = cam.tracker.expire(now)
                    self._emit_sightings(ended)

    def _poll_revision(self) -> None:
        """Start a reload on its own thread when the gallery changed (a big gallery takes a second to load)."""
        if self._revision is None or self._load_matcher is None or self._reloading.is_set():
            return
        try:
            revision = self._revision()
        except Exception:
            log.exception("recognition: reading the gallery revision failed")
            return
        if revision == self._seen_revision:
            return
        self._reloading.set()
        threading.Thread(target=self._reload, args=(revision,), name="recognition-matcher", daemon=True).start()

    def _reload(self, revision: int) -> None:
        assert self._load_matcher is not None
        try:
            self._matcher = self._load_matcher()
            self.matcher_reloads += 1
            log.info("recognition: gallery revision %s loaded", revision)
        except Exception:
            log.exception("recognition: loading gallery revision %s failed; keeping the previous matcher", revision)
        finally:
            self._seen_revision = revision  # a failed revision is retried when the gallery changes again
            self._reloading.clear()

    def _pick(self, now: float) -> tuple[CameraSlot | None, float]:
        """The least recently served camera with a frame waiting and its turn due (``_cond`` held)."""
        best: CameraSlot | None = None
        wait = 0.25
        for cam in self._cameras.values():
            if cam.pending is None or cam.busy:
                continue
            due = cam.rate_due - cam.min_interval  # one interval of slack: a frame a little early still goes
            if due > now:
                wait = min(wait, due - now)
            elif best is None or cam.last_started < best.last_started:
                best = cam
        return best, wait

    def _work_loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stop.is_set():
                        return
                    now = time.monotonic()
                    cam, wait = self._pick(now)
                    if cam is not None:
                        break
                    self._cond.wait(wait)
                frame, cam.pending = cam.pending, None
                cam.busy = True
                cam.last_started = now
                cam.rate_due = max(cam.rate_due, now) + cam.min_interval
                cam.taken += 1
            assert frame is not None
            result: FrameResult | None = None
            ended: list[TrackRecord] = []
            try:
                result, ended = self._recognise(cam, frame)
            except FrameDecodeError as exc:
                self._failed(cam, frame, f"bad frame: {exc}", exc_info=False)
            except Exception as exc:
                self._failed(cam, frame, f"{type(exc).__name__}: {exc}", exc_info=True)
            finally:
                with self._cond:
                    cam.busy = False
                    if result is not None:
                        cam.latest = result
                        cam.recognised += 1
                        cam.done_at.append(time.monotonic())
                        cam.latencies.append(result.latency_ms)
                    listeners = self._listeners
                    self._cond.notify_all()
            if result is not None:
                for listener in listeners:
                    try:
                        listener(result)
                    except Exception:
                        log.exception("recognition listener failed")
            self._emit_sightings(ended)

    def _failed(self, cam: CameraSlot, frame: Frame, message: str, *, exc_info: bool) -> None:
        log.warning("recognition: %s frame %d skipped: %s", cam.name, frame.frame_id, message, exc_info=exc_info)
        with self._cond:
            cam.errors += 1
            cam.last_error = message

    def _decider(self) -> Decide | None:
        """``decide`` for the current matcher, the same callable while the matcher stays (so tracks
        decide again only when it changes)."""
        matcher = self._matcher
        cached, decide = self._deciders
        if matcher is cached:
            return decide
        decide = template_decider(matcher)
        self._deciders = (matcher, decide)
        return decide

    def _timed_decide(self, decide: Decide | None, spent: list[float]) -> Decide | None:
        """``decide`` timed as the match stage. The wrapper is made once per matcher, so that the
        tracker still sees the same callable (and decides again only when the matcher changes)."""
        if decide is None:
            return None
        wrapped = self._timed.get(id(decide))
        if wrapped is None or wrapped[0] is not decide:
            stages, inner = self.stages, decide

            def timed(template: FloatArray) -> Match:
                began = time.thread_time()
                try:
                    return inner(template)
                finally:
                    took = time.thread_time() - began
                    stages.add("match", took)
                    spent_now().append(took)

            self._timed = {id(decide): (decide, timed)}
            wrapped = (decide, timed)
        spent_local.spent = spent
        return wrapped[1]

    def _embedder(self, cam: CameraSlot, spent: list[float]) -> Callable[[list[ImageBGR]], FloatArray] | None:
        """The embed step for one frame: timed as its own stage, its CPU time also added to ``spent``."""
        if self._embed is None:
            return None
        embed = self._embed

        def timed(crops: list[ImageBGR]) -> FloatArray:
            began = time.thread_time()
            rows = embed(crops)
            took = time.thread_time() - began
            self.stages.add("embed", took, len(crops))
            spent.append(took)
            cam.embeds += len(crops)
            return rows

        return timed

    def _edge_faces(self, cam: CameraSlot, frame: Frame) -> list[ObservationLike] | None:
        """The camera's own faces of ``frame`` aligned, or None: none sent, or a crop that fails (counted)."""
        try:
            return None if frame.faces is None or not self._analyse_edge else list(self._analyse_edge(frame.faces))
        except EdgeCropError as exc:
            log.warning("recognition: %s frame %d: %s; the station detects this frame", cam.name, frame.frame_id, exc)
            with self._cond:
                cam.edge_fallbacks += 1
            return None

    def _detect(self, cam: CameraSlot, image: ImageBGR) -> list[ObservationLike]:
        """The frame's faces: a full detection every ``full_detect_every``-th frame (and on a camera's first
        station-detected frame), else O-Net near the live tracks' last boxes only (none: no faces)."""
        every = self.config.full_detect_every
        if self._refine is None or every <= 1 or cam.since_full is None or cam.since_full + 1 >= every:
            faces = list(self._analyse(image))
            cam.since_full = 0
            cam.full_detections += 1
            return faces
        with cam.lock:
            hints = cam.tracker.recent_boxes(time.monotonic(), self.config.hint_age_s)
        cam.since_full += 1
        return list(self._refine(image, hints)) if hints else []

    def _recognise(self, cam: CameraSlot, frame: Frame) -> tuple[FrameResult, list[TrackRecord]]:
        height, width = (0, 0)
        edge = self._edge_faces(cam, frame)
        if edge is not None:
            faces = edge
            assert frame.faces is not None
            width, height = frame.faces.stream_size  # the stream frame is not decoded at all
        elif self._analyse_frame is not None:
            faces = list(self._analyse_frame(frame))
        else:
            with self.stages.timing("decode"):
                image = frame.image
            faces = self._detect(cam, image)
            height, width = image.shape[:2]
        if edge is not None:
            cam.since_full = None  # back on station detection, its first frame is searched whole
        with self._cond:
            cam.detect = "station" if edge is None else "edge"
            cam.edge_frames += edge is not None
        matcher = self._matcher
        embed_spent: list[float] = []
        decide = self._timed_decide(self._decider(), embed_spent)
        embed = self._embedder(cam, embed_spent)
        ref = FrameRef(frame.jpeg, width, height)
        inputs = [
            TrackInput(
                box=f.detection.box,
                quality=float(f.quality.score),
                crop=f.crop,
                embedding=f.embedding,
                model=f.model,
                frame=ref,
            )
            for f in faces
        ]
        began = time.thread_time()
        with cam.lock:
            update = cam.tracker.update(inputs, at=frame.captured_at, now=time.monotonic(), embed=embed, decide=decide)
        self.stages.add("track", max(0.0, time.thread_time() - began - sum(embed_spent)))
        done = time.time()
        results = tuple(
            FaceResult(
                box=f.detection.box,
                landmarks=f.detection.landmarks,
                track_id=view.track_id,
                person_id=view.person_id,
                person=view.person,
                score=view.score,
                watchlist=matcher is not None and matcher.on_watchlist(view.person_id),
                confidence=float(f.detection.confidence),
                quality=float(f.quality.score),
                decided=view.decided,
                embedded=view.embedded,
            )
            for f, view in zip(faces, update.views, strict=True)
        )
        for view in update.views:
            if view.new and view.decided:
                cam.first_decisions.append((done - frame.received_at) * 1000.0)
        result = FrameResult(
            camera=frame.camera,
            frame_id=frame.frame_id,
            captured_at=frame.captured_at,
            faces=results,
            latency_ms=(done - frame.captured_at) * 1000.0,
            recognised_at=done,
        )
        return result, list(update.ended)

    def _emit_sightings(self, ended: Sequence[TrackRecord]) -> None:
        if not ended or self._sink is None:
            return
        try:
            self._sink(ended)
        except Exception:
            self.sink_errors += len(ended)
            log.exception("recognition: %d sighting(s) could not be recorded", len(ended))
