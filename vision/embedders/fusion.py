"""FaceNet and dlib's ResNet fused into one model, ``fusion-640``: 512 + 128 dimensions, one cosine.

Why one model: the two networks make different mistakes, so the weighted sum of their cosines
separates people better than either (bench/accuracy.py). A weighted sum of two cosines is exactly
the cosine of the normalised concatenation ``[sqrt(w) * e_facenet, sqrt(1 - w) * e_dlib]`` (both
parts are unit vectors, so the concatenation already has unit length), so the fused embedding works
with the vectorised matcher and the gallery unchanged, with its own name, dimension and
calibration; it is never compared with either part's embeddings.

One crop, two inputs: the pipeline aligns one crop per face to ``template``. Here that is a
"master" crop, FaceNet's own framing made square and sampled at 1.275 px per FaceNet unit (the
finer of what the two models need), so both inputs are cut from it by fixed warps: FaceNet's is an
exact re-sampling of its direct alignment (a similarity fit commutes with a similarity of its
target), dlib's chip is the master mapped onto dlib's template by the fit between the two
templates (within a fraction of a pixel of aligning to it directly; bench/accuracy.py measures both).

The weight is the z-score rule (each cosine divided by the spread of its different-person scores,
which for unit weights sum is a weight proportional to 1/sigma; offsets only move the threshold),
measured on the calibration photos (vision.calibration ``fusion_weight``). Test-time flip (the mean
of a crop's and its mirror image's embeddings) was measured and is not used: it doubles the cost
and did not clearly help the fusion (bench/accuracy.py).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from vision.align import DLIB_TEMPLATE, FACENET_TEMPLATE, Template, similarity_transform
from vision.embedders.base import BaseEmbedder
from vision.embedders.calibrated import FUSION_640
from vision.types import FloatArray

MASTER_SIZE = 204
_SCALE = MASTER_SIZE / FACENET_TEMPLATE.size  # master pixels per unstretched FaceNet unit


def _unstretched(template: Template) -> npt.NDArray[np.float64]:
    points = template.array()
    centre = template.size / 2.0
    points[:, 0] = (points[:, 0] - centre) / template.x_stretch + centre
    return points


MASTER_TEMPLATE = Template(
    size=MASTER_SIZE,
    points=tuple((round(float(x) * _SCALE, 2), round(float(y) * _SCALE, 2)) for x, y in _unstretched(FACENET_TEMPLATE)),
)


def _facenet_from_master() -> npt.NDArray[np.float64]:
    """Master pixel → FaceNet input pixel: undo the master's scale, then FaceNet's horizontal stretch."""
    s, c = FACENET_TEMPLATE.x_stretch, FACENET_TEMPLATE.size / 2.0
    return np.array([[s / _SCALE, 0.0, c * (1.0 - s)], [0.0, 1.0 / _SCALE, 0.0]])


def _dlib_from_master() -> npt.NDArray[np.float64]:
    """Master pixel → dlib chip pixel: the least-squares similarity between the two templates' points."""
    return similarity_transform(MASTER_TEMPLATE.array(), DLIB_TEMPLATE.array())


FACENET_WARP = _facenet_from_master()
DLIB_WARP = _dlib_from_master()


def sub_crops(masters: npt.NDArray[np.uint8], warp: npt.NDArray[np.float64], size: int) -> npt.NDArray[np.uint8]:
    """Each master crop warped to one part's input (size × size BGR)."""
    out = [
        cv2.warpAffine(m, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for m in masters
    ]
    return np.ascontiguousarray(np.stack(out), dtype=np.uint8)


class FusionEmbedder(BaseEmbedder):
    """``fusion-640``: FaceNet-512 and dlib-128 from one master crop, cosines weighted ``facenet_weight`` : rest."""

    name = "fusion-640"
    dim = 640
    crop_size = MASTER_SIZE
    template = MASTER_TEMPLATE
    facenet_weight = FUSION_640.facenet_weight
    verification_threshold = FUSION_640.verification_threshold
    default_threshold = FUSION_640.identification_threshold
    default_margin = FUSION_640.margin
    batch_size = 32

    def __init__(self, facenet: BaseEmbedder | None = None, dlib: BaseEmbedder | None = None) -> None:
        super().__init__()
        from vision.embedders import load_embedder

        self.facenet = facenet if facenet is not None else load_embedder("facenet-512")
        self.dlib = dlib if dlib is not None else load_embedder("dlib-128")
        self._weights = (math.sqrt(self.facenet_weight), math.sqrt(1.0 - self.facenet_weight))

    def parts(self, masters: npt.NDArray[np.uint8]) -> tuple[FloatArray, FloatArray]:
        """The two unit part embeddings of master crops (FaceNet's, dlib's): for tests and the bench."""
        f = self.facenet.embed(sub_crops(masters, FACENET_WARP, self.facenet.crop_size))
        d = self.dlib.embed(sub_crops(masters, DLIB_WARP, self.dlib.crop_size))
        return f, d

    def _forward(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.floating]:
        f, d = self.parts(crops)
        return np.concatenate([self._weights[0] * f, self._weights[1] * d], axis=1)
