"""Where one camera's faces come from, chosen once when the station is assembled.

* :class:`StationDetection`: the frame is decoded and searched here, whole every ``full_detect_every``-th
  frame (MTCNN's pyramid from the live minimum face up) and, in between, only near the live tracks' last
  boxes (O-Net alone, ``FacePipeline.refine_candidates``): a new face is found within that many frames.
* :class:`CameraCrops`: the camera found the faces itself (``udp_sender.py --detect``) and sent sharp crops;
  they are aligned and measured here, with no decode or detection. A frame without them, or whose crops do
  not decode, is detected here instead (counted as a fallback).
* :class:`RemoteAnalysis`: whole frames go to remote workers (Ray actors), which detect and embed every face.
* :class:`EveryFace`: the first engine's cost, kept so the load benchmark can show it: every face of every
  frame detected, aligned and embedded here.

Each source is made per camera (:data:`SourceFactory`), so per-camera state such as the detection
schedule lives in it; each returns a :class:`Found`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from vision.faces import Face
from vision.frames import CameraFaces, CameraFrame, FrameDecodeError, FrameRef
from vision.pipeline import FaceObservation
from vision.stages import Stage, StageClock, StageTimes
from vision.types import Box, FloatArray, ImageBGR

log = logging.getLogger(__name__)


class FoundBy(StrEnum):
    """Who found a frame's faces (the stats' ``detect`` field)."""

    STATION = "station"
    EDGE = "edge"
    REMOTE = "remote"


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """What the operator's settings and the live schedule say for the next frame."""

    min_face: float = 40.0
    full_detect_every: int = 3
    hint_age_s: float = 0.5  # a track unseen for longer is not looked for between whole searches

    def __post_init__(self) -> None:
        if self.full_detect_every < 1:
            raise ValueError(f"full_detect_every must be >= 1, got {self.full_detect_every}")
        if self.min_face < 0:
            raise ValueError(f"min_face must be >= 0, got {self.min_face}")


@dataclass(frozen=True, slots=True)
class Found:
    """One frame's faces (aligned, measured, embedded only if the source embeds), the whole frame kept for
    snapshots, who found them, whether the station searched the frame whole, and whether the camera's crops
    failed and the station detected instead."""

    faces: tuple[Face, ...]
    frame: FrameRef
    by: FoundBy
    whole: bool = False
    fell_back: bool = False


Hints = Callable[[], Sequence[Box]]  # the live tracks' recent boxes, asked for only when needed


class FaceSource(Protocol):
    def find(self, frame: CameraFrame, hints: Hints, settings: LiveSettings, clock: StageClock) -> Found: ...


SourceFactory = Callable[[str], FaceSource]  # a camera's name -> its face source


class LivePipeline(Protocol):
    """What the live engine needs of the face pipeline (``vision.pipeline.FacePipeline``, or the station's
    lazily loaded one)."""

    @property
    def model(self) -> str: ...

    def candidates(self, image: ImageBGR, *, min_face: float = 0.0, clock: StageClock | None = None) -> list[Face]: ...

    def refine_candidates(
        self, image: ImageBGR, hints: Sequence[Box], *, min_face: float = 0.0, clock: StageClock | None = None
    ) -> list[Face]: ...

    def camera_candidates(
        self, faces: CameraFaces, *, min_face: float = 0.0, clock: StageClock | None = None
    ) -> list[Face]: ...

    def embed_crops(self, crops: Sequence[ImageBGR]) -> FloatArray: ...

    def observe(self, image: ImageBGR) -> list[FaceObservation]: ...


class FrameAnalyser(Protocol):
    """Analyses whole frames elsewhere (``vision.ray_workers.RayRecognitionPool``): detected and embedded."""

    @property
    def model(self) -> str: ...

    def analyse_jpeg(self, jpeg: bytes) -> tuple[list[FaceObservation], tuple[int, int]]: ...


def _big_enough(faces: Sequence[Face], min_face: float) -> tuple[Face, ...]:
    return tuple(f for f in faces if min(f.box[2], f.box[3]) >= min_face)


def _embedded(observations: Sequence[FaceObservation]) -> list[Face]:
    return [Face(o.detection, o.quality, o.model, crop=o.crop, embedding=o.embedding) for o in observations]


def _frame_ref(frame: CameraFrame, image: ImageBGR) -> FrameRef:
    height, width = image.shape[:2]
    return FrameRef(frame.jpeg, width, height, image=image if frame.jpeg is None else None)


