"""The recognising station without a display: frames in, faces recognised, sightings recorded.

``main.py headless`` and the console build the same :class:`Recogniser` on top of a receiver, a
gallery and a face pipeline, so what the operator sees is what the server records. No Qt here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from network.udp_receiver import UdpReceiver
from station import settings as table
from station.frame_feed import ReceiverFeed

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
from vision.decision import ConfirmRules, Decider, next_revision
from vision.embedders.calibrated import expected_at, threshold_for
from vision.engine import Embed
from vision.face_sources import (
    CameraCrops,
    EveryFace,
    FrameAnalyser,
    LivePipeline,
    RemoteAnalysis,
    SourceFactory,
)
from vision.matcher import DEFAULT_MARGIN, Matcher
from vision.photo_confirmer import PhotoConfirmer
from vision.pipeline import FacePipeline
from vision.results import FrameResult, RecognitionStats
from vision.service import EngineHost, LocalEngines, RecognitionService, ServiceConfig
from vision.sightings import to_new_sighting
from vision.tracker import TrackRecord
from vision.worker_processes import PipelineSpec, ProcessEngines

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


@dataclass(frozen=True)
class PhotoModel:
    """The photo model that confirms live names (vision/decision.py): its name, and its pipeline (loaded on
    first use: the station loads it lazily for enrolments too)."""

    model: str
    pipeline: Callable[[], FacePipeline]


def confirm_rules(gallery: Gallery, live_model: str, settings: RecognitionSettings, photo_model: str) -> ConfirmRules:
    """The photo model's confirmation at the strictness of the live threshold: the photo threshold at which it
    names as few strangers as the live model does at ``settings.threshold`` (their calibrated operating points)."""
    point = expected_at(live_model, settings.threshold)
    threshold = None if point is None else threshold_for(photo_model, point.fpir_upper)
    matcher = Matcher.from_matrices(
        photo_model,
        gallery.sample_matrix(photo_model),
        gallery.negative_matrix(photo_model),
        threshold=calibrated_threshold(photo_model) if threshold is None else threshold,
        margin=table.calibrated_margin(photo_model, DEFAULT_MARGIN),
    )
    return ConfirmRules(matcher)


def load_decider(
    gallery: Gallery, model: str, settings: RecognitionSettings, photo_model: str | None = None
) -> Decider:
    """The live decision over the gallery's samples of ``model``, confirmed by ``photo_model`` when given."""
    live = load_matcher(gallery, model, settings)
    confirm = None if photo_model is None else confirm_rules(gallery, model, settings, photo_model)
    return Decider(live, next_revision(), confirm)


@dataclass(frozen=True)
class LocalFaces:
    """Faces found here: by the camera where it sends its own (``--detect``), else by ``pipeline`` on the live
    schedule. ``every_face`` is the first engine's cost (every face of every frame embedded), kept so
    bench/load.py can measure it beside the track-first engine in one run."""

    pipeline: LivePipeline
    every_face: bool = False

    @property
    def model(self) -> str:
        return self.pipeline.model


@dataclass(frozen=True)
class RemoteFaces:
    """Whole frames analysed by remote workers (the Ray back-end), which detect and embed every face."""

    analyser: FrameAnalyser

    @property
    def model(self) -> str:
        return self.analyser.model


FaceFinding = LocalFaces | RemoteFaces
SightingListener = Callable[[TrackRecord], None]


def sources_for(finding: FaceFinding) -> tuple[SourceFactory, Embed | None, bool]:
    """Per-camera face sources for ``finding``, the embed step the tracker uses (None: faces come embedded),
    and whether the cameras' own faces are taken (the feed then waits for frames that come with them)."""
    if isinstance(finding, RemoteFaces):
        analyser = finding.analyser
        return (lambda camera: RemoteAnalysis(analyser)), None, False
    pipeline = finding.pipeline
    if finding.every_face:
        return (lambda camera: EveryFace(pipeline)), None, False
    return (lambda camera: CameraCrops(pipeline)), pipeline.embed_crops, True


class Recogniser:
    """A :class:`RecognitionService` whose judge comes from the gallery and whose sightings go into it.

    Gallery changes (an enrolment, a delete, a rename) reach the decisions within the service's revision poll
    (0.5 s). With :class:`RemoteFaces` (the Ray back-end) frames are analysed there; matching, tracking and
    the gallery stay here either way, so a gallery change reaches the results of every remote worker with
    the same poll; the caller starts and stops the analyser. Sighting listeners (the headless printer, the
    console's alerts) are called on a recognition thread after the sighting was handed to the gallery's writer.
    """

    def __init__(
        self,
        receiver: UdpReceiver,
        gallery: Gallery,
        finding: FaceFinding,
        settings: RecognitionSettings,
        *,
        workers: int | None = None,
        processes: int = 0,
        photo: PhotoModel | None = None,
    ) -> None:
        """``processes`` > 0 runs the engines of :class:`LocalFaces` in that many worker processes (one per worker
        thread; vision/worker_processes.py) instead of this process's threads. ``photo`` confirms the live
        model's names (None: the live model decides alone)."""
        self.gallery = gallery
        self.photo = photo
        self.finding = finding
        self.model = finding.model
        self._settings = settings
        self._listeners: list[SightingListener] = []
        self._lock = threading.Lock()
        self.recorded = 0
        config = replace(ServiceConfig(max_rate_hz=settings.max_rate_hz), min_face=settings.min_face_px)
        if workers is not None:
            config = replace(config, workers=workers)
        sources, embed, own_faces = sources_for(finding)
        self._processes: ProcessEngines | None = None
        confirmer = None if photo is None else PhotoConfirmer(photo.pipeline, photo.model)
        host: EngineHost = LocalEngines(sources, embed, config.tracker, confirmer)
        if processes > 0 and isinstance(finding, LocalFaces) and not finding.every_face:
            config = replace(config, workers=processes)
            spec = PipelineSpec(finding.model, None if photo is None else photo.model)
            host = self._processes = ProcessEngines(spec, processes, config.tracker)
        self.service = RecognitionService(
            ReceiverFeed(receiver, camera_faces=own_faces),
            host,
            self._decider,
            revision=gallery.revision,
            sighting_sink=self._record,
            config=config,
        )

    @property
    def processes(self) -> ProcessEngines | None:
        """The worker processes (None: recognition runs on this process's threads)."""
        return self._processes

    # ------------------------------------------------------------ life

    def start(self) -> Recogniser:
        """Start recognising (with worker processes: once each has loaded its models; VisionError if one cannot)."""
        if self._processes is not None:
            self._processes.start()
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
        """Take new settings now: the judge is rebuilt; the rate cap and minimum face apply from the next frame."""
        self._settings = settings
        self.service.set_config(
            replace(self.service.config, max_rate_hz=settings.max_rate_hz, min_face=settings.min_face_px)
        )
        self.service.set_decider(self._decider())

    def add_sighting_listener(self, listener: SightingListener) -> None:
        with self._lock:
            self._listeners = [*self._listeners, listener]

    # ----------------------------------------------------------- readers

    def latest_results(self) -> dict[str, FrameResult]:
        return self.service.latest_results()

    def stats(self) -> list[RecognitionStats]:
        return self.service.stats()

    # ----------------------------------------------------------- workers

    def _decider(self) -> Decider:
        return load_decider(self.gallery, self.model, self._settings, None if self.photo is None else self.photo.model)

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
