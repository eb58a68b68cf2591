"""Recognition on a Ray cluster: a pool of actors that each load the face pipeline once.

The station keeps receiving, matching, tracking and the gallery; only the expensive part (JPEG
decode, MTCNN, alignment, FaceNet) moves to the actors. The station's engines take their faces from
:meth:`RayRecognitionPool.analyse_jpeg` (``vision.face_sources.RemoteAnalysis``) on the recognition
service's worker threads instead of decoding and analysing locally, so its guarantees hold across
the cluster: a camera never has more than one frame in flight, and the number of frames travelling
to or sitting at the actors is bounded by the station's worker threads (size them to actors ×
``max_batch``). Nothing queues at the actors.

One pump thread per actor takes the frames waiting at the station (up to ``max_batch``), sends
their JPEG bytes in one ``analyse_batch`` call and hands the frozen :class:`FaceObservation` results
back. Batches form by themselves: while an actor works, the other station threads' frames wait, and
its pump takes them together next time, so a loaded actor gets several frames per round trip (the
round trip between machines is then paid once per batch) while an idle one gets each frame at once
(``gather_s`` can make a pump wait for company, which only adds latency on one machine).
An actor that dies (its process killed, its node gone) fails only the frames it held, which are
dropped and counted as errors, never retried; its pump starts a fresh actor while the other pumps
keep serving every camera. A frame that no live actor takes within ``take_timeout_s`` is dropped
too, so a station whose cluster is gone sheds frames instead of building a backlog.

Ray is imported only when a pool starts: the local path and ``network/`` never import it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from vision.engine import FrameLost
from vision.frames import FrameDecodeError, decode_jpeg
from vision.pipeline import FaceObservation, FacePipeline
from vision.types import ImageBGR

log = logging.getLogger(__name__)

RAY_EXTRA_HINT = "install the ray extra: pip install '.[ray]'"


class RayUnavailable(RuntimeError):
    """Ray is not installed, the cluster cannot be reached, or no actor could be started (message shown as is)."""


class WorkerLost(FrameLost):
    """The actor holding a frame died or timed out; the frame is dropped (counted as an error, not retried)."""


class NoLiveWorker(FrameLost):
    """No live actor took a frame within ``take_timeout_s``; the frame is dropped."""


@dataclass(frozen=True)
class RayPoolConfig:
    """Where the cluster is and how the pool uses it.

    ``address`` is a running cluster's ``HOST:PORT`` (or anything ``ray.init`` takes); None starts a
    private local Ray with ``local_cpus`` CPUs for this process only (benchmarks).
    """

    address: str | None
    actors: int = 2
    cpus_per_actor: float = 1.0
    max_batch: int = 2
    gather_s: float = 0.0  # batches form by themselves under load (see the module docstring)
    take_timeout_s: float = 2.0
    call_timeout_s: float = 30.0
    start_timeout_s: float = 180.0
    connect_timeout_s: float = 5.0
    model: str | None = None  # embedder name; None for the pipeline's default
    local_cpus: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.actors <= 1024:
            raise ValueError(f"the number of Ray workers must lie in 1..1024, got {self.actors}")
        if not 1 <= self.max_batch <= 64:
            raise ValueError(f"max_batch must lie in 1..64, got {self.max_batch}")
        if not self.cpus_per_actor > 0:
            raise ValueError(f"cpus_per_actor must be > 0, got {self.cpus_per_actor}")

    @property
    def station_workers(self) -> int:
        """Station worker threads that keep every actor fed with one batch and no more."""
        return min(64, self.actors * self.max_batch)


@dataclass(frozen=True)
class AnalysedFrame:
    """One frame's answer from an actor: its faces and its (width, height), or why it failed (``error_kind``
    "decode" or "analysis")."""

    observations: tuple[FaceObservation, ...] = ()
    size: tuple[int, int] = (0, 0)
    error_kind: str = ""
    error: str = ""


@dataclass(frozen=True)
class RayPoolStats:
    """The pool's figures: live actors, replacements, batches and frames sent, frames lost or dropped."""

    actors: int
    live: int
    replaced: int
    batches: int
    frames: int
    lost: int
    not_taken: int
    served: tuple[int, ...] = ()  # frames sent to each slot's current actor (0 after a replacement)
    last_error: str = ""


