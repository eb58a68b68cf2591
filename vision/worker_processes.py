"""Recognition in worker processes: every core of a bigger PC, not one interpreter's GIL.

:class:`ProcessEngines` is an :class:`vision.service.EngineHost` whose cameras' engines live in N worker
processes, one per recognition worker thread of the service: worker thread ``k`` drives process ``k``, and
each camera lives in one process (its tracker's state is there), chosen when the camera is first seen
(the process with the fewest cameras). A frame crosses as its JPEG bytes (never decoded in the station's
process) in one pickled message over a pipe; the outcome comes back the same way (its faces without
pixels, and the ended tracks with their crops and best frames). The decider is sent to every process when it
changes.

A process that dies (killed, out of memory) fails only the frame it held: the frame is counted as an
error, the process is started again, and the cameras it held start new tracks there. Messages are plain
pickles between this process and the children it started; nothing that came over the network is
unpickled.

Each process runs its engines on one thread with one OpenVINO stream (``FACESTATION_OV_STREAMS=1``), and
loads the face pipeline named by a :class:`PipelineSpec` once at start.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from vision.decision import Decider
from vision.engine import CameraEngine, FrameLost, FrameOutcome
from vision.face_sources import CameraCrops, LiveSettings
from vision.frames import CameraFrame
from vision.tracker import TrackerConfig, TrackRecord
from vision.types import VisionError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0  # a first start may convert the models (OpenVINO's cache is empty)
REPLY_TIMEOUT_S = 60.0


class WorkerDied(FrameLost):
    """A worker process died or stopped answering; the frame it held is lost (counted as an error)."""


@dataclass(frozen=True)
class PipelineSpec:
    """What a worker process loads: the live embedder's name (the detector is the station's default), and the
    photo model that confirms names (None: none)."""

    model: str
    photo: str | None = None


@dataclass(frozen=True)
class _Frame:
    camera: str
    frame: CameraFrame
    settings: LiveSettings


@dataclass(frozen=True)
class _Expire:
    now: float


@dataclass(frozen=True)
class _Flush:
    pass


@dataclass(frozen=True)
class _SetDecider:
    decider: Decider


@dataclass(frozen=True)
class _Failed:
    """A frame's processing raised in the worker: its exception's type name and message."""

    kind: str
    message: str


def _child(conn: Connection, spec: PipelineSpec, tracker: TrackerConfig, level: int) -> None:
    """A worker process: load the pipeline, then answer messages until told to stop (None) or orphaned."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from vision.native_logs import quiet_native_logs

    quiet_native_logs()
    from vision.embedders import load_embedder
    from vision.photo_confirmer import PhotoConfirmer
    from vision.pipeline import FacePipeline

    try:
        pipeline = FacePipeline(embedder=load_embedder(spec.model))
        pipeline.warm_up()
        photo = (
            None if spec.photo is None else FacePipeline(detector=pipeline.detector, embedder=load_embedder(spec.photo))
        )
        if photo is not None:
            photo.embedder.warm_up()
    except Exception as exc:
        conn.send(_Failed(type(exc).__name__, str(exc)))
        return
    conn.send("ready")
    engines: dict[str, CameraEngine] = {}
    decider: Decider | None = None
    confirmer = None if photo is None or spec.photo is None else PhotoConfirmer(lambda: photo, spec.photo)

    def make(camera: str) -> CameraEngine:
        return CameraEngine(camera, CameraCrops(pipeline), pipeline.embed_crops, tracker, confirmer)

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the station went away
        if msg is None:
            return
        if isinstance(msg, _SetDecider):
            decider = msg.decider
            continue
        conn.send(_answer(msg, engines, decider, make))


def _answer(
    msg: object, engines: dict[str, CameraEngine], decider: Decider | None, make: Callable[[str], CameraEngine]
) -> FrameOutcome | list[TrackRecord] | _Failed:
    if isinstance(msg, _Frame):
        engine = engines.get(msg.camera)
        if engine is None:
            engine = engines[msg.camera] = make(msg.camera)
        try:
            outcome: FrameOutcome = engine.process(msg.frame, decider, msg.settings)
            return outcome
        except Exception as exc:
            return _Failed(type(exc).__name__, str(exc))
    if isinstance(msg, _Expire):
        return [r for e in engines.values() for r in e.expire(msg.now)]
    if isinstance(msg, _Flush):
        return [r for e in engines.values() for r in e.flush()]
    return _Failed("ValueError", f"unknown message {type(msg).__name__}")


