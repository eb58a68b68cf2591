"""MTCNN face detection, faster than the ``mtcnn`` package's own ``detect_faces`` with the same weights.

The P/R/O-Net weights are the ones shipped inside ``mtcnn`` 1.0, and the stage maths follow that
package, so recall is the same. The networks run on one of two runtimes (vision.runtimes):
OpenVINO (vision.mtcnn_ov, the default where it loads) or TensorFlow (vision.mtcnn_tf); both take
the same normalised frame and give the same boxes. It is faster than ``detect_faces`` because:

* each network is compiled once (TF: one shape-polymorphic ``tf.function``; OpenVINO: compiled
  models, P-Net per pyramid shape), with no Keras eager dispatch per call;
* the pyramid is built with OpenCV's area resize, and on large photos starts at a minimum face
  size relative to the image (4% of the shorter side), so a 2000 px photo costs little more
  than a 640 px frame;
* R-Net/O-Net patches are cut in one batch per stage (TF ``crop_and_resize``, OpenCV ``remap``);
* non-maximum suppression is a greedy numpy loop instead of an N×N matrix.

Thresholds: a face is kept at O-Net confidence >= ``min_confidence`` (0.9 by default; DESIGN.md
notes a 14×17 px false face at 0.82 on a group photo) and side >= the minimum face size.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from vision.mtcnn_tf import TfNets
from vision.ov_runtime import CpuSettings
from vision.ov_runtime import native as ov_native
from vision.runtimes import Runtime, requested, warn_fallback
from vision.types import Detection, ImageBGR, Landmarks, VisionError

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

# The TensorFlow nets under their old name (tests check they never retrace).
_Nets = TfNets


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


def _square(boxes: F64) -> F64:
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


def _regress(boxes: F64, offsets: F64) -> F64:
    w = boxes[:, 2] - boxes[:, 0] + 1.0
    h = boxes[:, 3] - boxes[:, 1] + 1.0
    return boxes + offsets * np.stack([w, h, w, h], axis=1)


class MtcnnNets(Protocol):
    """One runtime's three MTCNN networks; arrays in and out, the stage maths stay in the detector."""

    runtime: str

    def warm_up(self) -> None: ...
    def prepare(self, rgb: F32) -> Any: ...
    def run_pnet(self, level: F32) -> tuple[F32, F32]: ...
    def run_rnet(self, image: Any, boxes: F64, height: int, width: int) -> tuple[F32, F32]: ...
    def run_onet(self, image: Any, boxes: F64, height: int, width: int) -> tuple[F32, F32, F32]: ...


def load_nets(runtime: Runtime | None, cpu: CpuSettings | None = None) -> MtcnnNets:
    """The shared nets of ``runtime``; None is OpenVINO, falling back to TensorFlow with one log line."""
    if runtime == "tf":
        return TfNets.get()
    from vision.mtcnn_ov import OvNets

    if runtime == "openvino":
        return OvNets.get(cpu)
    try:
        return OvNets.get(cpu)
    except VisionError as exc:
        warn_fallback("face detector", str(exc))
        return TfNets.get()


class MtcnnDetector:
    """The default :class:`vision.types.Detector`: MTCNN boxes, five landmarks and a confidence.

    ``runtime`` is "openvino", "tf" or None (``$FACESTATION_RUNTIME``, else OpenVINO where it loads;
    see vision.runtimes); ``cpu`` sets OpenVINO's threads and streams (default from the environment).
    Thread-safe; the networks load on the first ``detect`` (or :meth:`warm_up`) and are shared.
    """

    def __init__(
        self, config: DetectorConfig | None = None, runtime: str | None = None, cpu: CpuSettings | None = None
    ) -> None:
        self.config = config or DetectorConfig()
        self._requested = requested(runtime)
        self._cpu = cpu
        self._nets: MtcnnNets | None = None
        self._lock = threading.Lock()

    @property
    def nets(self) -> MtcnnNets:
        """The networks this detector runs (loaded on first use)."""
        if self._nets is None:
            with self._lock:
                if self._nets is None:
                    self._nets = load_nets(self._requested, self._cpu)
        return self._nets

    @property
    def runtime(self) -> str:
        """The runtime in use, "openvino" or "tf" (loads the networks)."""
        return self.nets.runtime

    def warm_up(self) -> None:
        """Load and compile the networks now, so the first real frame is not slow."""
        self.nets.warm_up()

    def detect(self, image: ImageBGR) -> list[Detection]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an H×W×3 uint8 BGR image, got {image.dtype} {image.shape}")
        if min(image.shape[:2]) < 12:
            return []
        nets = self.nets
        # OpenVINO's runtime keeps the process from exiting while a thread is in this native work
        with ov_native.call() if nets.runtime == "openvino" else contextlib.nullcontext():
            return self._detect(nets, image)

    def _detect(self, nets: MtcnnNets, image: ImageBGR) -> list[Detection]:
        height, width = image.shape[:2]
        cfg = self.config
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)
        rgb -= 127.5
        rgb *= 1.0 / 128.0

        boxes = self._pnet_stage(nets, rgb, cfg.effective_min_face(height, width))
        if len(boxes) == 0:
            return []
        prepared = nets.prepare(rgb)
        boxes = self._rnet_stage(nets, prepared, boxes, height, width)
        if len(boxes) == 0:
            return []
        return self._onet_stage(nets, prepared, boxes, height, width)

    # -- stages -------------------------------------------------------------------------------

    def _pnet_stage(self, nets: MtcnnNets, rgb: F32, min_face: float) -> F64:
        cfg = self.config
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
        allb[:, :4] = _square(allb[:, :4])
        return allb

    def _rnet_stage(self, nets: MtcnnNets, prepared: Any, boxes: F64, height: int, width: int) -> F64:
        reg_raw, prob_raw = nets.run_rnet(prepared, boxes[:, :4], height, width)
        prob = prob_raw.astype(np.float64)
        ok = prob > self.config.rnet_threshold
        if not ok.any():
            return np.empty((0, 5))
        moved = _regress(boxes[ok, :4], reg_raw[ok].astype(np.float64))
        scores = prob[ok]
        keep = nms(moved, scores, 0.7)
        return np.concatenate([_square(moved[keep]), scores[keep, None]], axis=1)

    def _onet_stage(self, nets: MtcnnNets, prepared: Any, boxes: F64, height: int, width: int) -> list[Detection]:
        cfg = self.config
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
        moved = _regress(src, reg_raw[ok].astype(np.float64))
        scores = prob[ok]
        keep = nms(moved, scores, 0.7, method="min")
        min_face = cfg.effective_min_face(height, width)
        out: list[Detection] = []
        for i in keep:
            x1 = float(np.clip(moved[i, 0], 0, width - 1))
            y1 = float(np.clip(moved[i, 1], 0, height - 1))
            x2 = float(np.clip(moved[i, 2], 0, width - 1))
            y2 = float(np.clip(moved[i, 3], 0, height - 1))
            if max(x2 - x1, y2 - y1) < min_face * 0.8:
                continue
            pts = tuple((float(lx[i, k]), float(ly[i, k])) for k in range(5))
            landmarks: Landmarks = (pts[0], pts[1], pts[2], pts[3], pts[4])
            out.append(Detection(box=(x1, y1, x2 - x1, y2 - y1), landmarks=landmarks, confidence=float(scores[i])))
        return out


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
