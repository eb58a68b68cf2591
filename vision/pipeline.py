"""One code path from a BGR image to embedded faces, for enrolment photos and live frames alike.

image → detect (MTCNN) → align (5-point similarity to the embedder's template) → quality → embed
(one batched pass for all faces of the image). The prototype this project replaces preprocessed
enrolment and live frames differently, so their embeddings did not compare; here both call
:meth:`FacePipeline.observe`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from vision.align import align
from vision.detector import MtcnnDetector
from vision.embedders import load_embedder
from vision.embedders.base import BaseEmbedder
from vision.faces import Face
from vision.frames import CameraFaces
from vision.quality import Quality, measure
from vision.stages import Stage, StageClock
from vision.types import Box, Detection, FloatArray, ImageBGR, Landmarks

# Where MTCNN puts the five landmarks inside its own box, as fractions of the box's width and height
# (mean over the identities photos, vision.calibration templates → "box"). Used to give a
# fallback box (no face detected) the same alignment path as a detection.
BOX_LANDMARKS: tuple[tuple[float, float], ...] = (
    (0.279, 0.389),
    (0.731, 0.381),
    (0.509, 0.585),
    (0.316, 0.756),
    (0.716, 0.749),
)


@dataclass(frozen=True, slots=True)
class FaceObservation:
    """One face in one image: where, how good, its aligned crop (BGR) and its unit embedding.

    ``model`` names the embedder; embeddings of different models are never compared. A detection
    with confidence 0 is a fallback box, not something the detector found (see ``detected``).
    """

    detection: Detection
    quality: Quality
    crop: ImageBGR
    embedding: FloatArray
    model: str

    @property
    def detected(self) -> bool:
        return self.detection.confidence > 0.0


def landmarks_in_box(box: tuple[float, float, float, float]) -> Landmarks:
    """Typical MTCNN landmarks for a face box (for a box drawn by hand or a fallback box)."""
    x, y, w, h = box
    pts = [(x + fx * w, y + fy * h) for fx, fy in BOX_LANDMARKS]
    return (pts[0], pts[1], pts[2], pts[3], pts[4])


def central_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The fixed fallback face box: centred, 40% of the width and 48% of the height (an LFW face)."""
    w, h = 0.40 * width, 0.48 * height
    return ((width - w) / 2.0, (height - h) / 2.0 - 0.02 * height, w, h)


