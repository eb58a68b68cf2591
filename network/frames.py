"""Frozen records that cross threads: a received frame, camera stats and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Literal

import cv2
import numpy as np

from network.wire.faces import EdgeFaces


class CameraPresence(StrEnum):
    """A camera event's state (the ``camera`` JSON line's ``state``)."""

    ONLINE = "online"
    OFFLINE = "offline"


class OfflineReason(StrEnum):
    """Why a camera went offline: it said BYE, or it fell silent."""

    BYE = "bye"
    SILENT = "silent"


class DetectAt(StrEnum):
    """Where a camera's faces are found: on the camera host (``udp_sender.py --detect``) or at the station."""

    EDGE = "edge"
    STATION = "station"


class FrameDecodeError(ValueError):
    """A complete, authenticated frame whose JPEG bytes do not decode."""


@dataclass(frozen=True)
class Frame:
    """The newest complete frame of one camera, kept as JPEG until asked for.

    ``serial`` grows by one with every frame the receiver delivers, across all
    cameras, so a consumer can ask for "anything newer than what I saw".
    ``faces`` is set on a frame handed to recognition with the faces its camera found in it
    (``--detect``); the station then skips its own detection for that frame.
    """

    camera: str
    camera_id: int
    frame_id: int
    serial: int
    captured_at: float
    received_at: float
    jpeg: bytes = field(repr=False)
    faces: EdgeFaces | None = field(default=None, repr=False)

    @property
    def latency_ms(self) -> float:
        return (self.received_at - self.captured_at) * 1000.0

    @cached_property
    def image(self) -> np.ndarray:
        """The decoded BGR picture (decoded once, lazily, on first use)."""
        return decode_jpeg(self.jpeg)


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decode JPEG bytes to a BGR array, or raise :class:`FrameDecodeError`."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        raise FrameDecodeError("not a JPEG (missing start-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameDecodeError(f"corrupt JPEG ({len(data)} bytes)")
    return image


@dataclass(frozen=True)
class CameraStats:
    """One camera's figures over the receiver's recent window."""

    camera: str
    address: str
    online: bool
    width: int
    height: int
    announced_fps: float
    fps: float
    kbps: float
    loss: float
    frames: int
    incomplete: int
    recovered: int
    rejected: dict[str, int]
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    last_seen: float
    protocol: int = 1  # what the camera's HELLO said it speaks (2: it may send FACES)
    detect: DetectAt = DetectAt.STATION  # EDGE: the camera finds the faces and sends them
    faces: int = 0  # FACES messages paired with their frame and handed to recognition
    faces_unpaired: int = 0  # FACES messages whose frame never arrived (or was too old)
    edge_fallbacks: int = 0  # times the camera stopped sending faces and the station took detection back
    faces_kbps: float = 0.0  # the FACES share of ``kbps``


@dataclass(frozen=True)
class CameraEvent:
    """A camera came online or went offline (with why)."""

    camera: str
    state: CameraPresence
    address: str
    at: float
    reason: OfflineReason | Literal[""] = ""  # "" for an online event
