"""Real senders stream the Hamilton clip over loopback; every frame is checked against the source."""

from __future__ import annotations

import functools

import cv2
import pytest

from network.udp_receiver import UdpReceiver
from tests.conftest import CLIP, FrameLog, SenderFactory, need, wait_until

QUALITY = 80


@functools.cache
def source_encodings(quality: int = QUALITY) -> dict[bytes, int]:
    """The JPEG bytes the sender must produce for each frame of the clip, by frame index."""
    cap = cv2.VideoCapture(str(need(CLIP)))
    out: dict[bytes, int] = {}
    index = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        out.setdefault(buf.tobytes(), index)
        index += 1
    cap.release()
    assert index > 200, "the clip should have about 275 frames"
    return out


def check_against_source(log: FrameLog, camera: str, minimum: int) -> list[int]:
    """Each delivered frame is byte-identical to one source frame, in order, with none spliced."""
    encodings = source_encodings()
    frames = log.of(camera)
    indices = []
    for frame in frames:
        assert frame.jpeg in encodings, f"{camera} frame {frame.frame_id} matches no source frame"
        indices.append(encodings[frame.jpeg])
    assert indices == sorted(set(indices)), f"{camera}: frames out of order or repeated"
    assert len(indices) >= minimum, f"{camera}: only {len(indices)} frames delivered, expected >= {minimum}"
    decoded = frames[len(frames) // 2].image
    assert decoded.shape == (360, 640, 3)
    return indices


@pytest.mark.slow
def test_one_sender_streams_the_clip_frame_by_frame(
    receiver: tuple[UdpReceiver, FrameLog], start_sender: SenderFactory
) -> None:
    rx, log = receiver
    port = rx.address[1]
    proc = start_sender(
        "--source",
        str(need(CLIP)),
        "--name",
        "cam-a",
        "--station",
        f"127.0.0.1:{port}",
        "--fps",
        "30",
        "--quality",
        str(QUALITY),
    )
    assert proc.wait(timeout=40) == 0, proc.stderr.read() if proc.stderr else ""
    assert wait_until(lambda: not rx.stats()[0].online, 5), "BYE should mark the camera offline at once"
    indices = check_against_source(log, "cam-a", minimum=200)
    stats = {s.camera: s for s in rx.stats()}["cam-a"]
    assert stats.incomplete == 0
    assert stats.frames == len(indices)
    assert stats.latency_ms_p50 is not None and stats.latency_ms_p50 < 200
    assert sum(stats.rejected.values()) == 0
    events = [(e.camera, e.state, e.reason) for e in rx.drain_events()]
    assert events == [("cam-a", "online", ""), ("cam-a", "offline", "bye")]


@pytest.mark.slow
def test_four_senders_at_once(receiver: tuple[UdpReceiver, FrameLog], start_sender: SenderFactory) -> None:
    rx, log = receiver
    port = rx.address[1]
    names = [f"cam-{i}" for i in range(4)]
    procs = [
        start_sender(
            "--source",
            str(need(CLIP)),
            "--name",
            name,
            "--station",
            f"127.0.0.1:{port}",
            "--fps",
            "15",
            "--quality",
            str(QUALITY),
        )
        for name in names
    ]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    assert wait_until(lambda: all(not s.online for s in rx.stats()), 5)
    for name in names:
        # 9.2 s at 15 fps is about 137 frames; allow for a loaded 2-core machine skipping some.
        check_against_source(log, name, minimum=100)
    assert {s.camera for s in rx.stats()} == set(names)
    assert all(s.incomplete == 0 for s in rx.stats())
