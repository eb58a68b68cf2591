"""The recognition service against a real loopback receiver and real sender processes.

The per-frame analysis here is a small real one (no mocks): it finds the demo source's red disk
by colour, and its "embedding" is the disk's colour signature, so the matcher, the tracker and
the sighting path all run on real frames. It can be made deliberately slow to put the service
under load. Camera frames are told apart by width (each sender gets its own --max-width).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from network.udp_receiver import UdpReceiver
from station.frame_feed import ReceiverFeed
from storage.gallery import Gallery
from tests.conftest import FrameLog, SenderFactory, wait_until
from tests.test_receiver import FakeCamera, jpeg
from vision.decision import Decider, next_revision
from vision.face_sources import Found, FoundBy, Hints, LiveSettings, StationDetection
from vision.faces import Face
from vision.frames import CameraFaces, CameraFrame, FrameRef
from vision.matcher import Matcher, gallery_loader
from vision.pipeline import FaceObservation
from vision.quality import Quality
from vision.results import FrameResult
from vision.service import DeciderFactory, LocalEngines, RecognitionService, ServiceConfig, SightingSink
from vision.sightings import sighting_sink
from vision.stages import StageClock
from vision.tracker import TrackerConfig, TrackRecord
from vision.types import Box, Detection, FloatArray, ImageBGR

MODEL = "colour-signature"
RED_BGR = (40, 40, 230)


def signature(crop: ImageBGR) -> FloatArray:
    """A unit 8-D colour signature of a crop: mean B, G, R and the share of strongly red pixels."""
    pixels = crop.reshape(-1, 3).astype(np.float32) / 255.0
    red = (pixels[:, 2] > 0.7) & (pixels[:, 1] < 0.35) & (pixels[:, 0] < 0.35)
    v = np.zeros(8, dtype=np.float32)
    v[:3] = pixels.mean(axis=0)
    v[3] = red.mean()
    out: FloatArray = v / np.linalg.norm(v)
    return out


def red_disk_sample() -> FloatArray:
    """The enrolment sample of "Red": a red disk drawn on its own, through the same code path."""
    img = np.full((64, 64, 3), 96, np.uint8)
    cv2.circle(img, (32, 32), 30, RED_BGR, -1)
    return signature(img)


@dataclass
class RedBlobAnalyser:
    """Finds the largest red blob; sleeps ``delay`` after real work to stand in for a slow model."""

    delay: float = 0.0
    calls: int = 0
    active: Counter[int] = field(default_factory=Counter)  # in-flight calls by frame width (= camera)
    max_active_per_camera: int = 0
    max_active: int = 0
    widths: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, image: ImageBGR) -> list[Face]:
        width = image.shape[1]
        with self.lock:
            self.calls += 1
            self.widths[width] += 1
            self.active[width] += 1
            self.max_active_per_camera = max(self.max_active_per_camera, self.active[width])
            self.max_active = max(self.max_active, sum(self.active.values()))
        try:
            blurred = cv2.GaussianBlur(image, (5, 5), 0)
            mask = cv2.inRange(blurred, (0, 0, 170), (110, 110, 255))
            if self.delay:
                time.sleep(self.delay)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            if not contours:
                return []
            x, y, w, h = cv2.boundingRect(max(contours, key=cv2.contourArea))
            if w < 8 or h < 8:
                return []
            crop = np.asarray(cv2.resize(image[y : y + h, x : x + w], (32, 32)), dtype=np.uint8)
            box = (float(x), float(y), float(w), float(h))
            marks = tuple(
                (x + fx * w, y + fy * h) for fx, fy in ((0.3, 0.4), (0.7, 0.4), (0.5, 0.55), (0.35, 0.75), (0.65, 0.75))
            )
            det = Detection(box, marks, 0.99)  # type: ignore[arg-type]
            quality = Quality(blur=100.0, face_size=float(min(w, h)), yaw=0.0, roll=0.0, score=float(w * h))
            return [Face(det, quality, MODEL, crop=crop)]
        finally:
            with self.lock:
                self.active[width] -= 1


def red_matcher() -> Matcher:
    return Matcher(MODEL, [1], ["Red"], red_disk_sample()[None], threshold=0.97, margin=0.0)


def red_judge() -> Decider:
    return Decider(red_matcher(), next_revision())


class BlobPipeline:
    """The live engine's face pipeline over a blob finder: whole searches call it, the cheap step between them
    keeps only the blobs a hint overlaps (as O-Net near a box would), and the "embedding" is the colour
    signature of the crop."""

    model = MODEL

    def __init__(self, find: Callable[[ImageBGR], list[Face]]) -> None:
        self.find = find
        self.hints_seen: list[list[Box]] = []

    def candidates(self, image: ImageBGR, *, min_face: float = 0.0, clock: StageClock | None = None) -> list[Face]:
        return self.find(image)

    def refine_candidates(
        self, image: ImageBGR, hints: Sequence[Box], *, min_face: float = 0.0, clock: StageClock | None = None
    ) -> list[Face]:
        self.hints_seen.append(list(hints))
        near = []
        for face in self.find(image):
            x, y, w, h = face.box
            if any(hx < x + w and x < hx + hw and hy < y + h and y < hy + hh for hx, hy, hw, hh in hints):
                near.append(face)
        return near

    def camera_candidates(
        self, faces: CameraFaces, *, min_face: float = 0.0, clock: StageClock | None = None
    ) -> list[Face]:
        raise AssertionError("the demo cameras send no faces of their own")

    def embed_crops(self, crops: Sequence[ImageBGR]) -> FloatArray:
        return np.stack([signature(c) for c in crops])

    def observe(self, image: ImageBGR) -> list[FaceObservation]:
        raise AssertionError("the live engine does not observe photos")


def service(
    rx: UdpReceiver,
    find: Callable[[ImageBGR], list[Face]],
    judges: DeciderFactory | None = red_judge,
    config: ServiceConfig | None = None,
    *,
    revision: Callable[[], int] | None = None,
    sighting_sink: SightingSink | None = None,
) -> tuple[RecognitionService, BlobPipeline]:
    """The service over a real receiver, with blob-finding engines on the live schedule of ``config``."""
    config = config or ServiceConfig(workers=1, full_detect_every=1)
    pipeline = BlobPipeline(find)
    host = LocalEngines(lambda camera: StationDetection(pipeline), pipeline.embed_crops, config.tracker)
    svc = RecognitionService(
        ReceiverFeed(rx), host, judges, revision=revision, sighting_sink=sighting_sink, config=config
    )
    return svc, pipeline


def demo(start_sender: SenderFactory, rx: UdpReceiver, name: str, fps: int, width: int) -> None:
    start_sender(
        "--source", "demo", "--name", name, "--station", f"127.0.0.1:{rx.address[1]}",
        "--fps", str(fps), "--max-width", str(width), "--quality", "70",
    )  # fmt: skip


@pytest.mark.slow
def test_newest_frame_wins_under_load_and_latency_stays_bounded(
    receiver: tuple[UdpReceiver, FrameLog], start_sender: SenderFactory
) -> None:
    """A 25 fps camera, a 0.2 s analysis, one worker: about 5 recognitions a second, the rest skipped."""
    rx, log = receiver
    analyse = RedBlobAnalyser(delay=0.2)
    results: list[FrameResult] = []
    svc, _ = service(rx, analyse)
    svc.add_listener(results.append)
    with svc:
        demo(start_sender, rx, "cam-a", 25, 640)
        assert wait_until(lambda: len(results) >= 12, 20)
        time.sleep(1.0)
        (stats,) = svc.stats()
        delivered = log.count("cam-a")
    assert not svc.running
    ids = [r.frame_id for r in results]
    assert ids == sorted(set(ids)), "results come in frame order, each frame once"
    assert 2.5 <= stats.fps <= 6.0, stats
    assert stats.dropped >= delivered // 2, f"most frames must be skipped, not queued: {stats}"
    assert stats.errors == 0
    # Without a backlog, capture-to-result latency stays about one frame's work (0.2 s) plus the wait for it.
    assert stats.latency_ms_p95 is not None and stats.latency_ms_p95 < 900, stats
    assert all(r.latency_ms < 1500 for r in results[3:])
    recognised = [f for r in results for f in r.faces]
    assert len(recognised) >= 0.9 * len(results)
    assert {f.person for f in recognised} == {"Red"} and all((f.score or 0) > 0.97 for f in recognised)
    assert len({f.track_id for f in recognised}) == 1, "one disk moving smoothly is one track"
    assert svc.latest_results()["cam-a"] == results[-1]


@pytest.mark.slow
def test_workers_are_shared_evenly_and_one_frame_per_camera_is_in_flight(
    receiver: tuple[UdpReceiver, FrameLog], start_sender: SenderFactory
) -> None:
    """Three 20 fps cameras, two workers, 0.12 s per frame: each camera's rate drops by the same share."""
    rx, _ = receiver
    analyse = RedBlobAnalyser(delay=0.12)
    widths = {"cam-a": 320, "cam-b": 400, "cam-c": 480}
    svc, _ = service(rx, analyse, config=ServiceConfig(workers=2, full_detect_every=1))
    with svc:
        for name, width in widths.items():
            demo(start_sender, rx, name, 20, width)
        assert wait_until(lambda: len(svc.stats()) == 3 and min(s.recognised for s in svc.stats()) >= 3, 20)
        start = {s.camera: s.recognised for s in svc.stats()}
        time.sleep(4.0)
        stats = {s.camera: s for s in svc.stats()}
    counts = {name: stats[name].recognised - start[name] for name in widths}
    mean = sum(counts.values()) / 3
    assert mean >= 5, counts  # about 2 / 0.12 / 3 = 5.5 per camera per second when the CPUs allow
    assert max(counts.values()) - min(counts.values()) <= max(3, 0.3 * mean), f"unfair sharing: {counts}"
    assert analyse.max_active_per_camera == 1, "never two frames of one camera at once"
    assert analyse.max_active <= 2
    assert all(s.dropped > 0 and s.errors == 0 for s in stats.values())
    assert set(analyse.widths) == set(widths.values())


