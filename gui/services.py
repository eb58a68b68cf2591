"""The collaborators the console is handed: real ones in the app, real ones on loopback in tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from network.discovery import DiscoveredSender
from network.udp_receiver import UdpReceiver
from vision.face_sources import LivePipeline

if TYPE_CHECKING:
    from station.enrolment import Companion
    from station.event_bus import EventBus
    from station.recent_frames import RecentFrames
    from station.runtime import Recogniser
    from station.storage_watch import StorageStatus
    from storage.gallery import Gallery
    from vision.pipeline import FaceObservation
    from vision.types import ImageBGR


class FaceAnalyser(LivePipeline, Protocol):
    """What the console needs of the vision pipeline (``vision.pipeline.FacePipeline`` is one): the live
    engine's calls (a video file is scanned through it) and the photo path's.

    Calls are slow (tens to hundreds of ms): the console makes them from background jobs only.
    """

    def observe_box(self, image: ImageBGR, box: tuple[float, float, float, float]) -> FaceObservation: ...


@dataclass(frozen=True)
class ConsoleServices:
    """What the main window works with.

    ``advertised_address`` is the station's HOST:PORT as a camera on the LAN would reach it (for
    the pairing command), or None when unknown. ``gallery`` and ``faces`` are None only in tests of
    the live side alone. ``recent_frames`` keeps the last seconds of each camera's frames, fed by the
    receiver (and the recogniser's results); None: the main window makes one and attaches it.
    """

    receiver: UdpReceiver
    discovered: Callable[[], list[DiscoveredSender]]
    key_hex: str
    key_file: Path
    advertised_address: tuple[str, int] | None
    gallery: Gallery | None = None
    faces: FaceAnalyser | None = None
    cameras: Callable[[], list[str]] = field(default=list)  # names of cameras seen, for filters
    recogniser: Recogniser | None = None
    retention: Callable[[], object] | None = None  # apply the retention setting now (the station's own job)
    recent_frames: RecentFrames | None = None
    companions: tuple[Companion, ...] = ()  # the photo model's pipeline (station/models.py): enrolments store both
    events: EventBus | None = None  # the station's events (station/events.py): sightings recorded, alarms
    storage: Callable[[], StorageStatus] | None = None  # lost writes and free space (station/storage_watch.py)
    operator: str = "operator"  # who acknowledges and closes alarms from this console