class _Worker:
    """One worker process and the pipe to it (every exchange under ``lock``: one question, one answer)."""

    def __init__(self, index: int, spec: PipelineSpec, tracker: TrackerConfig) -> None:
        self.index = index
        self._spec = spec
        self._tracker = tracker
        self.lock = threading.Lock()
        self.process: BaseProcess | None = None
        self.conn: Connection | None = None
        self.restarts = 0

    def start(self, decider: Decider | None) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        level = logging.getLogger().getEffectiveLevel()
        env_before = os.environ.get("FACESTATION_OV_STREAMS")
        os.environ["FACESTATION_OV_STREAMS"] = "1"  # read by the child as it starts: one thread, one stream
        try:
            args = (child, self._spec, self._tracker, level)
            process = ctx.Process(target=_child, args=args, name=f"recognition-{self.index}", daemon=True)
            process.start()
        finally:
            if env_before is None:
                os.environ.pop("FACESTATION_OV_STREAMS", None)
            else:
                os.environ["FACESTATION_OV_STREAMS"] = env_before
        child.close()
        self.process, self.conn = process, parent
        first = self._receive(START_TIMEOUT_S)
        if isinstance(first, _Failed):
            self.stop()
            raise VisionError(f"a recognition worker process could not load the models: {first.message}")
        if decider is not None:
            parent.send(_SetDecider(decider))

    def ask(self, msg: object, timeout: float = REPLY_TIMEOUT_S) -> object:
        """Send one message and wait for its answer; WorkerDied when the process is gone or silent."""
        if self.conn is None:
            raise WorkerDied(f"recognition worker {self.index} is not running")
        try:
            self.conn.send(msg)
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(f"recognition worker {self.index} is gone: {exc}") from None
        return self._receive(timeout)

    def tell(self, msg: object) -> None:
        if self.conn is not None:
            try:
                self.conn.send(msg)
            except (BrokenPipeError, OSError):
                log.warning("recognition worker %d is gone", self.index)

    def _receive(self, timeout: float) -> object:
        assert self.conn is not None
        try:
            if not self.conn.poll(timeout):
                raise WorkerDied(f"recognition worker {self.index} did not answer within {timeout:g} s")
            return self.conn.recv()
        except (EOFError, OSError) as exc:
            raise WorkerDied(f"recognition worker {self.index} died ({exc or 'its pipe closed'})") from None

    def stop(self, timeout: float = 5.0) -> None:
        if self.conn is not None:
            self.tell(None)
            self.conn.close()
        if self.process is not None:
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout)
        self.process = self.conn = None


class ProcessEngines:
    """The cameras' engines in worker processes (see the module docstring)."""

    def __init__(self, spec: PipelineSpec, processes: int, tracker: TrackerConfig) -> None:
        if processes < 1:
            raise ValueError(f"worker processes must be >= 1, got {processes}")
        self._workers = [_Worker(i, spec, tracker) for i in range(processes)]
        self._lock = threading.Lock()
        self._homes: dict[str, int] = {}
        self._live: dict[str, int] = {}
        self._decider: Decider | None = None
        self._started = False

    def start(self) -> ProcessEngines:
        """Start every process and wait until each has loaded its models (VisionError if one cannot)."""
        try:
            for worker in self._workers:
                worker.start(self._decider)
        except Exception:
            self.close()
            raise
        self._started = True
        return self

    @property
    def pids(self) -> list[int | None]:
        return [None if w.process is None else w.process.pid for w in self._workers]

    def home(self, camera: str) -> int:
        with self._lock:
            home = self._homes.get(camera)
            if home is None:
                load = [0] * len(self._workers)
                for h in self._homes.values():
                    load[h] += 1
                home = self._homes[camera] = load.index(min(load))
            return home

    def set_decider(self, decider: Decider) -> None:
        self._decider = decider
        for worker in self._workers:
            with worker.lock:
                worker.tell(_SetDecider(decider))

    def process(self, worker: int, camera: str, frame: CameraFrame, settings: LiveSettings) -> FrameOutcome:
        w = self._workers[worker]
        with w.lock:
            try:
                answer = w.ask(_Frame(camera, frame, settings))
            except WorkerDied as exc:
                self._restart(w, exc)
                raise
        if isinstance(answer, _Failed):
            raise RuntimeError(f"{answer.kind} in recognition worker {worker}: {answer.message}")
        assert isinstance(answer, FrameOutcome)
        with self._lock:
            self._live[camera] = answer.live_tracks
        return answer

    def _restart(self, worker: _Worker, why: Exception) -> None:
        log.warning("recognition: %s; starting it again (its cameras' tracks start afresh)", why)
        worker.stop(timeout=1.0)
        worker.restarts += 1
        try:
            worker.start(self._decider)
        except Exception as exc:
            log.error("recognition worker %d could not start again: %s", worker.index, exc)

    def _each(self, msg: object) -> list[TrackRecord]:
        out: list[TrackRecord] = []
        for worker in self._workers:
            with worker.lock:
                try:
                    answer = worker.ask(msg)
                except WorkerDied as exc:
                    log.warning("recognition: %s", exc)
                    continue
            if isinstance(answer, list):
                out.extend(answer)
        return out

    def expire(self, now: float) -> list[TrackRecord]:
        return self._each(_Expire(now)) if self._started else []

    def flush(self) -> list[TrackRecord]:
        return self._each(_Flush()) if self._started else []

    def live_tracks(self) -> dict[str, int]:
        with self._lock:
            return dict(self._live)

    def close(self) -> None:
        self._started = False
        for worker in self._workers:
            with worker.lock:
                worker.stop()
