"""The Ray back-end on a real local Ray cluster: a head and a worker node on 127.0.0.1, started here.

Two real senders (the Hamilton clip and a folder of LFW photos) stream through a station whose
Recogniser sends frames to two recognition actors, one per node. A person is enrolled during the
run and the remote results name them within a poll or two; then one actor's process is killed with
SIGKILL, and recognition goes on for both cameras on the surviving actor while a new one loads.

Each Ray node is a ``ray start --block`` process in its own process group, with its own temp dir
and ports; the group is killed afterwards (never ``ray stop``, which would stop every Ray of the user).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from network.udp_receiver import UdpReceiver
from station.runtime import Recogniser, RecognitionSettings, RemoteFaces
from storage.gallery import Gallery
from tests.conftest import CLIP, FACES, ROOT, FrameLog, SenderFactory, need, wait_until
from vision.pipeline import read_image
from vision.results import FrameResult
from vision.service import ServiceConfig

# The cluster and this process share a private token (Ray's token auth), so nothing is written to ~/.ray.
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(32),
}
os.environ.update(RAY_ENV)
ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from vision.ray_workers import RayPoolConfig, RayRecognitionPool, RayUnavailable  # noqa: E402

PHOTOS = FACES / "identities" / "Bill_Clinton"
RAY_CLI = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRayCluster:
    """A head node and worker nodes on 127.0.0.1, each a ``ray start --block`` in its own process group."""

    def __init__(self, temp_dir: Path) -> None:
        self.temp_dir = temp_dir
        self.gcs_port = free_port()
        self.address = f"127.0.0.1:{self.gcs_port}"
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, **RAY_ENV, "TF_CPP_MIN_LOG_LEVEL": "2"}

    def add_node(self, *, head: bool, cpus: int = 1) -> None:
        worker_port = free_port()
        cmd = [
            str(RAY_CLI), "start", "--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1",
            "--num-cpus", str(cpus), "--object-store-memory", str(100 * 2**20),
            "--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
            "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
            "--metrics-export-port", str(free_port()), "--runtime-env-agent-port", str(free_port()),
            "--min-worker-port", str(worker_port), "--max-worker-port", str(worker_port + 30),
        ]  # fmt: skip
        if head:
            cmd += [
                "--head",
                "--port",
                str(self.gcs_port),
                "--include-dashboard=false",
                "--temp-dir",
                str(self.temp_dir),
            ]
            cmd += ["--ray-client-server-port", str(free_port())]
        else:
            cmd += ["--address", self.address]
        log = (self.temp_dir / f"node-{len(self.nodes)}.log").open("wb")
        self.nodes.append(
            subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def wait_reachable(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.gcs_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"the Ray head did not listen within {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        return " | ".join(p.read_text(errors="replace")[-800:] for p in sorted(self.temp_dir.glob("node-*.log")))

    def stop(self) -> None:
        for proc in reversed(self.nodes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.nodes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            with contextlib.suppress(ProcessLookupError):  # raylet, GCS and workers share their `ray start`'s group
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRayCluster]:
    temp = Path(tempfile.mkdtemp(prefix="fsray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    c = LocalRayCluster(temp)
    try:
        c.add_node(head=True)
        c.wait_reachable(60)
        c.add_node(head=False)
        yield c
    finally:
        c.stop()
        shutil.rmtree(temp, ignore_errors=True)


class ResultLog:
    def __init__(self) -> None:
        self.results: list[FrameResult] = []
        self.lock = threading.Lock()

    def __call__(self, result: FrameResult) -> None:
        with self.lock:
            self.results.append(result)

    def since(self, camera: str, t: float) -> list[FrameResult]:
        with self.lock:
            return [r for r in self.results if r.camera == camera and r.recognised_at > t]


def stream(start_sender: SenderFactory, rx: UdpReceiver, source: Path, name: str, fps: int) -> None:
    start_sender(
        "--source", str(source), "--name", name, "--station", f"127.0.0.1:{rx.address[1]}",
        "--fps", str(fps), "--loop", "--max-width", "480",
    )  # fmt: skip


@pytest.mark.slow
def test_ray_workers_recognise_follow_the_gallery_and_survive_a_killed_worker(
    cluster: LocalRayCluster,
    receiver: tuple[UdpReceiver, FrameLog],
    start_sender: SenderFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    need(CLIP)
    need(PHOTOS)
    rx, _ = receiver
    gallery = Gallery.open(tmp_path / "gallery.db")
    config = RayPoolConfig(address=cluster.address, actors=2, cpus_per_actor=1, max_batch=2, start_timeout_s=150)
    pool = RayRecognitionPool(config)
    try:
        pool.start()
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len(nodes) == 2, "the head and the worker node are both in the cluster"
        settings = RecognitionSettings.from_gallery(gallery, pool.model, max_rate_hz=5.0)
        recogniser = Recogniser(rx, gallery, RemoteFaces(pool), settings, workers=config.station_workers)
        results = ResultLog()
        recogniser.service.add_listener(results)
        recogniser.start()
        try:
            stream(start_sender, rx, CLIP, "stage", 10)
            stream(start_sender, rx, PHOTOS, "photos", 4)
            began = time.time()
            assert wait_until(lambda: all(results.since(c, began) for c in ("stage", "photos")), 60), pool.stats()
            faces = [f for r in results.since("photos", began) for f in r.faces]
            assert faces and all(f.person is None for f in faces), "nobody is enrolled yet"

            # Enrol through the same remote pipeline, while the cameras stream.
            for path in sorted(PHOTOS.iterdir())[:3]:
                image = read_image(path)
                assert image is not None
                found = pool.observe(image)
                obs = max(found, key=lambda o: o.detection.box[2] * o.detection.box[3])  # LFW: the centred face
                crop = bytes(cv2.imencode(".jpg", obs.crop)[1].tobytes())
                gallery.enrol_sample(
                    "Bill Clinton", model=obs.model, embedding=obs.embedding, crop_jpeg=crop, source=str(path),
                    quality=obs.quality.score,
                )  # fmt: skip
            enrolled = time.time()

            def named_after(t: float) -> list[FrameResult]:
                return [r for r in results.since("photos", t) if any(f.person == "Bill Clinton" for f in r.faces)]

            assert wait_until(lambda: bool(named_after(enrolled)), 10), "the enrolment should reach remote results"
            delay = min(r.recognised_at for r in named_after(enrolled)) - enrolled
            print(f"enrolment to the first named remote result: {delay:.2f} s")
            assert delay < 3.0

            # Kill one actor's process outright (a crash, not ray.kill).
            errors_before = sum(s.errors for s in recogniser.stats())
            victim = pool.actor_pids()[0]
            assert victim is not None
            os.kill(victim, signal.SIGKILL)
            killed = time.time()
            for camera in ("stage", "photos"):

                def going_on(cam: str = camera) -> bool:
                    return len(results.since(cam, killed + 1.0)) >= 3

                assert wait_until(going_on, 15), f"{camera} should go on on the surviving worker: {pool.stats()}"
            print(f"both cameras recognised again {time.time() - killed:.1f} s after the kill")
            assert wait_until(lambda: sum(s.errors for s in recogniser.stats()) > errors_before, 10)
            assert pool.stats().lost >= 1 and "lost" in pool.stats().last_error
            assert named_after(killed + 1.0), "recognition after the kill still names the enrolled person"

            # The dead actor is replaced by a fresh process that loads the models and takes frames again.
            assert wait_until(lambda: pool.stats().replaced >= 1 and pool.stats().live == 2, 120), pool.stats()
            print(f"a new worker took the dead one's place {time.time() - killed:.1f} s after the kill")
            assert victim not in pool.actor_pids()
            assert wait_until(lambda: pool.stats().served[0] >= 3, 15), "the new worker takes frames"
            assert recogniser.service.running, "no exception escaped the station's threads"
            out, _ = capfd.readouterr()
            assert "worker died" not in out, "Ray's cluster messages go to stderr (headless's stdout is JSON lines)"
        finally:
            recogniser.stop()
        assert {s.camera for s in recogniser.stats()} == {"stage", "photos"}
        assert all(s.recognised >= 5 for s in recogniser.stats())
    finally:
        pool.stop()
        gallery.close()


def test_an_unreachable_cluster_is_one_clear_error() -> None:
    pool = RayRecognitionPool(RayPoolConfig(address=f"127.0.0.1:{free_port()}", connect_timeout_s=2))
    with pytest.raises(RayUnavailable, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:"):
        pool.start()


def test_pool_config_is_checked_and_sizes_the_station_workers() -> None:
    assert RayPoolConfig(address=None, actors=3, max_batch=2).station_workers == 6
    with pytest.raises(ValueError, match="Ray workers"):
        RayPoolConfig(address=None, actors=0)
    assert ServiceConfig(workers=RayPoolConfig(address=None, actors=32).station_workers).workers == 64


def test_headless_without_ray_installed_says_which_extra(tmp_path: Path) -> None:
    code = "import sys; sys.modules['ray'] = None; import main; sys.exit(main.main(sys.argv[1:]))"
    args = ["headless", "--gallery", str(tmp_path / "g.db"), "--listen", "127.0.0.1:0", "--ray-address", "127.0.0.1:1"]
    cmd = [sys.executable, "-c", code, *args]
    done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert errors == ["main.py: error: Ray is not installed: install the ray extra: pip install '.[ray]'"], done.stderr