@pytest.mark.slow
def test_a_per_camera_rate_cap_holds_and_leaves_the_rest_to_others(
    receiver: tuple[UdpReceiver, FrameLog], start_sender: SenderFactory
) -> None:
    rx, _ = receiver
    analyse = RedBlobAnalyser(delay=0.0)
    config = ServiceConfig(workers=1, camera_rate_hz={"slow": 2.0}, max_rate_hz=8.0, full_detect_every=1)
    svc, _ = service(rx, analyse, config=config)
    with svc:
        demo(start_sender, rx, "slow", 20, 320)
        demo(start_sender, rx, "fast", 20, 400)
        assert wait_until(lambda: len(svc.stats()) == 2, 10)
        time.sleep(1.0)
        before = {s.camera: s.recognised for s in svc.stats()}
        time.sleep(3.0)
        after = {s.camera: s.recognised for s in svc.stats()}
    slow, fast = after["slow"] - before["slow"], after["fast"] - before["fast"]
    assert 4 <= slow <= 7, f"2 Hz over 3 s gave {slow}"
    assert 15 <= fast <= 26, f"8 Hz over 3 s gave {fast}"


def handled(svc: RecognitionService) -> int:
    return sum(s.recognised + s.errors for s in svc.stats())


def test_bad_frames_and_failing_analysis_are_counted_and_skipped(
    receiver: tuple[UdpReceiver, FrameLog], key: bytes
) -> None:
    rx, log = receiver
    calls = {"n": 0}

    def flaky(image: ImageBGR) -> list[Face]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("model exploded")
        return []

    results: list[FrameResult] = []
    svc, _ = service(rx, flaky, None)
    svc.add_listener(results.append)
    cam = FakeCamera(key, rx.address, name="bad")
    with svc:
        cam.hello()
        for fid, data in enumerate([b"\xff\xd8" + b"\x00" * 300, jpeg(2), jpeg(3), b"GIF89a", jpeg(5)], start=1):
            cam.frame(fid, data)
            assert wait_until(lambda fid=fid: log.count("bad") == fid, 3)  # type: ignore[misc]
            assert wait_until(lambda fid=fid: handled(svc) == fid, 3)  # type: ignore[misc]
        (stats,) = svc.stats()
    cam.close()
    assert stats.errors == 3 and stats.recognised == 2 and stats.dropped == 0
    assert "corrupt JPEG" in stats.last_error or "not a JPEG" in stats.last_error
    assert [r.frame_id for r in results] == [2, 5]  # 1 corrupt, 3 failed in analysis, 4 not a JPEG


