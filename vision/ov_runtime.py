"""The one module that imports OpenVINO: telemetry off first, CPU settings sized for a small shared machine.

**Telemetry.** ``import openvino`` (its model converter) initialises Intel's telemetry
(``openvino-telemetry``, Google Analytics) when that package is importable, and would try to send
traffic off the machine. Every place in OpenVINO that uses it is guarded by ``try: import
openvino_telemetry except ImportError: <stub>``, so :func:`openvino` puts ``None`` in
``sys.modules["openvino_telemetry"]`` *before* importing OpenVINO: the import then raises
ImportError and OpenVINO uses its stub, which sends nothing and writes no ``~/intel`` folder.
Nothing else in the project imports ``openvino``; go through this module.

**CPU settings.** A model is compiled for f32 unless its settings say bf16 (on CPUs with
AMX/AVX-512-BF16 OpenVINO would otherwise pick bfloat16 by itself, and MTCNN's outputs would
drift from TensorFlow's); threads are not pinned to cores (other processes share a small
machine); and there are ``streams`` streams of ``threads`` threads each: by default 2 streams
(one per recognition worker, vision/service.py) of 1 thread, so two workers use two cores and
never oversubscribe them. ``FACESTATION_OV_THREADS``, ``FACESTATION_OV_STREAMS`` and
``FACESTATION_OV_PRECISION`` (the embedder's; see vision.embedders.facenet_ov) change the defaults.

**OpenCV's thread pool.** The detector's OpenCV work (the pyramid's resizes, the R/O-Net patches'
remaps, the alignment's warps) runs around every inference, and by default OpenCV hands each call to
its own pool of one thread per core, whose worker then waits for the next call by spinning on
``sched_yield`` (bench/STATION_NOTES.md: about 48,000 yields a second at two cameras, all from that one
thread). The recognition workers are the parallelism here, so when this module makes the process's
OpenVINO core it sets OpenCV to run each call on its caller (``cv2.setNumThreads(1)``; the
``FACESTATION_CV_THREADS`` variable changes it, 0 being OpenCV's "sequential").

**Threads.** A compiled model is shared; :class:`Requests` gives each concurrent caller an infer
request of its own (an infer request is not thread-safe, a compiled model is).

**Exit.** OpenVINO's calls release the GIL. If the process exits while a daemon thread (a
recognition worker, a model loading in the background) is inside one, that thread is killed as it
takes the GIL back, unwinding through C++ frames, and the process aborts with "terminate called
without an active exception" (OpenCV's calls do the same). Every call into OpenVINO here, and the
OpenVINO detector's whole ``detect`` with its OpenCV work, therefore goes through :data:`native`,
and an ``atexit`` hook waits for the calls in flight and parks new ones in Python.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from vision.types import VisionError

log = logging.getLogger(__name__)

TELEMETRY_MODULE = "openvino_telemetry"
THREADS_ENV = "FACESTATION_OV_THREADS"
STREAMS_ENV = "FACESTATION_OV_STREAMS"
PRECISION_ENV = "FACESTATION_OV_PRECISION"
CV_THREADS_ENV = "FACESTATION_CV_THREADS"
PRECISIONS = ("f32", "bf16")
PACKAGE = "openvino"

EXIT_WAIT_S = 60.0  # longest an exiting process waits for OpenVINO calls in flight (a conversion)

_lock = threading.Lock()
_module: list[ModuleType] = []
_core: list[Any] = []


class NativeCalls:
    """Counts the threads inside OpenVINO's native code, so the process never exits under one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._inside = 0
        self._closing = False
        self._depth = threading.local()

    @contextmanager
    def call(self) -> Iterator[None]:
        """Around a call into native code that releases the GIL; re-entrant (a thread inside is not parked)."""
        depth = getattr(self._depth, "n", 0)
        if depth:
            self._depth.n = depth + 1
            try:
                yield
            finally:
                self._depth.n = depth
            return
        with self._cond:
            while self._closing:  # the process is exiting: wait here, in Python, never in native code
                self._cond.wait()
            self._inside += 1
        self._depth.n = 1
        try:
            yield
        finally:
            self._depth.n = 0
            with self._cond:
                self._inside -= 1
                self._cond.notify_all()
                # exiting: stay here rather than run on into other native code (OpenCV) as the process ends
                while self._closing:
                    self._cond.wait()

    @property
    def inside(self) -> int:
        with self._cond:
            return self._inside

    def close(self, timeout: float = EXIT_WAIT_S) -> bool:
        """Let no new call in and wait for those in flight; False if some were still running at ``timeout``."""
        with self._cond:
            self._closing = True
            return self._cond.wait_for(lambda: self._inside == 0, timeout)


