"""The one place bench/station.py touches a station's code: small on purpose, so an engine can change under it.

bench/station_run.py loads this file by path into a process whose ``sys.path`` starts with the source
tree under test (the working tree, or a ``git worktree`` of an older commit), so everything imported
here comes from that tree. It uses only what every engine so far has and the next is meant to keep:

* ``station.station.Station`` and ``StationOptions`` (built as ``main.py headless`` builds them: loopback,
  no discovery, local workers, the gallery's settings);
* ``station.pipeline`` (to embed the enrolment photo), ``storage.gallery.Gallery`` (``enrol_sample``,
  ``sighting_of_track``, ``count_sightings``);
* ``station.recogniser.stats()`` (``recognised``, ``errors``, ``first_decision_ms_p95`` per camera) and
  ``add_sighting_listener`` (``camera``, ``track_id``, ``person`` of each record).

**The stages alone** (:meth:`StationUnderTest.stages_alone`) need the engine's parts, so they are the
part of this file that follows the engine: :func:`_stages_alone_v3` calls the per-camera engine once a
frame (``vision.engine.CameraEngine``); :func:`_stages_alone_v2` drives v2's parts (the service's live
schedule, ``FacePipeline``, ``Tracker``, ``template_decider``) one frame after another on one thread, so
older trees still run. :meth:`StationUnderTest.stages_alone` picks by what the tree has.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What a sighting listener reports here: (camera, track id, person or None).
Sighting = tuple[str, str, str | None]


def quiet_logs() -> None:
    """TensorFlow's native log lines off before anything imports it (every tree so far has this)."""
    import importlib.util

    where = "vision.native_logs" if importlib.util.find_spec("vision.native_logs") else "vision.tf_runtime"
    importlib.import_module(where).quiet_native_logs()


def new_key(path: Path) -> None:
    from network import keys

    keys.write_new_key(path)


@dataclass
class Parts:
    """The stages alone: frames run, CPU seconds of the one thread and of the whole process, per stage."""

    frames: int = 0
    thread_s: float = 0.0
    process_s: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    full_detections: int = 0
    embedded: int = 0


