"""One place that imports TensorFlow for vision/, quietly and with thread pools sized for a small CPU.

TensorFlow reads its thread settings only before its runtime starts, so every vision module that
needs TF gets it through :func:`tensorflow`, which configures it once per process.
"""

from __future__ import annotations

import os
import threading
from types import ModuleType
from typing import Any

_lock = threading.Lock()
_loaded: list[ModuleType] = []


def tensorflow() -> Any:
    """Import TensorFlow once, with logging quiet and intra-op threads = CPU count, inter-op = 1.

    Inter-op parallelism buys nothing for these small sequential graphs on 2 cores, and a single
    inter-op pool keeps several recognition threads from oversubscribing the CPU.
    """
    with _lock:
        if not _loaded:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import tensorflow as tf

            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(os.environ.get("FACESTATION_TF_THREADS", "0")))
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # the runtime already started elsewhere in this process: keep its settings
                pass
            tf.get_logger().setLevel("ERROR")
            _loaded.append(tf)
        return _loaded[0]
