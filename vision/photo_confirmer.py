"""The photo model where an engine runs: it looks again at a track's best moments to confirm a proposed name.

Each moment's face is aligned afresh from its original frame (the JPEG as it came, or recorded footage's
pixels) to the photo model's own template, so the confirmation sees what an enrolment photo would, not
the live model's crop. The pipeline is asked for on first use (the station loads its photo model lazily).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vision.evidence import Moment
from vision.pipeline import FacePipeline
from vision.types import FloatArray


class PhotoConfirmer:
    """A :class:`vision.decision.Confirmer` over a face pipeline of the photo model (``fusion-640``)."""

    def __init__(self, pipeline: Callable[[], FacePipeline], model: str) -> None:
        self._pipeline = pipeline
        self._model = model

    @property
    def model(self) -> str:
        return self._model

    def embed_moments(self, moments: Sequence[Moment]) -> FloatArray | None:
        pipeline = self._pipeline()
        rows: list[FloatArray] = []
        for moment in moments:
            image = None if moment.frame is None else moment.frame.pixels()
            if image is not None:
                rows.extend(o.embedding for o in pipeline.observe_detections(image, [moment.detection]))
        return np.stack(rows) if rows else None