@pytest.mark.slow
def test_sightings_reach_the_gallery_and_the_matcher_follows_its_revision(
    receiver: tuple[UdpReceiver, FrameLog], start_sender: SenderFactory, tmp_path: Path
) -> None:
    """Unknown until Red is enrolled; the live track turns into Red; ending tracks become sightings."""
    rx, _ = receiver
    gallery = Gallery.open(tmp_path / "gallery.db")
    try:
        loader = gallery_loader(gallery, MODEL, threshold=0.97, margin=0.0, dim=8)
        recorded: list[TrackRecord] = []
        sink = sighting_sink(gallery.record_sightings)

        def record(tracks: Sequence[TrackRecord]) -> None:
            recorded.extend(tracks)
            sink(tracks)

        config = ServiceConfig(
            workers=1, revision_poll_s=0.2, tracker=TrackerConfig(max_unseen_s=0.6), full_detect_every=1
        )
        svc, _ = service(
            rx,
            RedBlobAnalyser(),
            lambda: Decider(loader(), next_revision()),
            config,
            revision=gallery.revision,
            sighting_sink=record,
        )
        with svc:
            sender = start_sender(
                "--source", "demo", "--name", "hall", "--station", f"127.0.0.1:{rx.address[1]}", "--fps", "15",
            )  # fmt: skip
            assert wait_until(lambda: "hall" in svc.latest_results() and bool(svc.latest_results()["hall"].faces), 10)
            first = svc.latest_results()["hall"].faces[0]
            assert first.person is None and first.score is None, "an empty gallery: compared with no one"
            crop = cv2.imencode(".jpg", np.full((32, 32, 3), RED_BGR, np.uint8))[1].tobytes()
            gallery.enrol_sample("Red", model=MODEL, embedding=red_disk_sample(), crop_jpeg=crop, source="t", quality=1)
            gallery.set_watchlist("Red", True)

            def named() -> bool:
                res = svc.latest_results()["hall"]
                return bool(res.faces) and res.faces[0].person == "Red"

            assert wait_until(named, 10), "the service should pick up the enrolment within a poll or two"
            face = svc.latest_results()["hall"].faces[0]
            assert face.decision.watchlist and face.track_id == first.track_id, "the live track keeps its id"
            time.sleep(1.5)  # the voted identity outweighs the unknown start
            sender.send_signal(signal.SIGTERM)
            assert sender.wait(timeout=10) == 0
            assert wait_until(lambda: len(recorded) >= 1, 5), "the track ends 0.6 s after the camera stops"
        assert svc.reloads >= 1
        track = next(r for r in recorded if r.track_id == first.track_id)
        assert track.person == "Red" and (track.score or 0) > 0.97 and track.frames >= 10 and track.end > track.start
        assert gallery.flush(10)
        (stored,) = [s for s in gallery.history(camera="hall", audit=False) if s.track == first.track_id]
        assert stored.person == "Red" and stored.has_crop and stored.model == MODEL
        assert stored.start == pytest.approx(track.start, abs=1e-3)
    finally:
        gallery.close()


