"""TensorFlow's native log lines, kept off stderr: what every entry point calls first. Imports no TensorFlow.

TensorFlow is an optional extra (``pip install 'facestation[tensorflow]'``: the VGGFace2 back-end and
the TF runtime kept for comparison); the default path never imports it. Where it is installed and
chosen, its native logging must still be configured before it loads: on CPUs with AVX-512, TF 2.21
prints ``All log messages before absl::InitializeLog()`` and ``oneDNN custom operations are on``
from static initialisers while ``import tensorflow`` runs, whatever ``TF_CPP_MIN_LOG_LEVEL`` says, and
whichever module imports it first (``mtcnn``, ``keras`` or the FaceNet loader). Every entry point
therefore calls :func:`quiet_native_logs` before anything can import TensorFlow: it sets the log
level and hooks the first ``import tensorflow`` so that what the native code writes to stderr
(file descriptor 2) during the import is captured. Lines that look like native log lines go to the
``tensorflow.native`` logger at DEBUG (``-v`` shows them); anything else written in that window
(another thread's log line) goes back to stderr, so nothing is lost.

This module lives apart from vision.tf_runtime (which imports TensorFlow) so that calling it loads
nothing: the hook only waits for an import that, on the default path, never comes.
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

native_log = logging.getLogger("tensorflow.native")

# absl/TSL native lines: "I0000 00:00:1796116954.113587    2483 port.cc:153] ...", the absl preamble,
# and the two-line CPU-feature notice.
NATIVE_LINE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"
    r"|To enable the following instructions:"
    r"|.*rebuild TensorFlow with the appropriate compiler flags)"
)
# Modules whose import loads TensorFlow's native libraries.
HOOKED = frozenset({"tensorflow"})


def is_native_line(line: str) -> bool:
    return bool(NATIVE_LINE.match(line))


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader with file descriptor 2 pointed at a temporary file."""

    def __init__(self, real: importlib.abc.Loader) -> None:
        self._real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        capture = CapturedStderr()
        capture.__enter__()
        try:
            self._real.exec_module(module)
        finally:
            if capture.end():  # else the process is exiting and the atexit hook replayed the lines
                replay(capture.lines)


class CapturedStderr:
    """Point file descriptor 2 at a temporary file for the block; the lines written land in the list.

    If the process exits while the block still runs (a daemon thread importing TensorFlow when the
    main thread returns an error), an ``atexit`` hook ends the capture first and replays what was
    written, so the error line is not lost with the temporary file.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._saved = -1
        self._tmp: Any = None
        self._lock = threading.Lock()
        self._open = False

    def __enter__(self) -> list[str]:
        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        self._open = True
        _active.add(self)
        return self.lines

    def __exit__(self, *exc: object) -> None:
        self.end()

    def end(self) -> bool:
        """Restore stderr and collect the lines; False when that was done already."""
        with self._lock:
            if not self._open:
                return False
            self._open = False
            _active.discard(self)
            try:
                sys.stderr.flush()
            finally:
                os.dup2(self._saved, 2)
                os.close(self._saved)
            self._tmp.seek(0)
            self.lines.extend(self._tmp.read().decode("utf-8", errors="replace").splitlines())
            self._tmp.close()
            return True


_active: set[CapturedStderr] = set()


@atexit.register
def _end_open_captures() -> None:
    for capture in list(_active):
        if capture.end():
            replay(capture.lines)


def replay(lines: Sequence[str]) -> None:
    """Native log lines to DEBUG, everything else back to stderr as it was written."""
    for line in lines:
        if is_native_line(line):
            native_log.debug("%s", line)
        elif line.strip():
            sys.stderr.write(line + "\n")
    sys.stderr.flush()


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the first import of each hooked module, then steps aside.

    The spec is the one the other finders on ``sys.meta_path`` give, in their order (the path finder,
    a frozen app's importer, a finder that refuses the module, whose ImportError goes on up), so
    this finder changes how TensorFlow loads, never whether or from where.
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in HOOKED:
            return None
        spec = None
        for finder in list(sys.meta_path):
            if finder is not self:
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


_finder = _QuietFinder()


def quiet_native_logs(verbose: bool = False) -> None:
    """Configure TensorFlow's native logging before anything imports it; call first in every entry point.

    ``verbose`` leaves TF as it is (its lines show on stderr). Otherwise its C++ log level is set
    to errors only (unless the user set ``TF_CPP_MIN_LOG_LEVEL``), and the first ``import
    tensorflow`` is hooked as the module docstring says. Calling it again changes nothing.
    """
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return  # imported already: too late to catch the static initialisers
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