def analyse_jpegs(pipeline: FacePipeline, jpegs: Sequence[bytes]) -> list[AnalysedFrame]:
    """Decode and analyse each frame; one bad frame fails only itself (runs inside the actor)."""
    out: list[AnalysedFrame] = []
    for data in jpegs:
        try:
            image = decode_jpeg(data)
        except FrameDecodeError as exc:
            out.append(AnalysedFrame(error_kind="decode", error=str(exc)))
            continue
        size = (int(image.shape[1]), int(image.shape[0]))
        try:
            out.append(AnalysedFrame(observations=tuple(pipeline.observe(image)), size=size))
        except Exception as exc:
            log.exception("ray worker: analysis failed")
            out.append(AnalysedFrame(error_kind="analysis", error=f"{type(exc).__name__}: {exc}"))
    return out


class RecognitionWorker:
    """The actor's body (``ray.remote`` is applied when a pool starts): one pipeline, loaded once."""

    def __init__(self, model: str | None, threads: int) -> None:
        os.environ.setdefault("FACESTATION_TF_THREADS", str(threads))  # read when TensorFlow first starts
        from vision.embedders import load_embedder
        from vision.native_logs import quiet_native_logs

        quiet_native_logs()  # the actor's process imports TensorFlow afresh

        self.pipeline = FacePipeline(embedder=load_embedder(model) if model else None)
        self.pipeline.warm_up()

    def ready(self) -> tuple[int, str]:
        """The actor's process id and model name (answered once the models are loaded)."""
        return os.getpid(), self.pipeline.model

    def analyse_batch(self, jpegs: list[bytes]) -> list[AnalysedFrame]:
        return analyse_jpegs(self.pipeline, jpegs)

    def memory_bytes(self) -> tuple[int, int]:
        """Resident and proportional-set memory of the actor's process (PSS shares the libraries' pages
        among the processes mapping them: what one more actor on a node costs)."""
        with open("/proc/self/statm") as fh:
            rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        pss = 0
        try:
            with open("/proc/self/smaps_rollup") as fh:
                pss = next((int(line.split()[1]) * 1024 for line in fh if line.startswith("Pss:")), 0)
        except OSError:
            pass
        return rss, pss


def _plain_copy(obs: FaceObservation) -> FaceObservation:
    """Own, writable arrays: Ray hands numpy arrays back as read-only views of its transfer buffers."""
    return replace(obs, crop=np.array(obs.crop, copy=True), embedding=np.array(obs.embedding, copy=True))


@dataclass(eq=False)
class _Request:
    jpeg: bytes
    done: threading.Event = field(default_factory=threading.Event)
    taken: bool = False
    result: AnalysedFrame | None = None
    error: Exception | None = None


