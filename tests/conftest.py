"""Shared fixtures: real key files, loopback receivers and sender processes, a real gallery file in a
temporary folder, the real face pipeline (loaded once per test session), and the GUI's job pool."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from network import keys
from network.frames import Frame
from network.udp_receiver import ReceiverConfig, UdpReceiver
from storage.gallery import Gallery
from vision.native_logs import quiet_native_logs
from vision.pipeline import FacePipeline

quiet_native_logs()  # the tests marked tf import TensorFlow in process (none of the imports above does)

# Converted models (OpenVINO IR, vision.model_cache) go to a folder of this test run, not the user's
# data folder; the CLI and service processes the tests start inherit it, so they convert nothing.
# Set FACESTATION_MODEL_CACHE yourself to keep them between runs.
if not os.environ.get("FACESTATION_MODEL_CACHE"):
    _model_cache = tempfile.mkdtemp(prefix="facestation-test-models-")
    os.environ["FACESTATION_MODEL_CACHE"] = _model_cache
    atexit.register(shutil.rmtree, _model_cache, True)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FACES = SHARED / "faces"
CLIP = FACES / "video" / "short_hamilton_clip.mp4"
SENDER = ROOT / "network" / "udp_sender.py"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"test data {path} is not here (it lives in ../shared/faces)")
    return path


def raw_connect(path: Path | str, **options: Any) -> Any:
    """A bare connection to a gallery file, keyed with its key file when it is encrypted (the default), for
    tests that look inside the file or hold its lock from "another process"."""
    from storage.connection import open_raw

    return open_raw(Path(path), **options)


def open_gallery(folder: Path, **options: Any) -> Gallery:
    """A new gallery file in ``folder`` (the fixture's, or a variant's: e.g. a short busy timeout)."""
    return Gallery.open(folder / "gallery.db", **{"actor": "tester", **options})


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[Gallery]:
    """A real gallery file in the test's temporary folder, closed after the test."""
    g = open_gallery(tmp_path)
    try:
        yield g
    finally:
        g.close()


@pytest.fixture(scope="session")
def pipeline() -> FacePipeline:
    """The real default face pipeline (MTCNN + FaceNet), warmed once for the whole test session."""
    p = FacePipeline()
    p.warm_up()
    return p


@pytest.fixture
def jobs() -> Iterator[Any]:
    """The console's background job pool (gui/jobs.py); waits for the last jobs after the test."""
    from gui.jobs import Jobs

    j = Jobs()
    yield j
    j.wait(30_000)


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every QMessageBox.warning the console shows, recorded instead of a modal box."""
    from PySide6.QtWidgets import QMessageBox

    seen: list[str] = []

    def record(_parent: object, _title: str, text: str, *args: object) -> QMessageBox.StandardButton:
        seen.append(text)
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", record)
    return seen


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "station.key"
    keys.write_new_key(path)
    return path


@pytest.fixture
def key(key_file: Path) -> bytes:
    return keys.read_key(key_file)


class FrameLog:
    """Every frame a receiver delivers, per camera (the listener runs on the receive thread)."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def __call__(self, frame: Frame) -> None:
        self.frames.append(frame)

    def of(self, camera: str) -> list[Frame]:
        return [f for f in list(self.frames) if f.camera == camera]

    def count(self, camera: str | None = None) -> int:
        return len(self.frames) if camera is None else len(self.of(camera))


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def receiver(key: bytes) -> Iterator[tuple[UdpReceiver, FrameLog]]:
    rx = UdpReceiver(key, "127.0.0.1", 0, config=ReceiverConfig(offline_after_s=2.0))
    log = FrameLog()
    rx.add_listener(log)
    rx.start()
    try:
        yield rx, log
    finally:
        rx.stop()


SenderFactory = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def start_sender(key_file: Path) -> Iterator[SenderFactory]:
    """Start ``network/udp_sender.py`` as a real process; all are stopped after the test."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, key: Path | None = None) -> subprocess.Popen[str]:
        cmd = [sys.executable, str(SENDER), "--key-file", str(key or key_file), *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
