"""The face pipeline, loaded once on first use or on a background thread (TensorFlow takes seconds).

The console opens its window at once and the first enrolment or recognised frame simply waits for
the models; the headless station loads them up front. A load that fails is kept and raised again
on every use, so each caller gets the same one clear error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from vision.faces import Face
from vision.frames import CameraFaces
from vision.pipeline import FaceObservation, FacePipeline
from vision.stages import StageClock
from vision.types import Box, Detection, FloatArray, ImageBGR

log = logging.getLogger(__name__)


class LazyPipeline:
    """Stands in for ``vision.pipeline.FacePipeline`` until it is loaded; thread-safe. It is a
    ``vision.face_sources.LivePipeline``, so the live engine takes it as it is."""

    def __init__(
        self,
        factory: Callable[[], FacePipeline],
        model: str,
        *,
        on_loaded: Callable[[FacePipeline], None] | None = None,
    ) -> None:
        self._factory = factory
        self._model = model
        self._on_loaded = on_loaded
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._loaded: FacePipeline | None = None
        self.error: Exception | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def get(self) -> FacePipeline:
        """The pipeline, loading it now if need be; a failed load raises the same error each time."""
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    def _load(self) -> FacePipeline:
        if self.error is not None:
            raise self.error
        try:
            pipeline = self._factory()
        except Exception as exc:
            self.error = exc
            self._done.set()
            raise
        self._model = pipeline.model
        if self._on_loaded is not None:
            try:
                self._on_loaded(pipeline)
            except Exception:
                log.exception("after loading the models")
        self._done.set()
        return pipeline

    def preload(self) -> None:
        """Load on a background thread; a failure is logged, kept, and raised again on use."""

        def load() -> None:
            try:
                self.get()
            except Exception as exc:
                log.error("the face models could not be loaded: %s", exc)

        threading.Thread(target=load, name="load-models", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the load to finish; True when the models are there."""
        self._done.wait(timeout)
        return self._loaded is not None

    def observe(self, image: ImageBGR) -> list[FaceObservation]:
        return self.get().observe(image)

    def candidates(self, image: ImageBGR, *, min_face: float = 0.0, clock: StageClock | None = None) -> list[Face]:
        return self.get().candidates(image, min_face=min_face, clock=clock)

    def camera_candidates(
        self, faces: CameraFaces, *, min_face: float = 0.0, clock: StageClock | None = None
    ) -> list[Face]:
        return self.get().camera_candidates(faces, min_face=min_face, clock=clock)

    def refine_candidates(
        self, image: ImageBGR, hints: Sequence[Box], *, min_face: float = 0.0, clock: StageClock | None = None
    ) -> list[Face]:
        return self.get().refine_candidates(image, hints, min_face=min_face, clock=clock)

    def embed_crops(self, crops: Sequence[ImageBGR]) -> FloatArray:
        return self.get().embed_crops(crops)

    def observe_box(self, image: ImageBGR, box: tuple[float, float, float, float]) -> FaceObservation:
        return self.get().observe_box(image, box)

    def observe_detections(self, image: ImageBGR, detections: list[Detection]) -> list[FaceObservation]:
        return self.get().observe_detections(image, detections)
