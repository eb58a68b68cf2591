"""Frozen records the recognition service hands to other threads: per-frame results and per-camera stats."""

from __future__ import annotations

from dataclasses import dataclass

from vision.faces import Face


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything recognised in one frame; ``latency_ms`` runs from capture (sender clock) to ``recognised_at``.
    Its faces carry their tracks and decisions, without their pixels."""

    camera: str
    frame_id: int
    captured_at: float
    faces: tuple[Face, ...]
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
    detect: str = "station"  # where the last analysed frame's faces were found: a vision.face_sources.FoundBy
    edge_frames: int = 0  # frames analysed from the camera's own faces and crops
    edge_fallbacks: int = 0  # frames with faces whose crops failed, detected at the station instead
    full_detections: int = 0  # frames searched whole (the others only near the live tracks' faces)
    confirmed: int = 0  # live names the photo model confirmed
    refused: int = 0  # live proposals the photo model refused (those tracks stayed unknown)