class StationUnderTest:
    """A real station on loopback with a gallery in ``folder``; see the module docstring."""

    def __init__(self, folder: Path, key_file: Path, workers: int | None = None) -> None:
        import dataclasses
        import os

        from station.station import Station, StationOptions

        self.gallery_path = folder / "gallery.db"
        extra: dict[str, Any] = {}
        if os.environ.get("FACESTATION_BENCH_PROCESSES") == "1":  # --variant procs:FACESTATION_BENCH_PROCESSES=1
            if "worker_processes" not in {f.name for f in dataclasses.fields(StationOptions)}:
                raise SystemExit("this tree has no recognition worker processes")
            extra["worker_processes"] = True
        options = StationOptions(
            gallery=self.gallery_path,
            listen=("127.0.0.1", 0),
            key_file=key_file,
            actor="bench",
            workers=workers,
            ray_address="",  # local workers, as headless without --ray-address
            **extra,
        )
        self.station = Station(options)
        self._engine: tuple[Any, Any, Any] | None = None

    def start(self) -> tuple[str, int]:
        self.station.start()
        receiver = self.station.receiver
        assert receiver is not None
        host, port = receiver.address
        return str(host), int(port)

    def enrol(self, name: str, image_path: Path) -> None:
        """Enrol the largest face of a photo for the live model (as ``main.py enrol`` does for it)."""
        import cv2
        import numpy as np

        image = cv2.imread(str(image_path))
        if image is None:
            raise FileNotFoundError(f"cannot read {image_path}")
        assert self.station.pipeline is not None and self.station.gallery is not None
        faces = self.station.pipeline.observe(np.asarray(image, dtype=np.uint8))
        if not faces:
            raise ValueError(f"no face found in {image_path}")
        face = max(faces, key=lambda o: o.detection.box[2] * o.detection.box[3])
        ok, crop = cv2.imencode(".jpg", face.crop)
        assert ok
        self.station.gallery.enrol_sample(
            name, model=face.model, embedding=face.embedding, crop_jpeg=bytes(crop), source=str(image_path), quality=1
        )

    def on_sighting(self, listener: Callable[[Sighting], None]) -> None:
        self.station.add_sighting_listener(lambda r: listener((str(r.camera), str(r.track_id), r.person)))

    def per_camera(self) -> dict[str, dict[str, float | None]]:
        """Per camera: frames analysed and errors since the start, first decision p95 (ms)."""
        recogniser = self.station.recogniser
        assert recogniser is not None
        return {
            s.camera: {"recognised": s.recognised, "errors": s.errors, "first_decision_p95": s.first_decision_ms_p95}
            for s in recogniser.stats()
        }

    def compiled(self) -> dict[str, int]:
        """How many models the inference runtime has compiled for fixed shapes, per net (v2's OpenVINO
        detector and FaceNet); {} where the tree has none of that. For the soak: compiled models hold memory."""
        try:
            from vision.mtcnn_ov import OvNets
        except ImportError:
            return {}
        nets = OvNets.get()
        return {"P-Net": len(nets.pnet.shapes), "R-Net": len(nets.rnet.shapes), "O-Net": len(nets.onet.shapes)}

    def keep_engine(self) -> None:
        """Hold on to the engine's parts (pipeline, service, settings or photo model) for :meth:`stages_alone`."""
        recogniser = self.station.recogniser
        assert recogniser is not None and self.station.pipeline is not None
        third = recogniser.settings if not _per_camera_engine() else self.station.photo_pipeline
        self._engine = (self.station.pipeline.get(), recogniser.service, third)

    def stop(self) -> None:
        self.station.stop()

    def missing_sightings(self, announced: list[Sighting]) -> list[Sighting]:
        """The announced sightings not in the gallery (reopened after the station stopped)."""
        from storage.gallery import Gallery

        with Gallery.open(self.gallery_path) as gallery:
            return [s for s in announced if gallery.sighting_of_track(s[0], s[1]) is None]

    def stages_alone(self, jpegs: list[bytes], starts: list[int], stride: int, fps: float) -> Parts:
        """The clip through the engine's stages on this thread, as one camera per entry of ``starts``
        whose analysed frames are every ``stride``-th frame at ``fps``; call after :meth:`keep_engine`."""
        assert self._engine is not None, "keep_engine() before the station stops"
        if _per_camera_engine():
            return _stages_alone_v3(self._engine, jpegs, starts, stride, fps)
        return _stages_alone_v2(self._engine, jpegs, starts, stride, fps)


def _per_camera_engine() -> bool:
    """Whether the tree under test has engine v3 (``vision.engine.CameraEngine``, one per camera)."""
    import importlib.util

    return importlib.util.find_spec("vision.engine") is not None


