"""One place that imports TensorFlow for vision/, quietly and with thread pools sized for a small CPU.

TensorFlow is an optional extra (``pip install 'facestation[tensorflow]'``): only the VGGFace2
back-end and the TensorFlow runtime kept for comparison (``FACESTATION_RUNTIME=tf``) use it, and
the default path never imports this module's :func:`tensorflow`. Without the extra, choosing either
raises a VisionError whose one line names the extra (vision.runtimes.TF_EXTRA_HINT).

TensorFlow reads its thread settings only before its runtime starts, so every vision module that
needs TF gets it through :func:`tensorflow`, which configures it once per process. Its native log
lines are caught by vision.native_logs, which every entry point calls first.
"""

from __future__ import annotations

import os
import threading
from types import ModuleType
from typing import Any

from vision.runtimes import require_tensorflow
from vision.types import VisionError

_lock = threading.Lock()
_loaded: list[ModuleType] = []


def tensorflow(what: str = "the TensorFlow runtime") -> Any:
    """Import TensorFlow once, with logging quiet and intra-op threads = CPU count, inter-op = 1.

    Inter-op parallelism buys nothing for these small sequential graphs on 2 cores, and a single
    inter-op pool keeps several recognition threads from oversubscribing the CPU. ``what`` names
    the user of TensorFlow in the error when the extra is not installed.
    """
    with _lock:
        if not _loaded:
            require_tensorflow(what)
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            try:
                import tensorflow as tf
            except ImportError as exc:  # installed but broken (a missing shared library)
                raise VisionError(f"{what} needs TensorFlow, which is installed but does not load: {exc}") from exc
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(os.environ.get("FACESTATION_TF_THREADS", "0")))
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # the runtime already started elsewhere in this process: keep its settings
                pass
            tf.get_logger().setLevel("ERROR")
            _loaded.append(tf)
        return _loaded[0]
