"""The recognising station without a display: frames in, faces recognised, sightings recorded.

``main.py headless`` and the console build the same :class:`Recogniser` on top of a receiver, a
gallery and a face pipeline, so what the operator sees is what the server records. No Qt here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from network.frames import Frame
from network.wire.faces import EdgeFaces
from station import settings as table

# The settings' keys and the calibrated default live in station/settings.py (the one table); these
# names stay importable from here.
from station.settings import MAX_RATE as MAX_RATE
from station.settings import MIN_FACE as MIN_FACE
from station.settings import RAY_ADDRESS as RAY_ADDRESS
from station.settings import RETENTION_DAYS as RETENTION_DAYS
from station.settings import THRESHOLD as THRESHOLD
from station.settings import UNKNOWN_ALERTS as UNKNOWN_ALERTS
from station.settings import calibrated_threshold as calibrated_threshold
from storage.gallery import Gallery
from vision.matcher import DEFAULT_MARGIN, Matcher
from vision.results import FrameResult, RecognitionStats
from vision.service import FrameSource, ObservationLike, RecognitionService, ServiceConfig
from vision.sightings import to_new_sighting
from vision.stages import StageTimes
from vision.tracker import TrackRecord
from vision.types import Box, FloatArray, ImageBGR

log = logging.getLogger(__name__)

RECOGNITION_SETTINGS = ("threshold", "min_face_px", "max_rate_hz")  # the table's settings the recogniser takes


@dataclass(frozen=True)
class RecognitionSettings:
    """What the operator tunes, checked by the settings table (station/settings.py).

    ``max_rate_hz`` None (or 0, the table's "no limit") means as fast as the workers go.
    """

    threshold: float
    margin: float = DEFAULT_MARGIN
    min_face_px: float = float(table.setting("min_face_px").default_for(""))
    max_rate_hz: float | None = float(table.setting("max_rate_hz").default_for(""))

    def __post_init__(self) -> None:
        table.parse("threshold", self.threshold)
        table.parse("min_face_px", self.min_face_px)
        if self.max_rate_hz is not None and table.parse("max_rate_hz", self.max_rate_hz) == 0:
            object.__setattr__(self, "max_rate_hz", None)

    @classmethod
    def from_values(
        cls, values: table.SettingValues | Mapping[str, object], base: RecognitionSettings
    ) -> RecognitionSettings:
        """``base`` with the recognition values of ``values`` (by setting name or gallery key) applied, checked."""
        given = values.as_dict() if isinstance(values, table.SettingValues) else dict(values)
        changes: dict[str, Any] = {}
        for name_or_key, raw in given.items():
            s = table.setting(name_or_key)
            if s.name in RECOGNITION_SETTINGS:
                value = s.parse(raw)
                changes[s.name] = None if s.name == "max_rate_hz" and value == 0 else float(value)
        return replace(base, **changes) if changes else base

    @classmethod
    def from_gallery(cls, gallery: Gallery, model: str, **overrides: Any) -> RecognitionSettings:
        """The settings stored in the gallery, the model's calibrated threshold where none is stored;
        ``overrides`` (by setting name, e.g. from ``settings.cli_overrides(args)``) that are not None win.
        Raises SettingError (a ValueError) naming a stored or given value the table refuses."""
        stored = table.load(gallery.get_setting, model, RECOGNITION_SETTINGS)
        given = {k: v for k, v in overrides.items() if v is not None}
        base = cls(threshold=stored.number("threshold"), margin=table.calibrated_margin(model, DEFAULT_MARGIN))
        return cls.from_values({**stored.as_dict(), **given}, base)

    @classmethod
    def for_model(cls, model: str) -> RecognitionSettings:
        """The model's calibrated decision (threshold and margin) with the table's defaults for the rest."""
        return cls(threshold=table.calibrated_threshold(model), margin=table.calibrated_margin(model, DEFAULT_MARGIN))


def load_matcher(gallery: Gallery, model: str, settings: RecognitionSettings) -> Matcher:
    """A matcher over every sample (and negative) of ``model`` in the gallery, with the settings' decision."""
    return Matcher.from_matrices(
        model,
        gallery.sample_matrix(model),
        gallery.negative_matrix(model),
        threshold=settings.threshold,
        margin=settings.margin,
    )


class FacePipelineLike(Protocol):
    """What live recognition needs of the face pipeline (``vision.pipeline.FacePipeline``, or a lazy one)."""

    @property
    def model(self) -> str: ...

    def candidates(
        self, image: ImageBGR, *, min_face: float = 0.0, timer: StageTimes | None = None
    ) -> Sequence[ObservationLike]: ...

    def embed_crops(self, crops: list[ImageBGR]) -> FloatArray: ...


class FrameAnalyser(Protocol):
    """Analyses whole received frames elsewhere, e.g. ``vision.ray_workers.RayRecognitionPool``."""

    @property
    def model(self) -> str: ...

    def analyse_frame(self, frame: Frame) -> Sequence[ObservationLike]: ...


SightingListener = Callable[[TrackRecord], None]


class Recogniser:
    """A :class:`RecognitionService` whose matcher comes from the gallery and whose sightings go into it.

    Gallery changes (an enrolment, a delete, a rename) reach the matcher within the service's
    revision poll (0.5 s). With a ``frame_analyser`` (the Ray back-end) the frames are analysed there
    instead of by ``pipeline`` (which then only names the model; the analyser itself will do); the
    caller starts and stops it. Matching, tracking and the gallery stay here either way, so a gallery
    change reaches the results of every remote worker with the same poll. Sighting listeners (the
    headless printer, the console's alerts) are called on a recognition thread after the sighting
    was handed to the gallery's writer.
    """

    def __init__(
        self,
        source: FrameSource,
        gallery: Gallery,
        pipeline: FacePipelineLike | FrameAnalyser,
        settings: RecognitionSettings,
        *,
        workers: int | None = None,
        frame_analyser: FrameAnalyser | None = None,
        embed_every_face: bool = False,
    ) -> None:
        """``embed_every_face`` is the first engine's cost (every face of every analysed frame embedded),
        kept so bench/load.py can measure it beside the track-first engine in one run."""
        self.gallery = gallery
        self.pipeline = pipeline
        self.model = pipeline.model
        self.frame_analyser = frame_analyser
        if frame_analyser is not None and frame_analyser.model != self.model:
            raise ValueError(f"the remote workers embed with {frame_analyser.model}, the station with {self.model}")
        self._settings = settings
        self._every_face = embed_every_face
        self._listeners: list[SightingListener] = []
        self._lock = threading.Lock()
        self.recorded = 0
        config = ServiceConfig(max_rate_hz=settings.max_rate_hz)
        if workers is not None:
            config = replace(config, workers=workers)
        self.service = RecognitionService(
            source,
            self._analyse,
            self._load_matcher,
            revision=gallery.revision,
            sighting_sink=self._record,
            config=config,
            analyse_frame=None if frame_analyser is None else self._analyse_frame,
            embed=None if frame_analyser is not None or embed_every_face else self._embed,
            # A camera that detects itself (--detect): its crops are aligned here, on the track-first engine.
            analyse_edge=self._analyse_edge if self._edge_capable(frame_analyser, embed_every_face) else None,
            # Between full detections, O-Net looks near the live tracks only (the first engine had no tracks).
            refine=self._refine if self._refine_capable(frame_analyser, embed_every_face) else None,
        )

    # ------------------------------------------------------------ life

    def start(self) -> Recogniser:
        self.service.start()
        return self

    def stop(self) -> None:
        """Stop the workers; tracks still open become sightings, and the writer is flushed."""
        self.service.stop(flush=True)
        self.gallery.flush(timeout=10.0)

    # --------------------------------------------------------- settings

    @property
    def settings(self) -> RecognitionSettings:
        return self._settings

    def apply(self, settings: RecognitionSettings) -> None:
        """Take new settings now: the matcher is rebuilt; the rate cap applies from the next frame."""
        self._settings = settings
        self.service.set_config(replace(self.service.config, max_rate_hz=settings.max_rate_hz))
        self.service.set_matcher(self._load_matcher())

    def add_sighting_listener(self, listener: SightingListener) -> None:
        with self._lock:
            self._listeners = [*self._listeners, listener]

    # ----------------------------------------------------------- readers

    def latest_results(self) -> dict[str, FrameResult]:
        return self.service.latest_results()

    def stats(self) -> list[RecognitionStats]:
        return self.service.stats()

    # ----------------------------------------------------------- workers

    def _local(self) -> FacePipelineLike:
        if not hasattr(self.pipeline, "candidates"):
            raise TypeError("local recognition needs a face pipeline with candidates() and embed_crops()")
        return self.pipeline  # type: ignore[return-value]

    def _analyse(self, image: ImageBGR) -> list[ObservationLike]:
        """Detect, align and measure (the tracker embeds only the faces that add information)."""
        local = self._local()
        if self._every_face:
            return self._observe_every_face(image)
        return list(local.candidates(image, min_face=self._settings.min_face_px, timer=self.service.stages))

    def _refine_capable(self, frame_analyser: FrameAnalyser | None, every_face: bool) -> bool:
        return frame_analyser is None and not every_face and hasattr(self.pipeline, "refine_candidates")

    def _refine(self, image: ImageBGR, hints: Sequence[Box]) -> list[ObservationLike]:
        """The faces near the live tracks' boxes (O-Net only)."""
        refine = getattr(self.pipeline, "refine_candidates")  # noqa: B009 - optional in FacePipelineLike
        return list(refine(image, hints, min_face=self._settings.min_face_px, timer=self.service.stages))

    def _edge_capable(self, frame_analyser: FrameAnalyser | None, every_face: bool) -> bool:
        return frame_analyser is None and not every_face and hasattr(self.pipeline, "edge_candidates")

    def _analyse_edge(self, faces: EdgeFaces) -> list[ObservationLike]:
        """Align and measure the faces a camera found itself (no detection at the station)."""
        edge = getattr(self.pipeline, "edge_candidates")  # noqa: B009 - optional in FacePipelineLike
        return list(edge(faces, min_face=self._settings.min_face_px, timer=self.service.stages))

    def _observe_every_face(self, image: ImageBGR) -> list[ObservationLike]:
        observe = getattr(self.pipeline, "observe", None)
        if observe is None:
            raise TypeError("embed_every_face needs a pipeline with observe()")
        with self.service.stages.timing("detect"):  # detection, alignment and embedding together
            faces = list(observe(image))
        minimum = self._settings.min_face_px
        return [f for f in faces if min(f.detection.box[2], f.detection.box[3]) >= minimum]

    def _embed(self, crops: list[ImageBGR]) -> FloatArray:
        return self._local().embed_crops(crops)

    def _analyse_frame(self, frame: Frame) -> list[ObservationLike]:
        assert self.frame_analyser is not None
        minimum = self._settings.min_face_px
        faces = self.frame_analyser.analyse_frame(frame)
        return [o for o in faces if min(o.detection.box[2], o.detection.box[3]) >= minimum]

    def _load_matcher(self) -> Matcher:
        return load_matcher(self.gallery, self.model, self._settings)

    def _record(self, records: Sequence[TrackRecord]) -> None:
        if not records:
            return
        # The track's best quality goes with its sighting, so a sample named from it later keeps it.
        self.gallery.record_sightings([to_new_sighting(r) for r in records])
        self.recorded += len(records)
        for record in records:
            for listener in self._listeners:
                try:
                    listener(record)
                except Exception:
                    log.exception("sighting listener failed")
