"""Frozen records the recognition service hands to other threads: per-frame results and per-camera stats."""

from __future__ import annotations

from dataclasses import dataclass

from vision.types import Box, ImageBGR, Landmarks


@dataclass(frozen=True, slots=True)
class FaceResult:
    """One face of one recognised frame.

    ``person_id``/``person`` are the track's identity decided so far from its template (vision/tracker.py);
    ``score`` is that decision's score (the best person's, which may be below the threshold; ``NO_SCORE``
    when nobody is enrolled). ``decided`` is False until the track's first face was embedded;
    ``embedded`` says whether, and why, this frame's face was embedded ("new", "better", "recheck").
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
    decided: bool = True
    embedded: str | None = None


@dataclass(frozen=True, slots=True)
class FrameRef:
    """The whole frame a face was seen in, kept as its JPEG bytes (a track's best moment, for the
    sighting's evidence snapshot); ``image`` instead where there is no JPEG (recorded footage)."""

    jpeg: bytes | None
    width: int
    height: int
    image: ImageBGR | None = None


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
    first_decision_ms_p50: float | None = None  # from a new track's first frame arriving to its first decision
    first_decision_ms_p95: float | None = None
    embedded: int = 0  # faces embedded since the start (the tracker embeds only what adds information)
    detect: str = "station"  # where the last analysed frame's faces were found: "edge" (the camera) or "station"
    edge_frames: int = 0  # frames analysed from the camera's own faces and crops
    edge_fallbacks: int = 0  # frames with faces whose crops failed, detected at the station instead
    full_detections: int = 0  # frames searched whole (the others only near the live tracks' faces)