def read_image(path: Path) -> ImageBGR | None:
    """A photo file as a BGR uint8 array (the same form as a decoded frame), or None if unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else np.asarray(image, dtype=np.uint8)


class LiveDetector(Protocol):
    """What the pipeline needs of a detector (``vision.detector.MtcnnDetector``): a whole search from a
    minimum face size up, and the cheap look near given boxes between whole searches."""

    def detect(self, image: ImageBGR) -> list[Detection]: ...
    def detect_at_least(self, image: ImageBGR, min_face: float) -> list[Detection]: ...
    def refine(self, image: ImageBGR, hints: Sequence[Box], min_face: float = 0.0) -> list[Detection]: ...
    def warm_up(self) -> None: ...


class FacePipeline:
    """Detector + embedder; thread-safe if both are (the defaults are).

    The live engine's face sources (vision/face_sources.py) call :meth:`candidates`,
    :meth:`refine_candidates` and :meth:`camera_candidates` for faces not yet embedded, and
    :meth:`embed_crops` for the ones its tracker chooses; photos go through :meth:`observe` and friends.
    """

    def __init__(self, detector: LiveDetector | None = None, embedder: BaseEmbedder | None = None) -> None:
        self.detector: LiveDetector = detector if detector is not None else MtcnnDetector()
        self.embedder: BaseEmbedder = embedder if embedder is not None else load_embedder()

    @property
    def model(self) -> str:
        return self.embedder.name

    def warm_up(self) -> None:
        self.detector.warm_up()
        self.embedder.warm_up()

    def observe(self, image: ImageBGR) -> list[FaceObservation]:
        """Every face the detector finds in ``image``, aligned, measured and embedded."""
        return self.observe_detections(image, self.detector.detect(image))

    def candidates(self, image: ImageBGR, *, min_face: float = 0.0, clock: StageClock | None = None) -> list[Face]:
        """Every face of at least ``min_face`` px (its shorter side), aligned and measured, not embedded."""
        began = time.thread_time()
        found = self.detector.detect_at_least(image, min_face) if min_face > 0 else self.detector.detect(image)
        detections = [d for d in found if min(d.box[2], d.box[3]) >= min_face]
        return self._candidates(image, detections, began, clock)

    def refine_candidates(
        self, image: ImageBGR, hints: Sequence[Box], *, min_face: float = 0.0, clock: StageClock | None = None
    ) -> list[Face]:
        """:meth:`candidates` of the faces near ``hints`` only (where faces were a frame ago): the cheap
        step between full detections (vision/detector.py ``refine``)."""
        began = time.thread_time()
        detections = [d for d in self.detector.refine(image, hints, min_face) if min(d.box[2], d.box[3]) >= min_face]
        return self._candidates(image, detections, began, clock)

    def _candidates(
        self, image: ImageBGR, detections: list[Detection], began: float, clock: StageClock | None
    ) -> list[Face]:
        aligned = time.thread_time()
        template = self.embedder.template
        out = []
        for d in detections:
            crop = align(image, d.landmarks, template)
            out.append(Face(detection=d, quality=measure(d, crop), model=self.embedder.name, crop=crop))
        if clock is not None:
            clock.add(Stage.DETECT, aligned - began)
            clock.add(Stage.ALIGN, time.thread_time() - aligned, len(out))
        return out

    def camera_candidates(
        self, faces: CameraFaces, *, min_face: float = 0.0, clock: StageClock | None = None
    ) -> list[Face]:
        """:meth:`candidates` for the faces a camera found itself and sent as crops (vision/edge.py): no
        detection here; the crops are decoded, aligned and measured. FrameDecodeError for a bad crop."""
        from vision.edge import camera_candidates

        began = time.thread_time()
        out = camera_candidates(faces, self.embedder.template, self.embedder.name, min_face=min_face)
        if clock is not None:
            clock.add(Stage.ALIGN, time.thread_time() - began, len(out))
        return out

    def embed_crops(self, crops: Sequence[ImageBGR]) -> FloatArray:
        """Unit embeddings of aligned crops, one batched pass: (N, dim)."""
        if not crops:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return self.embedder.embed(np.stack(crops))

    def observe_detections(self, image: ImageBGR, detections: list[Detection]) -> list[FaceObservation]:
        """Align, measure and embed given detections (e.g. a box drawn by an operator)."""
        if not detections:
            return []
        template = self.embedder.template
        crops = [align(image, d.landmarks, template) for d in detections]
        embeddings = self.embedder.embed(np.stack(crops))
        return [
            FaceObservation(
                detection=d, quality=measure(d, crop), crop=crop, embedding=embeddings[i], model=self.embedder.name
            )
            for i, (d, crop) in enumerate(zip(detections, crops, strict=True))
        ]

    def observe_box(self, image: ImageBGR, box: tuple[float, float, float, float]) -> FaceObservation:
        """The face in a hand-drawn box: detected inside it when possible, else the box itself."""
        x, y, w, h = box
        inside = [d for d in self.detector.detect(image) if _centre_inside(d.box, box)]
        if inside:
            best = max(inside, key=lambda d: d.confidence)
            return self.observe_detections(image, [best])[0]
        fallback = Detection(box=(x, y, w, h), landmarks=landmarks_in_box(box), confidence=0.0)
        return self.observe_detections(image, [fallback])[0]

    def central_face(self, image: ImageBGR) -> FaceObservation:
        """The detected face nearest the centre, or the fixed central box when none is found."""
        return self.central_faces([image])[0]

    def central_faces(self, images: list[ImageBGR]) -> list[FaceObservation]:
        """:meth:`central_face` of each image, with the embeddings computed in batches."""
        chosen = [self._central_detection(image) for image in images]
        template = self.embedder.template
        crops = [align(image, d.landmarks, template) for image, d in zip(images, chosen, strict=True)]
        if not crops:
            return []
        embeddings = self.embedder.embed(np.stack(crops))
        return [
            FaceObservation(detection=d, quality=measure(d, crop), crop=crop, embedding=e, model=self.embedder.name)
            for d, crop, e in zip(chosen, crops, embeddings, strict=True)
        ]

    def _central_detection(self, image: ImageBGR) -> Detection:
        height, width = image.shape[:2]
        detections = self.detector.detect(image)
        if detections:
            cx, cy = width / 2.0, height / 2.0
            return min(detections, key=lambda d: np.hypot(d.box[0] + d.box[2] / 2 - cx, d.box[1] + d.box[3] / 2 - cy))
        box = central_box(width, height)
        return Detection(box=box, landmarks=landmarks_in_box(box), confidence=0.0)


def _centre_inside(inner: tuple[float, float, float, float], outer: tuple[float, float, float, float]) -> bool:
    cx, cy = inner[0] + inner[2] / 2.0, inner[1] + inner[3] / 2.0
    return outer[0] <= cx <= outer[0] + outer[2] and outer[1] <= cy <= outer[1] + outer[3]