class DetectionSchedule:
    """Which frames the station searches whole: the first after a (re)start, then every ``every``-th."""

    def __init__(self) -> None:
        self._n = 0  # frames since the (re)start

    @staticmethod
    def whole_at(n: int, every: int) -> bool:
        """Whether the ``n``-th frame since a (re)start is searched whole (``main.py scan`` plans ahead by it)."""
        return n % every == 0

    def next_whole(self, every: int) -> bool:
        whole = self.whole_at(self._n, every)
        self._n += 1
        return whole

    def restart(self) -> None:
        self._n = 0


class WholeAhead(Protocol):
    """Whole-frame searches made ahead of time, e.g. on a thread pool while earlier frames are tracked
    (recorded footage): the faces of ``frame`` and the CPU they took, or None when none was made."""

    def take(self, frame: CameraFrame) -> tuple[list[Face], StageTimes] | None: ...


class StationDetection:
    """Decode and detect here, on the live schedule (see the module docstring)."""

    def __init__(self, pipeline: LivePipeline, ahead: WholeAhead | None = None) -> None:
        self._pipeline = pipeline
        self._ahead = ahead
        self._schedule = DetectionSchedule()

    def restart(self) -> None:
        """Search the next frame whole (after frames whose faces came from elsewhere)."""
        self._schedule.restart()

    def find(self, frame: CameraFrame, hints: Hints, settings: LiveSettings, clock: StageClock) -> Found:
        with clock.timing(Stage.DECODE):
            image = frame.pixels()
        if self._schedule.next_whole(settings.full_detect_every):
            faces = self._whole(frame, image, settings, clock)
            return Found(tuple(faces), _frame_ref(frame, image), FoundBy.STATION, whole=True)
        near = hints()
        refined = self._pipeline.refine_candidates(image, near, min_face=settings.min_face, clock=clock) if near else []
        return Found(tuple(refined), _frame_ref(frame, image), FoundBy.STATION)

    def _whole(self, frame: CameraFrame, image: ImageBGR, settings: LiveSettings, clock: StageClock) -> list[Face]:
        made = None if self._ahead is None else self._ahead.take(frame)
        if made is None:
            return self._pipeline.candidates(image, min_face=settings.min_face, clock=clock)
        faces, times = made
        clock.add_times(times)
        return faces


class CameraCrops:
    """The camera's own faces and crops, with station detection for frames without them (module docstring)."""

    def __init__(self, pipeline: LivePipeline) -> None:
        self._pipeline = pipeline
        self._station = StationDetection(pipeline)

    def find(self, frame: CameraFrame, hints: Hints, settings: LiveSettings, clock: StageClock) -> Found:
        if frame.faces is None:
            return self._station.find(frame, hints, settings, clock)
        try:
            faces = self._pipeline.camera_candidates(frame.faces, min_face=settings.min_face, clock=clock)
        except FrameDecodeError as exc:
            log.warning(
                "recognition: %s frame %d: %s; the station detects this frame", frame.camera, frame.frame_id, exc
            )
            return replace(self._station.find(frame, hints, settings, clock), fell_back=True)
        self._station.restart()  # back on station detection, its first frame is searched whole
        width, height = frame.faces.stream_size  # the stream frame itself is not decoded at all
        return Found(tuple(faces), FrameRef(frame.jpeg, width, height), FoundBy.EDGE)


class RemoteAnalysis:
    """Whole frames analysed by remote workers; their faces come back embedded."""

    def __init__(self, analyser: FrameAnalyser) -> None:
        self._analyser = analyser

    def find(self, frame: CameraFrame, hints: Hints, settings: LiveSettings, clock: StageClock) -> Found:
        if frame.jpeg is None:
            raise FrameDecodeError("a remote worker takes frames as JPEG bytes")
        observations, (width, height) = self._analyser.analyse_jpeg(frame.jpeg)
        faces = _big_enough(_embedded(observations), settings.min_face)
        return Found(faces, FrameRef(frame.jpeg, width, height), FoundBy.REMOTE, whole=True)


class EveryFace:
    """Every face of every frame detected, aligned and embedded here: the first engine's cost."""

    def __init__(self, pipeline: LivePipeline) -> None:
        self._pipeline = pipeline

    def find(self, frame: CameraFrame, hints: Hints, settings: LiveSettings, clock: StageClock) -> Found:
        with clock.timing(Stage.DECODE):
            image = frame.pixels()
        with clock.timing(Stage.DETECT):  # detection, alignment and embedding together
            faces = _big_enough(_embedded(self._pipeline.observe(image)), settings.min_face)
        return Found(faces, _frame_ref(frame, image), FoundBy.STATION, whole=True)
