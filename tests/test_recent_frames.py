"""The recent-frames buffer (station/recent_frames.py): bounded in count, bytes and seconds, JPEG kept,
faces attached by frame id; and fed by a real receiver from a real sender."""

from __future__ import annotations

import cv2
import numpy as np

from network.frames import Frame
from network.udp_receiver import UdpReceiver
from station.recent_frames import RecentFrames, RecentFramesConfig, best_of_track, track_near
from tests.conftest import FrameLog, SenderFactory, wait_until
from vision.faces import Face
from vision.quality import Quality
from vision.results import FrameResult
from vision.types import Detection

LANDMARKS = ((0.0, 0.0),) * 5


def jpeg(size: int = 64, value: int = 128) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((size, size, 3), value, np.uint8))
    assert ok
    return bytes(buf)


def frame(camera: str, fid: int, at: float, data: bytes | None = None) -> Frame:
    return Frame(camera, 1, fid, fid, at, at + 0.01, data if data is not None else jpeg())


def face(track: str, box: tuple[float, float, float, float], quality: float) -> Face:
    q = Quality(blur=100.0, face_size=min(box[2], box[3]), yaw=0.0, roll=0.0, score=quality)
    return Face(Detection(box, LANDMARKS, 1.0), q, "m", track_id=track)


def test_bounded_by_count_seconds_and_bytes() -> None:
    recent = RecentFrames(RecentFramesConfig(seconds=2.0, max_frames=5, max_bytes=10_000, max_total_bytes=16_000))
    small = jpeg(32)
    for i in range(20):
        recent(frame("a", i, 100.0 + i * 0.1, small))
    kept = recent.frames("a")
    assert [f.frame_id for f in kept] == [15, 16, 17, 18, 19], "at most max_frames"
    recent(frame("a", 20, 103.65, small))  # frames 15 and 16 (101.5, 101.6) are now over 2 s older than it
    assert [f.frame_id for f in recent.frames("a")] == [17, 18, 19, 20]
    big = b"\xff\xd8" + bytes(4_000)
    for i in range(4):
        recent(frame("b", i, 200.0 + i, big))
    assert sum(f.nbytes for f in recent.frames("b")) <= 10_000, "per-camera bytes"
    assert recent.total_bytes <= 16_000, "all cameras together"
    recent(frame("c", 0, 300.0, b"\xff\xd8" + bytes(20_000)))  # alone over the budget: not kept
    assert recent.frames("c") == []
    assert recent.evicted > 0


def test_a_bounded_number_of_cameras_and_jpeg_only() -> None:
    recent = RecentFrames(RecentFramesConfig(max_cameras=3))
    for k in range(5):
        f = frame(f"cam{k}", 1, 10.0)
        _ = f.image  # a consumer decoded it already: the buffer still keeps only the bytes
        recent(f)
    assert recent.cameras() == ["cam2", "cam3", "cam4"]
    kept = recent.frames("cam4")[0]
    assert not hasattr(kept, "__dict__") or "image" not in vars(kept)
    assert kept.image().shape == (64, 64, 3)


def test_faces_are_attached_and_a_track_is_followed_to_its_best_frame() -> None:
    recent = RecentFrames()
    for i in range(6):
        recent(frame("door", i, 50.0 + i * 0.25))
    # Recognition under a rate cap sees only some frames; the face shrinks as the person walks away.
    for i, (side, quality) in {0: (120.0, 0.9), 2: (90.0, 0.7), 4: (50.0, 0.4), 5: (36.0, 0.2)}.items():
        recent.note_result(
            FrameResult("door", i, 50.0 + i * 0.25, (face("door-7", (100, 100, side, side), quality),), 5, 51)
        )
    recent.note_result(FrameResult("door", 99, 80.0, (), 5, 81))  # not kept yet: attached if it comes
    frames = recent.frames("door")
    assert [f.faces is not None for f in frames] == [True, False, True, False, True, True]
    assert track_near(frames, 5, (101, 99, 35, 37)) == "door-7"
    assert track_near(frames, 3, (100, 100, 60, 60)) == "door-7", "from the nearest recognised frame"
    assert track_near(frames, 5, (300, 300, 40, 40)) is None
    best = best_of_track(frames, "door-7")
    assert best is not None and best[0] == 0 and best[1].quality.score == 0.9
    found = recent.best_of_track("door", "door-7")
    assert found is not None and found[0].frame_id == 0
    recent(frame("door", 99, 80.0))
    assert recent.get("door", 99) is not None and recent.get("door", 99).faces == ()  # type: ignore[union-attr]


def test_fed_by_a_real_receiver(receiver: tuple[UdpReceiver, FrameLog], start_sender: SenderFactory) -> None:
    rx, log = receiver
    recent = RecentFrames(RecentFramesConfig(seconds=1.0))
    rx.add_listener(recent)
    host, port = rx.address
    start_sender(
        "--source", "demo", "--name", "lab", "--station", f"{host}:{port}", "--fps", "20", "--max-width", "320"
    )
    assert wait_until(lambda: log.count("lab") >= 40, timeout=20)
    kept = recent.frames("lab")
    assert 10 <= len(kept) <= 22, "about a second of 20 fps"
    assert kept[-1].captured_at - kept[0].captured_at <= 1.0
    assert [f.frame_id for f in kept] == sorted(f.frame_id for f in kept)
    assert kept[-1].image().shape[1] == 320
