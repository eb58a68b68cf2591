"""Frozen records the recognition service hands to other threads: per-frame results and per-camera stats."""

from __future__ import annotations

from dataclasses import dataclass

from vision.types import Box, Landmarks


@dataclass(frozen=True, slots=True)
class FaceResult:
    """One face of one recognised frame.

    ``person_id``/``person`` are the track's identity voted so far (stable while the track lives);
    ``score`` is this frame's best match score, which may be below the threshold.
    """

    box: Box
    landmarks: Landmarks
    track_id: str
    person_id: int | None
    person: str | None
    score: float
    watchlist: bool
    confidence: float = 1.0
    quality: float = 0.0


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything recognised in one frame; ``latency_ms`` runs from capture (sender clock) to ``recognised_at``."""

    camera: str
    frame_id: int
    captured_at: float
    faces: tuple[FaceResult, ...]
    latency_ms: float
    recognised_at: float


@dataclass(frozen=True, slots=True)
class RecognitionStats:
    """One camera's recognition figures.

    ``fps`` is frames recognised per second over the recent window; ``dropped`` counts frames the
    receiver delivered that recognition skipped because a newer one had arrived (newest frame wins);
    ``errors`` counts frames that failed (a corrupt JPEG, an exception in the analysis).
    """

    camera: str
    fps: float
    recognised: int
    dropped: int
    errors: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    live_tracks: int
    last_error: str = ""