def _stages_alone_v3(
    engine: tuple[Any, Any, Any], jpegs: list[bytes], starts: list[int], stride: int, fps: float
) -> Parts:
    """v3: one ``CameraEngine.process`` call per frame (its own face source, tracker, decider and photo model
    as the station assembled them), the engine's stage times beside the process's CPU."""
    engine_mod = importlib.import_module("vision.engine")
    sources = importlib.import_module("vision.face_sources")
    frames_mod = importlib.import_module("vision.frames")
    confirmers = importlib.import_module("vision.photo_confirmer")
    pipeline, service, photo = engine
    config = service.config
    confirmer = None if photo is None else confirmers.PhotoConfirmer(photo.get, photo.model)
    parts = Parts()
    thread0, process0 = time.thread_time(), time.process_time()
    for n, start in enumerate(starts):
        camera = f"parts-{n}"
        one = engine_mod.CameraEngine(
            camera, sources.StationDetection(pipeline), pipeline.embed_crops, config.tracker, confirmer
        )
        for k in range(-(-len(jpegs) // stride)):
            at = k * stride / fps
            jpeg = jpegs[(start + k * stride) % len(jpegs)]
            frame = frames_mod.CameraFrame(camera, k, at, at, jpeg=jpeg)
            outcome = one.process(frame, service.decider, config.live, now=at)
            for stage, seconds in outcome.times.seconds.items():
                parts.stages[stage] = parts.stages.get(stage, 0.0) + seconds
            parts.full_detections += outcome.whole
            parts.embedded += outcome.looks
            parts.frames += 1
        one.flush()
    parts.thread_s = time.thread_time() - thread0
    parts.process_s = time.process_time() - process0
    return parts


class _Clock:
    """Process CPU seconds per stage. Only one thread works while the stages run alone, so the process's
    CPU over a stage is that stage's, the inference runtime's threads (and their spinning) included."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds


def _stages_alone_v2(
    engine: tuple[Any, Any, Any], jpegs: list[bytes], starts: list[int], stride: int, fps: float
) -> Parts:
    """v2 (vision/service.py's ``_recognise`` and ``_detect``, on one thread, without the service). Its imports
    are by name: they are v2's modules, which later trees no longer have."""
    decode_jpeg = importlib.import_module("network.frames").decode_jpeg
    template_decider = importlib.import_module("vision.matcher").template_decider
    FrameRef = importlib.import_module("vision.results").FrameRef
    StageTimes = importlib.import_module("vision.stages").StageTimes
    tracker_mod = importlib.import_module("vision.tracker")
    Tracker, TrackInput = tracker_mod.Tracker, tracker_mod.TrackInput

    pipeline, service, settings = engine
    config = service.config
    decide_inner = template_decider(service.matcher)
    assert decide_inner is not None, "the station had no matcher (nobody enrolled?)"
    clock = _Clock()
    parts = Parts()
    inner: list[float] = []  # process CPU of embed and match inside the tracker's update

    def decide(template: Any) -> Any:
        began = time.process_time()
        try:
            return decide_inner(template)
        finally:
            took = time.process_time() - began
            clock.add("match", took)
            inner.append(took)

    def embed(crops: list[Any]) -> Any:
        began = time.process_time()
        rows = pipeline.embed_crops(crops)
        took = time.process_time() - began
        clock.add("embed", took)
        inner.append(took)
        parts.embedded += len(crops)
        return rows

    def faces_of(image: Any, tracker: Any, at: float, full: bool) -> list[Any]:
        timer = StageTimes()  # the pipeline's own split: align is on this thread, so its thread time is its CPU
        began = time.process_time()
        if full:
            faces = list(pipeline.candidates(image, min_face=settings.min_face_px, timer=timer))
        else:
            hints = tracker.recent_boxes(at, config.hint_age_s)
            refined = (
                pipeline.refine_candidates(image, hints, min_face=settings.min_face_px, timer=timer) if hints else []
            )
            faces = list(refined)
        align = timer.snapshot().seconds.get("align", 0.0)
        clock.add("detect", time.process_time() - began - align)
        clock.add("align", align)
        return faces

    thread0, process0 = time.thread_time(), time.process_time()
    for n, start in enumerate(starts):
        tracker = Tracker(f"parts-{n}", config.tracker)
        since_full: int | None = None
        for k in range(-(-len(jpegs) // stride)):
            jpeg = jpegs[(start + k * stride) % len(jpegs)]
            at = k * stride / fps
            began = time.process_time()
            image = decode_jpeg(jpeg)
            clock.add("decode", time.process_time() - began)
            full = since_full is None or since_full + 1 >= config.full_detect_every
            since_full = 0 if full else (since_full or 0) + 1
            parts.full_detections += full
            faces = faces_of(image, tracker, at, full)
            ref = FrameRef(jpeg, image.shape[1], image.shape[0])
            inputs = [
                TrackInput(f.detection.box, float(f.quality.score), f.crop, f.embedding, f.model, ref) for f in faces
            ]
            inner.clear()
            began = time.process_time()
            tracker.update(inputs, at=at, now=at, embed=embed, decide=decide)
            clock.add("track", max(0.0, time.process_time() - began - sum(inner)))
            parts.frames += 1
        tracker.flush()
    parts.thread_s = time.thread_time() - thread0
    parts.process_s = time.process_time() - process0
    parts.stages = clock.seconds
    return parts