def test_stop_is_prompt_and_idempotent_without_frames(receiver: tuple[UdpReceiver, FrameLog]) -> None:
    rx, _ = receiver
    svc, _ = service(rx, RedBlobAnalyser(), config=ServiceConfig(workers=2))
    svc.start()
    with pytest.raises(RuntimeError, match="already running"):
        svc.start()
    t0 = time.monotonic()
    svc.stop()
    assert time.monotonic() - t0 < 1.0 and not svc.running
    svc.stop()
    assert svc.stats() == [] and svc.latest_results() == {}


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        ServiceConfig(workers=0)
    with pytest.raises(ValueError, match="cam-x must be > 0 Hz"):
        ServiceConfig(camera_rate_hz={"cam-x": 0})
    with pytest.raises(ValueError, match="full_detect_every"):
        ServiceConfig(full_detect_every=0)


@pytest.mark.slow
def test_between_full_detections_only_the_live_tracks_are_looked_for(
    receiver: tuple[UdpReceiver, FrameLog], start_sender: SenderFactory
) -> None:
    """With a refine step and full_detect_every=3, two frames in three are searched only near the
    live track's last box (the refine step is handed that box), the disk stays one track named Red,
    and the full detections are counted."""
    rx, _ = receiver
    results: list[FrameResult] = []
    svc, pipeline = service(rx, RedBlobAnalyser(), config=ServiceConfig(workers=1, full_detect_every=3))
    hints_seen = pipeline.hints_seen
    svc.add_listener(results.append)
    with svc:
        demo(start_sender, rx, "cam-a", 15, 640)
        assert wait_until(lambda: len(results) >= 30, 20)
        (stats,) = svc.stats()
    full = stats.full_detections
    assert stats.recognised >= 30 and 0.25 <= full / stats.recognised <= 0.45, stats
    assert len(hints_seen) >= stats.recognised - full - 2  # the rest were refined (a few had no live track)
    assert all(len(h) == 1 for h in hints_seen), "one live track: one box to look near"
    faces = [f for r in results for f in r.faces]
    assert len(faces) >= 0.9 * len(results), "the refine step keeps finding the disk"
    assert {f.person for f in faces} == {"Red"} and len({f.track_id for f in faces}) == 1


