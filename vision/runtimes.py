"""Which inference runtime runs the detector and the FaceNet embedder: OpenVINO, or TensorFlow.

OpenVINO is the default (the ``station`` extra installs it; the same weights, outputs checked
against TensorFlow's in tests/test_vision_openvino.py, 1.2-4× faster on a CPU). TensorFlow is an
optional extra (``pip install 'facestation[tensorflow]'``), kept for comparison and for the
VGGFace2 back-end; nothing on the default path imports it. ``FACESTATION_RUNTIME=tf`` or
``=openvino`` (or a ``runtime=`` argument, which wins) chooses one. A runtime that was asked for by
name and cannot load raises VisionError (for TensorFlow without its extra, one line naming the
extra); the default falls back to TensorFlow, where that extra is installed, with one warning line
that says why (once per reason per process, so a missing package is one line, not one per model).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from typing import Literal

from vision.types import VisionError

log = logging.getLogger(__name__)

RUNTIME_ENV = "FACESTATION_RUNTIME"
Runtime = Literal["openvino", "tf"]
RUNTIMES: tuple[Runtime, ...] = ("openvino", "tf")
TF_EXTRA = "tensorflow"
TF_EXTRA_HINT = f"pip install 'facestation[{TF_EXTRA}]'"

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


def tensorflow_installed() -> bool:
    """Whether the TensorFlow extra is installed (looks the package up; imports nothing)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # blocked (sys.modules entry None, a refusing finder) or a broken install
        return False


def require_tensorflow(what: str) -> None:
    """VisionError naming the extra unless TensorFlow is installed; ``what`` is the thing that needs it."""
    if not tensorflow_installed():
        raise VisionError(f"{what} needs the '{TF_EXTRA}' extra, which is not installed: {TF_EXTRA_HINT}")


def may_fall_back(runtime: Runtime | None) -> bool:
    """Whether a failed OpenVINO load may fall back to TensorFlow: only by default, and only with the extra."""
    return runtime is None and tensorflow_installed()


def warn_fallback(what: str, reason: str) -> None:
    """One log line per distinct reason: the default runtime (OpenVINO) could not load, TF is used instead."""
    with _lock:
        if reason in _warned:
            return
        _warned.add(reason)
    log.warning(
        "OpenVINO unavailable (%s); the %s, and any model that fails the same way, use TensorFlow", reason, what
    )