class _Slot:
    """One actor and the pump thread that feeds it."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.actor: Any = None
        self.pid: int | None = None
        self.served = 0
        self.thread: threading.Thread | None = None


def _import_ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"Ray is not installed: {RAY_EXTRA_HINT}") from None
    return ray


def _ray_messages_to_stderr(ray: Any) -> None:
    """Ray's driver prints cluster messages ("A worker died ...") on stdout, where headless writes its
    JSON lines: send them to stderr. This patches a Ray internal, so it is skipped if that moved."""
    worker: Any = getattr(getattr(ray, "_private", None), "worker", None)
    original = getattr(worker, "print_to_stdstream", None)
    if worker is None or original is None or getattr(original, "_facestation", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        original({**data, "is_err": True}, ignore_prefix)

    to_stderr._facestation = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr


def _check_reachable(address: str, timeout: float) -> None:
    """Fail in seconds, with one line, when a HOST:PORT address has nothing listening."""
    m = re.fullmatch(r"\[?([^\]]+?)\]?:(\d{1,5})", address)
    if m is None:
        return  # "auto", "ray://...": left to ray.init
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout).close()
    except OSError as exc:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


class RayRecognitionPool:
    """Actors on a Ray cluster that analyse frames for the station; see the module docstring."""

    def __init__(self, config: RayPoolConfig) -> None:
        self.config = config
        self._ray: Any = None
        self._actor_cls: Any = None
        self._owns_ray = False
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._slots = [_Slot(i) for i in range(config.actors)]
        self._stop = threading.Event()
        self.model = ""
        self.replaced = 0
        self.batches = 0
        self.frames = 0
        self.lost = 0
        self.not_taken = 0
        self.last_error = ""

    # ------------------------------------------------------------------ life

    def start(self) -> RayRecognitionPool:
        """Connect, start every actor and wait until each has loaded its models (errors: :class:`RayUnavailable`)."""
        ray = self._ray = _import_ray()
        cfg = self.config
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
            if cfg.address is None:
                kwargs.update(num_cpus=cfg.local_cpus, include_dashboard=False)
            else:
                _check_reachable(cfg.address, cfg.connect_timeout_s)
                kwargs["address"] = cfg.address
            try:
                ray.init(**kwargs)
            except Exception as exc:
                where = cfg.address or "a local Ray"
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                hint = "; if the cluster uses token authentication, set its RAY_AUTH_MODE and RAY_AUTH_TOKEN here too"
                raise RayUnavailable(f"cannot connect to the Ray cluster at {where}: {reason}{hint}") from None
            self._owns_ray = True
        _ray_messages_to_stderr(ray)
        self._actor_cls = ray.remote(max_restarts=0, max_task_retries=0)(RecognitionWorker)
        handles = [self._new_actor() for _ in self._slots]
        try:
            answers = ray.get([h.ready.remote() for h in handles], timeout=cfg.start_timeout_s)
        except Exception as exc:
            for h in handles:
                self._kill(h)
            self._shutdown_ray()
            raise RayUnavailable(f"Ray workers did not start: {type(exc).__name__}: {exc}".splitlines()[0]) from None
        for slot, handle, (pid, model) in zip(self._slots, handles, answers, strict=True):
            slot.actor, slot.pid = handle, pid
            self.model = model
        self._stop.clear()
        for slot in self._slots:
            slot.thread = threading.Thread(target=self._pump, args=(slot,), name=f"ray-pump-{slot.index}", daemon=True)
            slot.thread.start()
        log.info("ray: %d recognition worker(s) ready (%s)", len(self._slots), self.model)
        return self

    def stop(self) -> None:
        """Stop the pumps, fail what still waits, kill the actors and leave the cluster."""
        self._stop.set()
        with self._cond:
            waiting, self._pending = self._pending, []
            self._cond.notify_all()
        for req in waiting:
            req.error = NoLiveWorker("the Ray pool stopped")
            req.done.set()
        for slot in self._slots:
            if slot.thread is not None:
                slot.thread.join(timeout=self.config.call_timeout_s + 5.0)
                slot.thread = None
            self._kill(slot.actor)
            slot.actor, slot.pid = None, None
        self._shutdown_ray()

    def __enter__(self) -> RayRecognitionPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --------------------------------------------------------------- station

    def observe(self, image: ImageBGR) -> list[FaceObservation]:
        """``FacePipeline.observe`` on the cluster (the image travels as a quality-95 JPEG), e.g. to enrol."""
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise ValueError("the image could not be encoded as JPEG")
        return self.analyse_jpeg(data.tobytes())[0]

    def analyse_jpeg(self, jpeg: bytes) -> tuple[list[FaceObservation], tuple[int, int]]:
        """The faces in one JPEG image and its (width, height), analysed by whichever actor takes it first."""
        req = _Request(jpeg)
        with self._cond:
            if self._stop.is_set():
                raise NoLiveWorker("the Ray pool is stopped")
            self._pending.append(req)
            self._cond.notify_all()
            deadline = time.monotonic() + self.config.take_timeout_s
            while not req.taken and not req.done.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    self._pending.remove(req)
                    self.not_taken += 1
                    raise NoLiveWorker(f"no live Ray worker took the frame within {self.config.take_timeout_s:g} s")
                self._cond.wait(left)
        if not req.done.wait(self.config.call_timeout_s + 5.0):
            raise WorkerLost("the Ray call never answered")
        if req.error is not None:
            raise req.error
        assert req.result is not None
        if req.result.error_kind == "decode":
            raise FrameDecodeError(req.result.error)
        if req.result.error_kind:
            raise RuntimeError(f"on the Ray worker: {req.result.error}")
        return [_plain_copy(o) for o in req.result.observations], req.result.size

    # ---------------------------------------------------------------- readers

    def stats(self) -> RayPoolStats:
        return RayPoolStats(
            actors=len(self._slots),
            live=sum(1 for s in self._slots if s.actor is not None),
            replaced=self.replaced,
            batches=self.batches,
            frames=self.frames,
            lost=self.lost,
            not_taken=self.not_taken,
            served=tuple(s.served for s in self._slots),
            last_error=self.last_error,
        )

    def actor_pids(self) -> list[int | None]:
        """Each slot's live actor process id (None while it is being replaced)."""
        return [s.pid if s.actor is not None else None for s in self._slots]

    def actor_memory_bytes(self) -> list[tuple[int, int]]:
        """Resident and proportional-set memory of each live actor's process."""
        live = [s.actor for s in self._slots if s.actor is not None]
        return [(int(r), int(p)) for r, p in self._ray.get([a.memory_bytes.remote() for a in live], timeout=30)]

    # ------------------------------------------------------------------ pumps

    def _new_actor(self) -> Any:
        cfg = self.config
        threads = max(1, round(cfg.cpus_per_actor))
        return self._actor_cls.options(num_cpus=cfg.cpus_per_actor, scheduling_strategy="SPREAD").remote(
            cfg.model, threads
        )

    def _kill(self, actor: Any) -> None:
        if actor is None or self._ray is None:
            return
        try:
            self._ray.kill(actor, no_restart=True)
        except Exception:
            log.debug("ray: killing an actor failed", exc_info=True)

    def _shutdown_ray(self) -> None:
        if self._owns_ray and self._ray is not None:
            self._ray.shutdown()
            self._owns_ray = False

    def _take(self, slot: _Slot) -> list[_Request]:
        """Up to ``max_batch`` waiting requests, gathering for ``gather_s`` after the first; [] when stopping."""
        with self._cond:
            while not self._pending:
                if self._stop.is_set():
                    return []
                self._cond.wait(0.2)
            if len(self._pending) < self.config.max_batch and self.config.gather_s > 0:
                deadline = time.monotonic() + self.config.gather_s
                while len(self._pending) < self.config.max_batch and not self._stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            batch, self._pending = self._pending[: self.config.max_batch], self._pending[self.config.max_batch :]
            for req in batch:
                req.taken = True
            self.batches += 1
            self.frames += len(batch)
            slot.served += len(batch)
            self._cond.notify_all()
            return batch

    def _pump(self, slot: _Slot) -> None:
        ray = self._ray
        lost_types = (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError)
        while not self._stop.is_set():
            if slot.actor is None and not self._replace(slot):
                self._stop.wait(2.0)
                continue
            batch = self._take(slot)
            if not batch:
                continue
            try:
                ref = slot.actor.analyse_batch.remote([r.jpeg for r in batch])
                answers = ray.get(ref, timeout=self.config.call_timeout_s)
                if len(answers) != len(batch):
                    raise RuntimeError(f"the worker answered {len(answers)} frames for {len(batch)}")
            except lost_types as exc:
                message = f"Ray worker {slot.index} (pid {slot.pid}) lost: {type(exc).__name__}"
                log.warning("ray: %s; %d frame(s) dropped, starting a new worker", message, len(batch))
                with self._cond:
                    self.lost += len(batch)
                    self.last_error = message
                self._fail(batch, WorkerLost(message))
                self._kill(slot.actor)
                slot.actor, slot.pid = None, None
                continue
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._fail(batch, exc)
                continue
            for req, answer in zip(batch, answers, strict=True):
                req.result = answer
                req.done.set()

    def _fail(self, batch: Sequence[_Request], error: Exception) -> None:
        for req in batch:
            req.error = error
            req.done.set()

    def _replace(self, slot: _Slot) -> bool:
        """Start a fresh actor in the slot and wait for its models; False if it did not come up."""
        handle = self._new_actor()
        try:
            ref = handle.ready.remote()
            deadline = time.monotonic() + self.config.start_timeout_s
            while not self._ray.wait([ref], timeout=0.5)[0]:
                if self._stop.is_set() or time.monotonic() > deadline:
                    raise TimeoutError("stopped" if self._stop.is_set() else "its models did not load in time")
            pid, _ = self._ray.get(ref)
        except Exception as exc:
            log.warning("ray: a replacement worker did not start: %s", f"{type(exc).__name__}: {exc}".splitlines()[0])
            self._kill(handle)
            return False
        slot.actor, slot.pid, slot.served = handle, pid, 0
        self.replaced += 1
        log.info("ray: worker %d replaced (pid %d)", slot.index, pid)
        return True
