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

**Threads.** A compiled model is shared; :class:`Requests` gives each calling thread its own infer
request (an infer request is not thread-safe, a compiled model is).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
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
PRECISIONS = ("f32", "bf16")
PACKAGE = "openvino"

_lock = threading.Lock()
_module: list[ModuleType] = []
_core: list[Any] = []


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
    with the default CPU settings."""
    ov = openvino()
    defaults = CpuSettings.from_env().properties()  # before the lock: it calls openvino() too
    with _lock:
        if not _core:
            new = ov.Core()
            # also the defaults of any compile that names no settings: no pinning, bounded threads
            new.set_property("CPU", defaults)
            _core.append(new)
        return _core[0]


def compile_model(model: Any, settings: CpuSettings) -> Any:
    """Compile an ``ov.Model`` for the CPU with ``settings``; VisionError if the plugin refuses it."""
    try:
        return core().compile_model(model, "CPU", settings.properties())
    except RuntimeError as exc:
        raise VisionError(f"OpenVINO cannot compile the model for this CPU: {exc}") from exc


Outputs = list[npt.NDArray[np.float32]]


class Requests:
    """One compiled model shared by all threads, with one infer request per calling thread."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self._local = threading.local()

    def _request(self) -> Any:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self.compiled.create_infer_request()
            self._local.request = request
        return request

    def infer(self, inputs: Mapping[int, npt.NDArray[np.float32]] | npt.NDArray[np.float32]) -> Outputs:
        """Run the model on this thread's request; returns copies of the outputs in output order."""
        request = self._request()
        feed = inputs if isinstance(inputs, Mapping) else {0: inputs}
        # share_inputs: the arrays are read in place (the call is synchronous); outputs are copies
        results = request.infer(
            {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feed.items()}, share_inputs=True
        )
        return [np.asarray(out, dtype=np.float32) for out in results.to_tuple()]


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
            model = self._model.clone()
            model.reshape(list(shape))
            compiled = Requests(compile_model(model, self._cpu))
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
