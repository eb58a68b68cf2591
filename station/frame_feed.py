"""The receiver's frames as the recognition engine takes them (vision.frames.CameraFrame).

The engine does not know the network layer or its wire format: this adapter turns each received
``network.frames.Frame`` into a ``CameraFrame``, and the faces a camera found itself (the wire's FACES
message, ``network.wire.faces.EdgeFaces``) into ``CameraFaces``. With ``camera_faces`` it waits for the
frames recognition should analyse (an edge camera's frames that come with its faces, any other camera's
frames as they are: ``UdpReceiver.wait_for_analysis``), and counts an edge camera's deliveries by those.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from network.frames import Frame
from network.udp_receiver import UdpReceiver
from network.wire.faces import EdgeFace, EdgeFaces
from vision.frames import CameraFace, CameraFaces, CameraFrame
from vision.types import Detection


def camera_face(face: EdgeFace) -> CameraFace:
    return CameraFace(Detection(face.box, face.landmarks, face.confidence), face.crop, face.crop_rect, face.crop_size)


def camera_faces(faces: EdgeFaces) -> CameraFaces:
    return CameraFaces(faces.stream_size, tuple(camera_face(f) for f in faces.faces))


def camera_frame(frame: Frame) -> CameraFrame:
    """A received frame (its JPEG bytes, not decoded) as the engine's frame."""
    return CameraFrame(
        camera=frame.camera,
        frame_id=frame.frame_id,
        captured_at=frame.captured_at,
        received_at=frame.received_at,
        jpeg=frame.jpeg,
        faces=None if frame.faces is None else camera_faces(frame.faces),
        serial=frame.serial,
    )


class ReceiverFeed:
    """``vision.service.FrameFeed`` over a :class:`UdpReceiver` (see the module docstring)."""

    def __init__(self, receiver: UdpReceiver, *, camera_faces: bool = False) -> None:
        self._receiver = receiver
        self._camera_faces = camera_faces
        self._edge: set[str] = set()  # cameras whose last analysed frame came with their own faces
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []

    def add_listener(self, listener: Callable[[str], None]) -> None:
        with self._lock:
            first = not self._listeners
            self._listeners = [*self._listeners, listener]
        if first:
            self._receiver.add_listener(self._delivered)

    def wait_for_frames(self, after_serial: int, timeout: float) -> list[CameraFrame]:
        if not self._camera_faces:
            return [camera_frame(f) for f in self._receiver.wait_for_frames(after_serial, timeout)]
        frames = self._receiver.wait_for_analysis(after_serial, timeout)
        with self._lock:
            self._edge = (self._edge | {f.camera for f in frames if f.faces is not None}) - {
                f.camera for f in frames if f.faces is None
            }
            listeners = self._listeners
        for frame in frames:
            if frame.faces is not None:  # an edge camera's frames count when they come with its faces
                for listener in listeners:
                    listener(frame.camera)
        return [camera_frame(f) for f in frames]

    def _delivered(self, frame: Frame) -> None:
        """Receive thread: a station-detected camera's frame counts as it arrives."""
        with self._lock:
            if frame.camera in self._edge:
                return
            listeners = self._listeners
        for listener in listeners:
            listener(frame.camera)
