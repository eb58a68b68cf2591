"""What every embedding back-end shares: its identity, its crop template, and unit-length output."""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt

from vision.align import Template
from vision.types import FloatArray, VisionError


def l2_normalise(rows: npt.NDArray[np.floating]) -> FloatArray:
    """Rows scaled to unit length (float32); an all-zero row stays zero rather than NaN."""
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)


class BaseEmbedder(ABC):
    """A :class:`vision.types.Embedder` with a template and a calibrated verification threshold.

    ``verification_threshold`` is the cosine similarity at or above which two faces are taken to be
    the same person (1:1); ``default_threshold`` is the higher one vision.matcher uses for 1:N
    identification, where a stranger meets every enrolled sample at once. How each was measured is
    in :mod:`vision.calibration`. ``batch_size`` bounds one
    forward pass. ``embed`` is thread-safe: one forward pass at a time per model, unless the
    back-end sets ``concurrent`` (its forward passes may run in several threads at once).
    """

    name: str
    dim: int
    crop_size: int
    template: Template
    verification_threshold: float
    default_threshold: float
    # 1:N: how far the best person must beat the runner-up, in this model's own score units (dlib's
    # cosines spread over a quarter of FaceNet's range, so one margin cannot serve every model).
    default_margin: float = 0.05
    batch_size: int = 32
    concurrent: bool = False

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def embed(self, crops: npt.NDArray[np.uint8]) -> FloatArray:
        if crops.ndim != 4 or crops.shape[1:] != (self.crop_size, self.crop_size, 3) or crops.dtype != np.uint8:
            raise ValueError(
                f"{self.name} expects (N, {self.crop_size}, {self.crop_size}, 3) uint8 BGR crops, "
                f"got {crops.dtype} {crops.shape}"
            )
        if len(crops) == 0:
            return np.empty((0, self.dim), np.float32)
        parts = []
        with contextlib.nullcontext() if self.concurrent else self._lock:
            for start in range(0, len(crops), self.batch_size):
                parts.append(self._forward(crops[start : start + self.batch_size]))
        out = l2_normalise(np.concatenate(parts))
        if out.shape != (len(crops), self.dim):
            raise VisionError(f"{self.name} returned {out.shape}, expected ({len(crops)}, {self.dim})")
        return out

    def warm_up(self) -> None:
        """Run one forward pass so the first real call is not slow."""
        self.embed(np.full((1, self.crop_size, self.crop_size, 3), 128, np.uint8))

    @abstractmethod
    def _forward(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.floating]:
        """Raw (not yet normalised) embeddings of at most ``batch_size`` BGR crops."""