native = NativeCalls()


def block_telemetry() -> None:
    """Make ``import openvino_telemetry`` fail in this process (see the module docstring)."""
    sys.modules.setdefault(TELEMETRY_MODULE, None)  # type: ignore[arg-type]


def openvino() -> ModuleType:
    """The ``openvino`` module, imported once with telemetry blocked; VisionError if it cannot load."""
    with _lock:
        if not _module:
            block_telemetry()
            try:
                import openvino as ov

                # OpenVINO's Type.to_dtype() deadlocks when two threads make its first call at once (a
                # one-time init that lets go of the GIL; 6 hangs in 30 tries with two threads, seen as a
                # frozen `main.py scan`): make that first call here, on one thread, under the lock.
                ov.Type.f32.to_dtype()
                atexit.register(native.close)
            except ImportError as exc:
                raise VisionError(f"the OpenVINO runtime needs the '{PACKAGE}' package: {exc}") from exc
            except Exception as exc:  # a broken install (missing shared library) surfaces as other errors
                raise VisionError(f"the '{PACKAGE}' package is installed but does not load: {exc}") from exc
            _module.append(ov)
        return _module[0]


def version() -> str:
    """OpenVINO's runtime version, e.g. ``2026.4.1-22982-...``; part of every cache key."""
    return str(openvino().get_version())


def _env_int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise VisionError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise VisionError(f"{name} must lie in {low}..{high}, not {value}")
    return value


def precision_from_env(default: str) -> str:
    """``$FACESTATION_OV_PRECISION`` ("f32" or "bf16"), else ``default``."""
    raw = os.environ.get(PRECISION_ENV, "").strip().lower()
    if not raw:
        return default
    if raw not in PRECISIONS:
        raise VisionError(f"{PRECISION_ENV} must be one of {', '.join(PRECISIONS)}, not {raw!r}")
    return raw


@dataclass(frozen=True, slots=True)
class CpuSettings:
    """How one compiled model uses the CPU: ``streams`` parallel requests of ``threads`` threads each.

    ``precision`` "bf16" lets OpenVINO compute in bfloat16 where the CPU does so natively (AMX,
    AVX-512 BF16; elsewhere it stays f32): FaceNet ~4× faster at cosine >= 0.9998 to f32 on the
    identities photos. "f32" computes as TensorFlow does.
    """

    threads: int = 1
    streams: int = 2
    precision: str = "f32"

    def __post_init__(self) -> None:
        if not 1 <= self.threads <= 256:
            raise ValueError(f"threads per request must lie in 1..256, not {self.threads}")
        if not 1 <= self.streams <= 64:
            raise ValueError(f"streams must lie in 1..64, not {self.streams}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")

    @classmethod
    def from_env(cls, precision: str = "f32") -> CpuSettings:
        """The defaults, or what ``FACESTATION_OV_THREADS`` / ``FACESTATION_OV_STREAMS`` say."""
        return cls(
            threads=_env_int(THREADS_ENV, 1, 1, 256), streams=_env_int(STREAMS_ENV, 2, 1, 64), precision=precision
        )

    def properties(self) -> dict[str, Any]:
        """The CPU plugin properties for ``compile_model``."""
        ov = openvino()
        bf16 = self.precision == "bf16"
        return {
            "INFERENCE_PRECISION_HINT": ov.Type.bf16 if bf16 else ov.Type.f32,
            "EXECUTION_MODE_HINT": "PERFORMANCE" if bf16 else "ACCURACY",
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": self.streams,
            "INFERENCE_NUM_THREADS": self.threads * self.streams,
            "ENABLE_CPU_PINNING": False,
            "ENABLE_HYPER_THREADING": False,
        }


