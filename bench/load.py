"""Recognition under load: N cameras streaming at once into one station, the first engine beside the second.

    .venv/bin/python bench/load.py [--cameras 4,16] [--seconds 30] [--engines v1,v2] [--console]

Each camera is a real sender process streaming the Hamilton clip (640x360, looped, each from its own
starting point) at 15 fps over loopback to a real receiver; the station runs the same Recogniser as
`main.py headless`, with Lin-Manuel Miranda enrolled in a temporary gallery. Two engines, measured
one after the other in the same run, so their figures compare as ratios:

* **v1**, today's engine before this round (kept runnable): every face of every analysed frame goes
  through MTCNN and FaceNet on TensorFlow, at the old default cap of 5 recognitions/s per camera
  (``--v1-rate`` changes it);
* **v2**, the track-first engine at the station's defaults: the detector on every frame the workers
  allow, on OpenVINO, searching every third frame whole and in between only near the live tracks
  (O-Net on their last boxes); a face embedded only when it adds information; identity decided per track;
* **v2-full**, v2 with a full detection on every frame (``full_detect_every=1``), to show what the
  cheap step between full detections is worth.

Per camera it prints the frames analysed per second, capture → result latency (p50/p95), and a new
track's first decision after its first frame arrived (p95); per run, who was named in the sightings,
the CPU each stage took (receive, decode, detect, align, embed, match, track, and with ``--console``
the console's display decode and paint), and the process's total CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
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
from station.runtime import LocalFaces, Recogniser, RecognitionSettings, calibrated_threshold  # noqa: E402
from storage.gallery import Gallery  # noqa: E402
from vision.detector import MtcnnDetector  # noqa: E402
from vision.embedders import load_embedder  # noqa: E402
from vision.pipeline import FacePipeline  # noqa: E402
from vision.results import FrameResult  # noqa: E402
from vision.tracker import TrackRecord  # noqa: E402

FACES = ROOT.parent / "shared" / "faces"
CLIP = FACES / "video" / "short_hamilton_clip.mp4"
REFERENCE = FACES / "video" / "reference_faces" / "lin-manuel-miranda.png"
CLIP_S = 9.17


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.0f}" if values else "-"


@dataclass
class Run:
    engine: str
    cameras: int
    seconds: float = 0.0
    analysed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    received_fps: dict[str, float] = field(default_factory=dict)
    first_decision_p95: dict[str, float | None] = field(default_factory=dict)
    named: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sightings: int = 0
    stages: dict[str, float] = field(default_factory=dict)  # cores (CPU seconds per second)
    process_cores: float = 0.0
    sender_cores: float = 0.0  # all the sender processes together (they share this machine's cores)
    workers: int = 0
    cap: float | None = None
    runtime: str = ""


def pipeline_for(engine: str) -> FacePipeline:
    runtime = "tf" if engine == "v1" else None  # v2: OpenVINO where it loads (the default)
    pipeline = FacePipeline(detector=MtcnnDetector(runtime=runtime), embedder=load_embedder(runtime=runtime))
    pipeline.warm_up()
    return pipeline


def thread_cpu(names: tuple[str, ...]) -> float:
    """CPU seconds so far of this process's threads whose Python names start with one of ``names``."""
    natives = {t.native_id for t in threading.enumerate() if t.name.startswith(names) and t.native_id}
    return float(sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id in natives))


