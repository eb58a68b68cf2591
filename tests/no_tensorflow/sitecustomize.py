"""TensorFlow made unimportable in every Python process started with this folder on PYTHONPATH.

``make test`` runs the default test run this way (and tests/test_lean.py its headless station), so
the station, its subprocesses and the Ray workers they start show that they work with no
TensorFlow at all. ``import tensorflow`` (and ``keras``, ``tf_keras`` and the ``mtcnn`` package,
which import it) raises ImportError and ``importlib.util.find_spec`` answers None for them, as on
a machine where the ``tensorflow`` extra was never installed; ``$FACESTATION_BLOCK_ALSO``
(comma-separated) refuses more top-level modules (a test without OpenVINO). Each attempt is noted
with the file and line that made it; if ``$FACESTATION_TF_REPORT`` names a folder, every such process
writes ``<pid>.json`` there at exit: its command line, the attempts, and which of those modules got
into ``sys.modules`` anyway.
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

BLOCKED = frozenset({"tensorflow", "keras", "tf_keras", "mtcnn"}) | frozenset(
    name for name in os.environ.get("FACESTATION_BLOCK_ALSO", "").split(",") if name.strip()
)
REPORT_ENV = "FACESTATION_TF_REPORT"
attempts: list[dict[str, str]] = []


class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] not in BLOCKED:
            return None
        frames = [f for f in traceback.extract_stack()[:-1] if "importlib" not in f.filename]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        attempts.append({"module": fullname, "from": where})
        raise ImportError(f"No module named {fullname!r} (blocked by tests/no_tensorflow)", name=fullname)


def _report() -> None:
    folder = os.environ.get(REPORT_ENV, "")
    if not folder or not os.path.isdir(folder):
        return
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m] is not None)
    with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as f:
        json.dump({"argv": sys.argv, "attempts": attempts, "loaded": loaded}, f)


_real_find_spec = importlib.util.find_spec


def _find_spec(name: str, package: str | None = None) -> importlib.machinery.ModuleSpec | None:
    """``importlib.util.find_spec`` answers None for the blocked modules, as where they are not installed."""
    if name.split(".")[0] in BLOCKED:
        return None
    return _real_find_spec(name, package)


importlib.util.find_spec = _find_spec
sys.meta_path.insert(0, _Refuse())
atexit.register(_report)
