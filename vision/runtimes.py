"""Which inference runtime runs the detector and the FaceNet embedder: OpenVINO, or TensorFlow.

OpenVINO is the default wherever it loads (same weights, outputs checked against TensorFlow's in
tests/test_vision_openvino.py, 1.2-4× faster on a CPU). ``FACESTATION_RUNTIME=tf`` or
``=openvino`` (or a ``runtime=`` argument, which wins) chooses one. A runtime that was asked for
by name and cannot load raises VisionError; the default falls back to TensorFlow with one warning
line that says why (once per reason per process, so a missing package is one line, not one per model).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Literal

from vision.types import VisionError

log = logging.getLogger(__name__)

RUNTIME_ENV = "FACESTATION_RUNTIME"
Runtime = Literal["openvino", "tf"]
RUNTIMES: tuple[Runtime, ...] = ("openvino", "tf")

_lock = threading.Lock()
_warned: set[str] = set()


def requested(runtime: str | None = None) -> Runtime | None:
    """The runtime named by ``runtime`` or else ``$FACESTATION_RUNTIME``; None when neither names one."""
    name = runtime if runtime is not None else os.environ.get(RUNTIME_ENV, "")
    name = name.strip().lower()
    if not name or name == "auto":
        return None
    if name in ("openvino", "ov"):
        return "openvino"
    if name in ("tf", "tensorflow"):
        return "tf"
    source = "runtime" if runtime is not None else RUNTIME_ENV
    raise VisionError(f"{source} must be 'openvino' or 'tf', not {name!r}")


def warn_fallback(what: str, reason: str) -> None:
    """One log line per distinct reason: the default runtime (OpenVINO) could not load, TF is used instead."""
    with _lock:
        if reason in _warned:
            return
        _warned.add(reason)
    log.warning(
        "OpenVINO unavailable (%s); the %s, and any model that fails the same way, use TensorFlow", reason, what
    )
