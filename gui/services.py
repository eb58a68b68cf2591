"""The collaborators the console is handed: real ones in the app, real ones on loopback in tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from network.discovery import DiscoveredSender
from network.udp_receiver import UdpReceiver

if TYPE_CHECKING:
    from station.recent_frames import RecentFrames
    from station.runtime import Recogniser
    from storage.gallery import Gallery
    from vision.pipeline import FaceObservation
    from vision.types import ImageBGR


class FaceAnalyser(Protocol):
    """What the console needs of the vision pipeline (``vision.pipeline.FacePipeline`` is one).

    Calls are slow (tens to hundreds of ms): the console makes them from background jobs only.
    """

    @property
    def model(self) -> str: ...

    def observe(self, image: ImageBGR) -> list[FaceObservation]: ...

    def observe_box(self, image: ImageBGR, box: tuple[float, float, float, float]) -> FaceObservation: ...


@dataclass(frozen=True)
class ConsoleServices:
    """What the main window works with.

    ``advertised_address`` is the station's HOST:PORT as a camera on the LAN would reach it (for
    the pairing command), or None when unknown. ``gallery`` and ``faces`` are None only in tests of
    the live side alone. ``recent_frames`` keeps the last seconds of each camera's frames, fed by the
    receiver (and the recogniser's results); None: the main window makes one and attaches it.
    """

    receiver: UdpReceiver
    discovered: Callable[[], list[DiscoveredSender]]
    key_hex: str
    key_file: Path
    advertised_address: tuple[str, int] | None
    gallery: Gallery | None = None
    faces: FaceAnalyser | None = None
    cameras: Callable[[], list[str]] = field(default=list)  # names of cameras seen, for filters
    recogniser: Recogniser | None = None
    recent_frames: RecentFrames | None = None


class LazyFaceAnalyser:
    """Loads the vision pipeline once, on first use or on :meth:`preload` (TensorFlow takes ~10 s),
    so the console opens at once and the first enrolment simply waits for the models."""

    def __init__(self, factory: Callable[[], FaceAnalyser], model: str) -> None:
        self._factory = factory
        self._model = model
        self._lock = threading.Lock()
        self._loaded: FaceAnalyser | None = None
        self.error: Exception | None = None

    @property
    def model(self) -> str:
        return self._model

    def get(self) -> FaceAnalyser:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._factory()
            return self._loaded

    def preload(self) -> None:
        """Load in a background thread; a failure is kept and raised again on use."""

        def load() -> None:
            try:
                self.get()
            except Exception as exc:
                self.error = exc

        threading.Thread(target=load, name="load-models", daemon=True).start()

    def observe(self, image: ImageBGR) -> list[FaceObservation]:
        return self.get().observe(image)

    def observe_box(self, image: ImageBGR, box: tuple[float, float, float, float]) -> FaceObservation:
        return self.get().observe_box(image, box)