def constant(values: npt.NDArray[Any]) -> Any:
    """An OpenVINO Constant node's output holding ``values`` (for editing a converted graph)."""
    openvino()
    from openvino import opset13

    return opset13.constant(values).output(0)


def core() -> Any:
    """The process's ``ov.Core`` (one per process: it owns the CPU plugin and its thread pools), set up
    with the default CPU settings; making it also sizes OpenCV's pool (:func:`limit_opencv_threads`)."""
    ov = openvino()
    defaults = CpuSettings.from_env().properties()  # before the lock: it calls openvino() too
    with _lock:
        if not _core:
            limit_opencv_threads()
            with native.call():
                new = ov.Core()
                # also the defaults of any compile that names no settings: no pinning, bounded threads
                new.set_property("CPU", defaults)
            _core.append(new)
        return _core[0]


def limit_opencv_threads() -> int:
    """Run OpenCV's calls on their callers: 1 thread, or ``$FACESTATION_CV_THREADS``; returns the count set.

    OpenCV's own pool only adds a thread that spins between calls (see the module docstring)."""
    import cv2

    threads = _env_int(CV_THREADS_ENV, 1, 0, 256)
    cv2.setNumThreads(threads)
    return threads


def compile_model(model: Any, settings: CpuSettings) -> Any:
    """Compile an ``ov.Model`` for the CPU with ``settings``; VisionError if the plugin refuses it."""
    properties = settings.properties()
    ov_core = core()
    try:
        with native.call():
            return ov_core.compile_model(model, "CPU", properties)
    except RuntimeError as exc:
        raise VisionError(f"OpenVINO cannot compile the model for this CPU: {exc}") from exc


def read_model(xml: str, weights: str) -> Any:
    """An IR's ``ov.Model`` (RuntimeError if OpenVINO cannot read it)."""
    ov_core = core()
    with native.call():
        return ov_core.read_model(xml, weights)


def save_model(model: Any, xml: str) -> None:
    """Write ``model`` as IR, its f32 weights kept bit for bit (no fp16 compression)."""
    ov = openvino()
    with native.call():
        ov.save_model(model, xml, compress_to_fp16=False)


def reshaped(model: Any, shape: Sequence[int]) -> Any:
    """A copy of ``model`` with its (one) input fixed to ``shape``."""
    with native.call():
        copy = model.clone()
        copy.reshape(list(shape))
    return copy


def transposed(model: Any, order: Sequence[int], input_shape: Sequence[int], outputs: Sequence[int] = ()) -> Any:
    """A copy of ``model`` that takes its (one) input as ``input_shape`` with axes in ``order`` and hands the
    outputs numbered in ``outputs`` back transposed the same way (``order`` must be its own inverse, such
    as a swap of two axes). The transposes are graph nodes: OpenVINO folds them into the model's own."""
    ov = openvino()
    from openvino.preprocess import PrePostProcessor

    perm = list(order)
    if sorted(perm) != list(range(len(perm))) or [perm[i] for i in perm] != list(range(len(perm))):
        raise ValueError(f"{perm} is not an axis order that is its own inverse")
    with native.call():
        copy = model.clone()
        copy.reshape({copy.inputs[0]: ov.PartialShape([input_shape[i] for i in perm])})
        steps = PrePostProcessor(copy)
        steps.input().preprocess().convert_layout(perm)
        for index in outputs:
            steps.output(index).postprocess().convert_layout(perm)
        return steps.build()


def convert_model(source: Any, **options: Any) -> Any:
    """``ov.convert_model`` (a path to an ONNX file or a TensorFlow .pb, or a Keras model)."""
    ov = openvino()
    with native.call():
        return ov.convert_model(source, **options)


Outputs = list[npt.NDArray[np.float32]]