class _Held:
    """A face source that holds the frame it is given until told to go on (to catch a race)."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.go = threading.Event()

    def find(self, frame: CameraFrame, hints: Hints, settings: LiveSettings, clock: StageClock) -> Found:
        self.inside.set()
        assert self.go.wait(5)
        image = frame.pixels()
        face = Face(
            Detection(
                (10.0, 10.0, 60.0, 60.0), ((25.0, 30.0), (55.0, 30.0), (40.0, 45.0), (28.0, 58.0), (52.0, 58.0)), 0.99
            ),
            Quality(blur=100.0, face_size=60.0, yaw=0.0, roll=0.0, score=0.8),
            MODEL,
            crop=np.zeros((32, 32, 3), np.uint8),
        )
        return Found((face,), FrameRef(None, image.shape[1], image.shape[0], image=image), FoundBy.STATION, whole=True)


def test_a_camera_gone_quiet_is_not_ended_while_a_worker_runs_its_frame() -> None:
    """The feed thread ends the tracks of quiet cameras while workers run frames: an engine is never in both."""
    held = _Held()
    host = LocalEngines(
        lambda camera: held, lambda crops: np.stack([red_disk_sample() for _ in crops]), TrackerConfig()
    )
    frame = CameraFrame("cam", 1, 100.0, 100.0, image=np.zeros((120, 160, 3), np.uint8))
    held.go.set()
    host.process(0, "cam", frame, LiveSettings())  # a live track
    held.inside.clear()
    held.go.clear()
    worker = threading.Thread(
        target=host.process, args=(0, "cam", CameraFrame("cam", 2, 101.0, 101.0, image=frame.image), LiveSettings())
    )
    worker.start()
    assert held.inside.wait(5)
    ended: list[TrackRecord] = []
    expiring = threading.Thread(target=lambda: ended.extend(host.expire(10**9)))
    expiring.start()
    expiring.join(0.3)
    assert expiring.is_alive(), "the expiry waits for the frame in flight"
    held.go.set()
    worker.join(5)
    expiring.join(5)
    assert not worker.is_alive() and not expiring.is_alive() and len(ended) == 1