def senders_cpu(senders: list[subprocess.Popen[bytes]]) -> float:
    """CPU seconds so far of the sender processes still running."""
    total = 0.0
    for p in senders:
        try:
            t = psutil.Process(p.pid).cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def measure(engine: str, cameras: int, args: argparse.Namespace) -> Run:
    run = Run(engine, cameras)
    tmp = Path(tempfile.mkdtemp(prefix="facestation-load-"))
    key_file = tmp / "station.key"
    key = keys.write_new_key(key_file)
    gallery = Gallery.open(tmp / "gallery.db")
    pipeline = pipeline_for(engine)
    run.runtime = str(getattr(pipeline.detector, "runtime", "tf"))
    image = cv2.imread(str(REFERENCE))
    if image is None:
        raise SystemExit(f"cannot read {REFERENCE}")
    face = max(
        pipeline.observe(np.asarray(image, dtype=np.uint8)), key=lambda o: o.detection.box[2] * o.detection.box[3]
    )
    ok, crop = cv2.imencode(".jpg", face.crop)
    assert ok
    gallery.enrol_sample(
        "Lin-Manuel Miranda", model=face.model, embedding=face.embedding, crop_jpeg=bytes(crop), source="ref", quality=1
    )
    rx = UdpReceiver(key, "127.0.0.1", 0, config=ReceiverConfig()).start()
    threshold = calibrated_threshold(pipeline.model)
    if engine == "v1":
        settings = RecognitionSettings(threshold=threshold, max_rate_hz=args.v1_rate)
    else:
        settings = RecognitionSettings(threshold=threshold)  # the station's defaults
    run.cap = settings.max_rate_hz
    recogniser = Recogniser(
        rx, gallery, LocalFaces(pipeline, every_face=engine == "v1"), settings, workers=args.workers
    )
    if engine == "v2-full":
        recogniser.service.set_config(replace(recogniser.service.config, full_detect_every=1))
    run.workers = recogniser.service.config.workers
    lock = threading.Lock()
    measuring = threading.Event()

    def on_result(r: FrameResult) -> None:
        if measuring.is_set():
            with lock:
                run.analysed[r.camera] += 1
                run.latency[r.camera].append(r.latency_ms)

    def on_sighting(t: TrackRecord) -> None:
        if measuring.is_set():
            with lock:
                run.sightings += 1
                if t.person is not None:
                    run.named[t.person] += 1

    recogniser.service.add_listener(on_result)
    recogniser.add_sighting_listener(on_sighting)
    recogniser.start()
    console = start_console(rx, recogniser) if args.console else None
    host, port = rx.address
    senders = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "network" / "udp_sender.py"),
                *("--source", str(CLIP), "--loop", "--start", f"{(i * CLIP_S / cameras) % (CLIP_S - 0.5):.2f}"),
                *("--name", f"cam-{i + 1:02d}", "--station", f"{host}:{port}", "--key-file", str(key_file)),
                *("--fps", f"{args.fps:g}"),
            ],
            stderr=subprocess.DEVNULL,
        )
        for i in range(cameras)
    ]
    try:
        time.sleep(args.warmup)  # every camera online, first tracks open, shapes compiled
        stages0 = recogniser.service.stages.snapshot()
        recv0 = thread_cpu(("udp-receiver", "receiver"))
        paint0 = console.cpu() if console else {}
        proc0 = psutil.Process().cpu_times()
        send0 = senders_cpu(senders)
        measuring.set()
        t0 = time.monotonic()
        if console is not None:
            console.run_for(args.seconds)
        else:
            time.sleep(args.seconds)
        run.seconds = time.monotonic() - t0
        measuring.clear()
        proc1 = psutil.Process().cpu_times()
        run.sender_cores = (senders_cpu(senders) - send0) / run.seconds
        recv1 = thread_cpu(("udp-receiver", "receiver"))
        spent = recogniser.service.stages.snapshot().minus(stages0)
        run.stages = {"receive": (recv1 - recv0) / run.seconds}
        run.stages.update({k: v / run.seconds for k, v in spent.seconds.items()})
        if console is not None:
            paint1 = console.cpu()
            run.stages.update({k: (paint1[k] - paint0.get(k, 0.0)) / run.seconds for k in paint1})
        run.process_cores = (proc1.user + proc1.system - proc0.user - proc0.system) / run.seconds
        run.received_fps = {s.camera: s.fps for s in rx.stats()}
        run.first_decision_p95 = {s.camera: s.first_decision_ms_p95 for s in recogniser.stats()}
    finally:
        for p in senders:
            p.terminate()
        for p in senders:
            p.wait(10)
        if console is not None:
            console.close()
        recogniser.stop()
        rx.stop()
        gallery.close()
        shutil.rmtree(tmp, ignore_errors=True)  # the gallery holds a face: leave nothing behind
    return run


class Console:
    """The real console window, offscreen, fed by the same receiver and recogniser (for the paint figure)."""

    def __init__(self, window: Any, app: Any) -> None:
        self.window = window
        self.app = app
        self._main = threading.get_native_id()

    def cpu(self) -> dict[str, float]:
        main = next((t for t in psutil.Process().threads() if t.id == self._main), None)
        paint = 0.0 if main is None else main.user_time + main.system_time
        return {"display decode": thread_cpu(("display-decoder",)), "paint": paint}

    def run_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.005)

    def close(self) -> None:
        self.window.close()
        self.app.processEvents()


