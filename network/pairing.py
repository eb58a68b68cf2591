"""One camera's FACES at the station: reassembly, pairing with the frame they describe, and the edge mode.

A camera host that detects (``--detect``) sends each FACES message after the frame it describes
(detection takes a while), so the receiver keeps that camera's last few delivered frames, bounded
in count and age, and pairs a completed FACES message with its frame by frame id; a message that
arrives first (its frame was late) waits, bounded, for its frame. A paired frame goes to
recognition with the camera's faces, and the camera is then in **edge** mode: the station skips
its own detection for it and its frames without faces are shown but not analysed. When no FACES
message has paired for ``timeout`` seconds (a station restart, a sender whose detector stopped,
every message garbled), the camera falls back to **station** mode, counted, and every frame is
analysed by the station's detector again. Receive thread only: no locks here.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from network.frames import Frame
from network.wire.faces import EdgeFaces, parse_faces
from network.wire.header import Header, Reason, Rejection
from network.wire.reassembly import ReassemblyWindow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairingConfig:
    max_in_flight: int = 4  # FACES messages being reassembled at once
    recent_frames: int = 16  # delivered frames kept for pairing (about a second at 15 fps)
    recent_s: float = 2.0  # ... and no older than this
    pending: int = 4  # completed FACES messages waiting for their frame
    timeout_s: float = 2.0  # edge mode lapses after this long without a paired message


class CameraFaces:
    """The FACES state of one camera; see the module docstring."""

    def __init__(self, camera: str, config: PairingConfig | None = None) -> None:
        self.camera = camera
        self.config = config or PairingConfig()
        self.messages = ReassemblyWindow(self.config.max_in_flight, "FACES")
        self.recent: OrderedDict[int, Frame] = OrderedDict()
        self.pending: OrderedDict[int, EdgeFaces] = OrderedDict()
        self.edge = False
        self.last_paired = 0.0
        self.paired = 0
        self.unpaired = 0
        self.fallbacks = 0

    @property
    def last_complete(self) -> int:
        """The id of the last FACES message reassembled (its late chunks, and older ones, are ignored)."""
        return self.messages.last_complete

    @last_complete.setter
    def last_complete(self, frame_id: int) -> None:
        self.messages.last_complete = frame_id

    @property
    def incomplete(self) -> int:
        """FACES messages dropped before they were complete."""
        return self.messages.incomplete

    def reset(self) -> None:
        """A new sender session (frame ids start again) or the camera went offline."""
        self.messages.reset()
        self.recent.clear()
        self.unpaired += len(self.pending)
        self.pending.clear()
        self.edge = False

    def chunk(
        self, header: Header, payload: bytes, now: float, stream_size: tuple[int, int]
    ) -> EdgeFaces | Rejection | None:
        """Add a FACES or FACES_PARITY chunk; the parsed message (or why it was refused) once complete."""
        done = self.messages.add(header, payload, now)
        if done is None or isinstance(done, Rejection):
            return done
        parsed = parse_faces(done.frame_id, done.data)
        if isinstance(parsed, Rejection):
            return Rejection(parsed.reason, parsed.detail, header.camera_id)
        if stream_size[0] and parsed.stream_size != stream_size:
            detail = f"faces for a {parsed.stream_size[0]}x{parsed.stream_size[1]} frame; the camera streams "
            return Rejection(Reason.MALFORMED, detail + f"{stream_size[0]}x{stream_size[1]}", header.camera_id)
        return parsed

    def pair(self, faces: EdgeFaces, last_delivered: int) -> Frame | None:
        """The frame ``faces`` describe, or None: kept waiting for it, or counted as unpaired."""
        frame = self.recent.pop(faces.frame_id, None)
        if frame is not None:
            return frame
        if faces.frame_id > last_delivered:  # its frame may still come
            while len(self.pending) >= self.config.pending:
                self.pending.popitem(last=False)
                self.unpaired += 1
            self.pending[faces.frame_id] = faces
        else:
            self.unpaired += 1  # its frame was lost, or is older than what we keep
        return None

    def frame_delivered(self, frame: Frame, now: float) -> EdgeFaces | None:
        """Keep ``frame`` for pairing; the faces already waiting for it, if any."""
        stale = [k for k in self.pending if k < frame.frame_id]
        for k in stale:
            del self.pending[k]
            self.unpaired += 1
        waiting = self.pending.pop(frame.frame_id, None)
        if waiting is not None:
            return waiting
        self.recent[frame.frame_id] = frame
        while len(self.recent) > self.config.recent_frames:
            self.recent.popitem(last=False)
        while self.recent and now - next(iter(self.recent.values())).received_at > self.config.recent_s:
            self.recent.popitem(last=False)
        return None

    def paired_now(self, now: float) -> None:
        self.paired += 1
        self.last_paired = now
        if not self.edge:
            self.edge = True
            log.info("camera %s finds faces itself: the station aligns and embeds its crops", self.camera)

    def housekeeping(self, now: float, frame_timeout_s: float) -> None:
        """Drop stalled reassemblies; end edge mode when the camera stopped sending faces."""
        self.messages.expire(now, frame_timeout_s)
        if self.edge and now - self.last_paired > self.config.timeout_s:
            self.edge = False
            self.fallbacks += 1
            log.warning(
                "camera %s sent no usable faces for %.1f s: the station detects its faces again",
                self.camera,
                self.config.timeout_s,
            )
