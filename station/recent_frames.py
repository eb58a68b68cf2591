"""The last few seconds of each camera's frames, bounded in count and bytes, kept as JPEG.

Fed by the receiver's frame listener (``receiver.add_listener(recent)``, on the receive thread: an
append and a few evictions, no decoding) and, where a recogniser runs, by its result listener
(``recogniser.service.add_listener(recent.note_result)``), so each kept frame knows the faces
recognised in it and their tracks. The console steps back through these frames when the frozen one
is poor ("face too small"), picks a track's best frame, and crops alert faces from the frame they
were seen in. Pictures are decoded on demand, by whoever asks, off the GUI thread. No Qt here.

Bounds, all enforced on every append: per camera at most ``max_frames`` frames, ``max_bytes`` bytes
and ``seconds`` of capture time behind its newest frame; over all cameras ``max_total_bytes`` (the
camera holding the most bytes gives up its oldest frame first) and ``max_cameras``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from facefind.boxes import box_iou as box_iou
from network.frames import Frame, decode_jpeg
from vision.faces import Face
from vision.results import FrameResult


@dataclass(frozen=True)
class RecentFrame:
    """One kept frame: its JPEG bytes and, once recognised, its faces (with their track ids)."""

    camera: str
    frame_id: int
    serial: int
    captured_at: float
    jpeg: bytes = field(repr=False)
    faces: tuple[Face, ...] | None = None  # None: not recognised (yet, or skipped)

    @property
    def nbytes(self) -> int:
        return len(self.jpeg)

    def image(self) -> np.ndarray:
        """The decoded BGR picture (decoded anew on each call: call it off the GUI thread)."""
        return decode_jpeg(self.jpeg)

    def crop(self, box: tuple[float, float, float, float], size: int = 96, margin: float = 0.25) -> np.ndarray:
        """The face at ``box`` with a margin, its longer side at most ``size`` (it decodes: off the GUI thread)."""
        image = self.image()
        h, w = image.shape[:2]
        x, y, bw, bh = box
        mx, my = bw * margin, bh * margin
        x0, y0 = max(0, int(x - mx)), max(0, int(y - my))
        x1, y1 = min(w, int(x + bw + mx + 0.5)), min(h, int(y + bh + my + 0.5))
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"the box {box} is outside the {w}x{h} frame")
        face = image[y0:y1, x0:x1]
        scale = size / max(face.shape[:2])
        if scale < 1.0:
            face = cv2.resize(face, (max(1, round(face.shape[1] * scale)), max(1, round(face.shape[0] * scale))))
        return np.ascontiguousarray(face)

    def face_of_track(self, track_id: str) -> Face | None:
        return next((f for f in self.faces or () if f.track_id == track_id), None)


def track_near(
    frames: Sequence[RecentFrame], index: int, box: tuple[float, float, float, float], *, reach: int = 15
) -> str | None:
    """The track of the face at ``box`` in ``frames[index]``: from that frame's recognised faces, else
    from the nearest recognised frames within ``reach`` (recognition skips frames under its rate cap)."""
    order = sorted(range(max(0, index - reach), min(len(frames), index + reach + 1)), key=lambda i: abs(i - index))
    for i in order:
        faces = frames[i].faces
        if not faces:
            continue
        best = max(faces, key=lambda f: box_iou(f.box, box))
        if box_iou(best.box, box) >= 0.3:
            return best.track_id
    return None


def best_of_track(frames: Sequence[RecentFrame], track_id: str) -> tuple[int, Face] | None:
    """The index of the frame where track ``track_id`` had its best quality, and that face."""
    best: tuple[int, Face] | None = None
    for i, f in enumerate(frames):
        face = f.face_of_track(track_id)
        if face is not None and (best is None or face.quality.score > best[1].quality.score):
            best = (i, face)
    return best


@dataclass(frozen=True)
class RecentFramesConfig:
    seconds: float = 6.0
    max_frames: int = 120  # per camera
    max_bytes: int = 12 * 1024 * 1024  # per camera
    max_total_bytes: int = 96 * 1024 * 1024
    max_cameras: int = 64
    max_pending_results: int = 256  # results that arrived before their frame (per camera)

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.max_frames < 1 or self.max_bytes < 1 or self.max_total_bytes < 1:
            raise ValueError("the recent-frames bounds must be positive")
        if self.max_cameras < 1 or self.max_pending_results < 0:
            raise ValueError("the recent-frames camera and result bounds must be positive")


class _Camera:
    __slots__ = ("bytes", "frames", "results")

    def __init__(self) -> None:
        self.frames: deque[RecentFrame] = deque()
        self.bytes = 0
        self.results: OrderedDict[int, tuple[Face, ...]] = OrderedDict()  # frame id -> faces, not yet kept


class RecentFrames:
    """A bounded, thread-safe store of the recent frames of every camera (oldest first per camera)."""

    def __init__(self, config: RecentFramesConfig | None = None) -> None:
        self.config = config or RecentFramesConfig()
        self._lock = threading.Lock()
        self._cameras: OrderedDict[str, _Camera] = OrderedDict()  # least recently fed first
        self._total = 0
        self.evicted = 0

    # ------------------------------------------------------------ feeding

    def __call__(self, frame: Frame) -> None:
        """The receiver's frame listener: keep ``frame``'s JPEG bytes (never its decoded picture)."""
        self.add(frame)

    def add(self, frame: Frame) -> None:
        cfg = self.config
        if len(frame.jpeg) > cfg.max_bytes or len(frame.jpeg) > cfg.max_total_bytes:
            return  # one frame over the whole budget is not kept at all
        with self._lock:
            cam = self._cameras.get(frame.camera)
            if cam is None:
                while len(self._cameras) >= cfg.max_cameras:
                    _, gone = self._cameras.popitem(last=False)
                    self._total -= gone.bytes
                    self.evicted += len(gone.frames)
                cam = self._cameras[frame.camera] = _Camera()
            else:
                self._cameras.move_to_end(frame.camera)
            if (
                cam.frames
                and frame.frame_id <= cam.frames[-1].frame_id
                and frame.captured_at < cam.frames[-1].captured_at
            ):
                cam.frames.clear()  # the sender restarted: its frame ids began again
                self._total -= cam.bytes
                cam.bytes = 0
            faces = cam.results.pop(frame.frame_id, None)
            kept = RecentFrame(frame.camera, frame.frame_id, frame.serial, frame.captured_at, frame.jpeg, faces)
            cam.frames.append(kept)
            cam.bytes += kept.nbytes
            self._total += kept.nbytes
            oldest_allowed = frame.captured_at - cfg.seconds
            while cam.frames and (
                len(cam.frames) > cfg.max_frames
                or cam.bytes > cfg.max_bytes
                or cam.frames[0].captured_at < oldest_allowed
            ):
                self._drop_oldest(cam)
            while self._total > cfg.max_total_bytes:
                biggest = max(self._cameras.values(), key=lambda c: c.bytes)
                self._drop_oldest(biggest)

    def _drop_oldest(self, cam: _Camera) -> None:
        gone = cam.frames.popleft()
        cam.bytes -= gone.nbytes
        self._total -= gone.nbytes
        self.evicted += 1

    def note_result(self, result: FrameResult) -> None:
        """The recogniser's result listener: attach the faces recognised in a kept frame (or one still to come)."""
        with self._lock:
            cam = self._cameras.get(result.camera)
            if cam is None:
                return
            for i in range(len(cam.frames) - 1, -1, -1):
                f = cam.frames[i]
                if f.frame_id == result.frame_id:
                    cam.frames[i] = RecentFrame(f.camera, f.frame_id, f.serial, f.captured_at, f.jpeg, result.faces)
                    return
                if f.frame_id < result.frame_id:
                    break
            if self.config.max_pending_results and (not cam.frames or result.frame_id > cam.frames[-1].frame_id):
                cam.results[result.frame_id] = result.faces
                while len(cam.results) > self.config.max_pending_results:
                    cam.results.popitem(last=False)

    # ------------------------------------------------------------ reading

    def cameras(self) -> list[str]:
        with self._lock:
            return [name for name, cam in self._cameras.items() if cam.frames]

    def frames(self, camera: str) -> list[RecentFrame]:
        """The kept frames of ``camera``, oldest first (a snapshot)."""
        with self._lock:
            cam = self._cameras.get(camera)
            return list(cam.frames) if cam is not None else []

    def get(self, camera: str, frame_id: int) -> RecentFrame | None:
        with self._lock:
            cam = self._cameras.get(camera)
            return next((f for f in reversed(cam.frames) if f.frame_id == frame_id), None) if cam else None

    def latest(self, camera: str) -> RecentFrame | None:
        with self._lock:
            cam = self._cameras.get(camera)
            return cam.frames[-1] if cam is not None and cam.frames else None

    def best_of_track(self, camera: str, track_id: str) -> tuple[RecentFrame, Face] | None:
        """The kept frame where track ``track_id`` had its best quality, and that face."""
        frames = self.frames(camera)
        found = best_of_track(frames, track_id)
        return None if found is None else (frames[found[0]], found[1])

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._total

    def count(self) -> int:
        with self._lock:
            return sum(len(c.frames) for c in self._cameras.values())