class Requests:
    """One compiled model shared by all threads, and a pool of infer requests: one per concurrent caller.

    A caller takes a free request (or creates one), runs it and puts it back, so N threads at once
    use N requests and never share one (an infer request is not thread-safe). Not a
    ``threading.local``: its values die with their thread, and an OpenVINO request destroyed while a
    Qt pool thread's Python state is torn down crashes the process (seen with the enrol dialog's jobs).
    """

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self._lock = threading.Lock()
        self._free: list[Any] = []
        self.created = 0

    def infer(self, inputs: Mapping[int, npt.NDArray[np.float32]] | npt.NDArray[np.float32]) -> Outputs:
        """Run the model on a request of its own; returns copies of the outputs in output order."""
        feed = inputs if isinstance(inputs, Mapping) else {0: inputs}
        # share_inputs: the arrays are read in place (the call is synchronous); outputs are copies
        arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feed.items()}
        with self._lock:
            request = self._free.pop() if self._free else None
        with native.call():
            if request is None:
                request = self.compiled.create_infer_request()
                with self._lock:
                    self.created += 1
            try:
                results = request.infer(arrays, share_inputs=True)
                return [np.asarray(out, dtype=np.float32) for out in results.to_tuple()]
            finally:
                with self._lock:
                    self._free.append(request)


class ShapedModels:
    """A model with free dimensions, compiled for each concrete input shape that keeps recurring.

    OpenVINO runs a model compiled for one exact shape 10-30% faster than a dynamic-shape one
    (0.1-0.7 ms a P-Net level), but compiling one costs 10-20 ms, so it only pays after tens of
    uses. A shape runs on the dynamic model until it has been seen ``compile_after`` times with no
    more than ``window`` other inferences between sightings, then gets a model of its own: a
    camera's pyramid shapes recur every frame and are compiled within a second, while photos of
    assorted sizes (enrolment, a folder of group photos) stay on the dynamic model instead of
    paying for compiles they never earn back. At most ``capacity`` shapes are kept, least recently
    used dropped first; a dropped shape has to earn its compile again.
    """

    def __init__(
        self, model: Any, cpu: CpuSettings, capacity: int = 64, compile_after: int = 8, window: int = 128
    ) -> None:
        self._model = model
        self._cpu = cpu
        self._capacity = capacity
        self._compile_after = compile_after
        self._window = window
        self.dynamic = Requests(compile_model(model, cpu))
        self._lock = threading.Lock()
        self._static: OrderedDict[tuple[int, ...], Requests] = OrderedDict()
        self._seen: dict[tuple[int, ...], tuple[int, int]] = {}  # shape -> (recent sightings, last call)
        self._calls = 0

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shapes compiled so far, least recently used first."""
        with self._lock:
            return tuple(self._static)

    def requests(self, shape: tuple[int, ...]) -> Requests:
        """The compiled model to run an input of ``shape`` on (compiling one once the shape keeps recurring)."""
        with self._lock:
            self._calls += 1
            static = self._static.get(shape)
            if static is not None:
                self._static.move_to_end(shape)
                return static
            count, last = self._seen.get(shape, (0, self._calls))
            seen = count + 1 if self._calls - last <= self._window else 1
            if len(self._seen) >= 16 * self._capacity:  # bounded: forget shapes not seen for a while
                self._seen = {k: v for k, v in self._seen.items() if self._calls - v[1] <= self._window}
            self._seen[shape] = (seen, self._calls)
        if seen < self._compile_after:
            return self.dynamic
        try:
            compiled = Requests(compile_model(reshaped(self._model, shape), self._cpu))
        except (RuntimeError, VisionError) as exc:  # the dynamic model still works: stay on it for this shape
            log.warning("OpenVINO cannot compile for shape %s (%s); it stays on the dynamic-shape model", shape, exc)
            with self._lock:
                self._seen[shape] = (-(10**9), self._calls)
            return self.dynamic
        with self._lock:
            compiled = self._static.setdefault(shape, compiled)
            self._static.move_to_end(shape)
            self._seen.pop(shape, None)
            while len(self._static) > self._capacity:
                self._static.popitem(last=False)
        return compiled

    def infer(self, batch: npt.NDArray[np.float32]) -> Outputs:
        return self.requests(tuple(batch.shape)).infer(batch)
