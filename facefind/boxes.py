"""The one intersection-over-union of (x, y, w, h) boxes that the project uses: detection, tracking, the console.

In ``facefind/`` because the camera host's ``--detect`` needs it too, and facefind imports nothing of the
project. :func:`iou_matrix` is the vectorised form (the tracker links every face with every track at once);
:func:`box_iou` is one pair of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Box = tuple[float, float, float, float]
F32 = npt.NDArray[np.float32]


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> F32:
    """Pairwise intersection over union, shape (len(a), len(b)); 0 where a box has no area."""
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    pa = np.asarray(a, dtype=np.float64)[:, None, :]
    pb = np.asarray(b, dtype=np.float64)[None, :, :]
    ix = np.clip(
        np.minimum(pa[..., 0] + pa[..., 2], pb[..., 0] + pb[..., 2]) - np.maximum(pa[..., 0], pb[..., 0]), 0, None
    )
    iy = np.clip(
        np.minimum(pa[..., 1] + pa[..., 3], pb[..., 1] + pb[..., 3]) - np.maximum(pa[..., 1], pb[..., 1]), 0, None
    )
    inter = ix * iy
    union = pa[..., 2] * pa[..., 3] + pb[..., 2] * pb[..., 3] - inter
    out: F32 = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0).astype(np.float32)
    return out


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (one cell of :func:`iou_matrix`)."""
    return float(iou_matrix([a], [b])[0, 0])


def _overlap(
    a0: npt.NDArray[np.float64], aw: npt.NDArray[np.float64], b0: npt.NDArray[np.float64], bw: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The length two intervals [a0, a0 + aw] and [b0, b0 + bw] share along one axis (0 when apart)."""
    out: npt.NDArray[np.float64] = np.clip(np.minimum(a0 + aw, b0 + bw) - np.maximum(a0, b0), 0, None)
    return out
