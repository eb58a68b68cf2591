"""The records and interfaces that vision parts hand each other, and hand to other threads.

Images are always OpenCV's native BGR ``uint8`` arrays (what ``network.frames.decode_jpeg``
and ``cv2.imread`` give), so enrolment from a file and live frames share one code path.
Boxes are ``(x, y, w, h)`` in pixels of the image they were found in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
ImageBGR = npt.NDArray[np.uint8]

Box = tuple[float, float, float, float]
Point = tuple[float, float]
# Five landmarks in MTCNN's order: left eye, right eye, nose, mouth left, mouth right
# ("left" is the left of the picture, the subject's right).
Landmarks = tuple[Point, Point, Point, Point, Point]


class VisionError(RuntimeError):
    """A vision part cannot work: a missing package or weight file, a broken model.

    The message names the package or file and says what to do; it is shown to the user as is.
    """


@dataclass(frozen=True, slots=True)
class Detection:
    """One face found in one image."""

    box: Box
    landmarks: Landmarks
    confidence: float


class Detector(Protocol):
    """Finds faces in a BGR image."""

    def detect(self, image: ImageBGR) -> list[Detection]: ...


class Embedder(Protocol):
    """Turns aligned face crops into unit-length embeddings.

    ``name`` is stored with every embedding; embeddings of different names are never compared.
    ``crop_size`` is the side of the square aligned crop the model expects.
    """

    name: str
    dim: int
    crop_size: int

    def embed(self, crops: npt.NDArray[np.uint8]) -> FloatArray:
        """(N, crop_size, crop_size, 3) BGR crops -> (N, dim) float32 rows of unit length."""
        ...
