"""Recognition under load: N cameras streaming at once into one station on this machine.

    .venv/bin/python bench/load.py [--cameras 4] [--seconds 40] [--max-rate 5] [--workers N]

Each camera is a real sender process streaming the Hamilton clip (640x360, looped) over loopback
to a real receiver; the station runs the same Recogniser as `main.py headless`, with Lin-Manuel
Miranda enrolled in a temporary gallery. Prints, per camera: the recognition rate it got, the
latency from capture to recognised result (p50/p95), and from a track's last frame to its
sighting being recorded (p50/p95, which includes the tracker's wait before it ends a track).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vision.tf_runtime import quiet_native_logs  # noqa: E402

quiet_native_logs()  # before anything imports TensorFlow

from network import keys  # noqa: E402
from network.udp_receiver import ReceiverConfig, UdpReceiver  # noqa: E402
from station.runtime import Recogniser, RecognitionSettings, calibrated_threshold  # noqa: E402
from storage.gallery import Gallery  # noqa: E402
from vision.pipeline import FacePipeline  # noqa: E402
from vision.results import FrameResult  # noqa: E402
from vision.tracker import TrackRecord  # noqa: E402

FACES = ROOT.parent / "shared" / "faces"
CLIP = FACES / "video" / "short_hamilton_clip.mp4"
REFERENCE = FACES / "video" / "reference_faces" / "lin-manuel-miranda.png"


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.0f}" if values else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--fps", type=float, default=15.0, help="frames per second each sender streams")
    ap.add_argument("--max-rate", type=float, default=5.0, help="recognitions per second per camera, at most")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="facestation-load-"))
    key_file = tmp / "station.key"
    key = keys.write_new_key(key_file)
    gallery = Gallery.open(tmp / "gallery.db")
    pipeline = FacePipeline()
    pipeline.warm_up()
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
    settings = RecognitionSettings(threshold=calibrated_threshold(pipeline.model), max_rate_hz=args.max_rate)
    recogniser = Recogniser(rx, gallery, pipeline, settings, workers=args.workers)

    lock = threading.Lock()
    measuring = threading.Event()
    results: dict[str, list[float]] = defaultdict(list)
    sightings: dict[str, list[float]] = defaultdict(list)
    named: dict[str, int] = defaultdict(int)

    def on_result(r: FrameResult) -> None:
        if measuring.is_set():
            with lock:
                results[r.camera].append(r.latency_ms)

    def on_sighting(t: TrackRecord) -> None:
        if measuring.is_set():
            with lock:
                sightings[t.camera].append((time.time() - t.end) * 1000.0)
                named[t.camera] += t.person is not None

    recogniser.service.add_listener(on_result)
    recogniser.add_sighting_listener(on_sighting)
    recogniser.start()
    host, port = rx.address
    senders = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "network" / "udp_sender.py"),
                "--source",
                str(CLIP),
                "--loop",
                "--name",
                f"cam-{i + 1}",
                "--station",
                f"{host}:{port}",
                "--key-file",
                str(key_file),
                "--fps",
                f"{args.fps:g}",
            ],
            stderr=subprocess.DEVNULL,
        )
        for i in range(args.cameras)
    ]
    try:
        time.sleep(5)  # warm-up: every camera online, first tracks open
        measuring.set()
        t0 = time.monotonic()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - t0
        measuring.clear()
        stats = {s.camera: s for s in rx.stats()}
    finally:
        for p in senders:
            p.terminate()
        for p in senders:
            p.wait(10)
        recogniser.stop()
        rx.stop()
        gallery.close()

    print(
        f"{args.cameras} cameras x {args.fps:g} fps 640x360, cap {args.max_rate:g} recognitions/s per camera, "
        f"{recogniser.service.config.workers} recognition workers, {elapsed:.0f} s measured\n"
    )
    print(
        "| camera | received fps | recognised/s | capture→result p50 ms | p95 ms | sightings (named) "
        "| track end→sighting p50 ms | p95 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    total = 0.0
    for cam in sorted(results):
        rate = len(results[cam]) / elapsed
        total += rate
        received = stats[cam].fps if cam in stats else 0.0
        print(
            f"| {cam} | {received:.1f} | {rate:.2f} | {pct(results[cam], 50)} | {pct(results[cam], 95)} "
            f"| {len(sightings[cam])} ({named[cam]}) | {pct(sightings[cam], 50)} | {pct(sightings[cam], 95)} |"
        )
    rates = [len(results[c]) / elapsed for c in results]
    spread = (max(rates) / min(rates)) if rates and min(rates) > 0 else float("nan")
    print(f"\ntotal {total:.2f} recognitions/s; fairness max/min rate across cameras {spread:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