def start_console(rx: UdpReceiver, recogniser: Recogniser) -> Console:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow
    from gui.services import ConsoleServices
    from network import protocol

    app = QApplication.instance() or QApplication(["bench"])
    services = ConsoleServices(
        rx, list, protocol.encode_key(b"\0" * 32), Path("station.key"), rx.address, recogniser=recogniser
    )
    window = MainWindow(services)
    window.resize(1600, 1000)
    window.show()
    return Console(window, app)


def report(run: Run) -> None:
    cap = "none" if run.cap is None else f"{run.cap:g}/s"
    print(
        f"\n### {run.engine}: {run.cameras} cameras x 15 fps 640x360, {run.runtime} runtime, cap {cap} per camera, "
        f"{run.workers} workers, {run.seconds:.0f} s measured\n"
    )
    print("| camera | received fps | analysed fps | capture→result p50 ms | p95 ms | first decision p95 ms |")
    print("|---|---|---|---|---|---|")
    for cam in sorted(run.received_fps):
        rate = run.analysed[cam] / run.seconds if run.seconds else 0.0
        fd = run.first_decision_p95.get(cam)
        print(
            f"| {cam} | {run.received_fps[cam]:.1f} | {rate:.2f} | {pct(run.latency[cam], 50)} "
            f"| {pct(run.latency[cam], 95)} | {'-' if fd is None else f'{fd:.0f}'} |"
        )
    rates = [run.analysed[c] / run.seconds for c in run.received_fps] if run.seconds else []
    total = sum(rates)
    spread = (max(rates) / min(rates)) if rates and min(rates) > 0 else float("nan")
    print(
        f"\n{run.engine}, {run.cameras} cameras: {total:.1f} frames analysed/s in total, "
        f"{total / max(1, run.cameras):.2f} per camera (min {min(rates, default=0):.2f}), "
        f"fairness max/min {spread:.2f}; "
        f"sightings {run.sightings}, named {dict(run.named) or 'nobody'}; process {run.process_cores:.2f} cores, "
        f"senders {run.sender_cores:.2f} cores"
    )
    print("\n| stage | cores |\n|---|---|")
    for stage, cores in run.stages.items():
        print(f"| {stage} | {cores:.3f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", default="4,16", help="camera counts to run, comma-separated (default 4,16)")
    ap.add_argument("--engines", default="v1,v2-full,v2", help="engines, comma-separated (default v1,v2-full,v2)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--fps", type=float, default=15.0, help="frames per second each sender streams")
    ap.add_argument("--v1-rate", type=float, default=5.0, help="v1's cap, recognitions/s per camera (old default 5)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--console", action="store_true", help="also run the console offscreen, for the paint figure")
    args = ap.parse_args()
    if not CLIP.exists():
        raise SystemExit(f"the clip lives in {CLIP}")
    engines = [e.strip() for e in args.engines.split(",")]
    if unknown := sorted(set(engines) - {"v1", "v2", "v2-full"}):
        raise SystemExit(f"unknown engine(s) {', '.join(unknown)}: choose from v1, v2, v2-full")
    runs = []
    for cameras in [int(c) for c in args.cameras.split(",")]:
        for engine in engines:
            run = measure(engine, cameras, args)
            report(run)
            runs.append(run)
    if len(runs) > 1:
        print(
            "\n## Side by side\n\n| engine | cameras | analysed fps per camera (mean / min) | ÷ v1 "
            "| first decision p95 ms (worst camera) | named in sightings | station cores | senders' cores |"
        )
        print("|---|---|---|---|---|---|---|---|")
        by = {(r.engine, r.cameras): r for r in runs}
        for r in runs:
            rates = [r.analysed[c] / r.seconds for c in r.received_fps] if r.seconds else [0.0]
            mean = sum(rates) / max(1, len(rates))
            base = by.get(("v1", r.cameras))
            ratio = "-"
            if base is not None and r.engine != "v1" and base.seconds:
                b = sum(base.analysed[c] / base.seconds for c in base.received_fps) / max(1, len(base.received_fps))
                ratio = f"{mean / b:.1f}x" if b else "-"
            decisions = [v for v in r.first_decision_p95.values() if v is not None]
            worst = f"{max(decisions):.0f}" if decisions else "-"
            named = ", ".join(f"{k} ×{v}" for k, v in sorted(r.named.items())) or "nobody"
            print(
                f"| {r.engine} | {r.cameras} | {mean:.2f} / {min(rates):.2f} | {ratio} | {worst} | {named} "
                f"| {r.process_cores:.2f} | {r.sender_cores:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
