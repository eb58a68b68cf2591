"""Recognition on Ray actors: frames per second against the number of actors, and the Ray path's
per-frame overhead against local threads, on the same frames with the same pipeline, in one run.

Run: .venv/bin/python bench/scale.py [--actors 1 2 3] [--seconds 10] [--frames 40]

Frames are JPEGs of the Hamilton clip (640x360, 1 to 4 faces each), spread over the clip. Every
analysis runs one TensorFlow thread (FACESTATION_TF_THREADS=1 here and in each 1-CPU actor), so a
local thread and an actor do the same work.

* **latency**: one caller, one frame at a time, local (decode + FacePipeline.observe in this
  process) and a 1-actor pool (the JPEG travels to the actor, the observations come back)
  alternating frame by frame, so both see the same load on a shared machine; and the bare round
  trip (a 4-byte non-JPEG, which the actor answers at once with a decode error).
* **throughput**: ``actors × 2`` caller threads (what the station gives a pool: actors × max_batch)
  for ``--seconds``; and, as the reference, local threads (1 and 2) calling the pipeline directly,
  before the Ray rows and (2 threads) again after them.

Ray runs privately in this process (``ray.init`` with its own temp dir and token, no dashboard,
no usage stats) and is shut down at the end. The machine is shared, so figures move by 10-20%.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("FACESTATION_TF_THREADS", "1")
os.environ.update({"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)})

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vision.native_logs import quiet_native_logs

quiet_native_logs()  # before anything imports TensorFlow

import cv2  # noqa: E402

from network.frames import FrameDecodeError, decode_jpeg  # noqa: E402
from vision.pipeline import FacePipeline  # noqa: E402
from vision.ray_workers import RayPoolConfig, RayRecognitionPool  # noqa: E402

CLIP = Path(__file__).resolve().parent.parent.parent / "shared" / "faces" / "video" / "short_hamilton_clip.mp4"


def clip_frames(count: int) -> list[bytes]:
    cap = cv2.VideoCapture(str(CLIP))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    out = []
    for i in range(count):
        cap.set(cv2.CAP_PROP_POS_FRAMES, i * total // count)
        ok, image = cap.read()
        if ok:
            out.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    cap.release()
    if not out:
        raise SystemExit(f"no frames read from {CLIP}")
    return out


def paired_latency_ms(fns: list[Callable[[bytes], object]], frames: list[bytes], rounds: int) -> list[list[float]]:
    """Milliseconds per call of each function, the functions taking turns on the same frame."""
    out: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn(frames[0])
    for i in range(rounds):
        for k, fn in enumerate(fns):
            t = time.perf_counter()
            fn(frames[i % len(frames)])
            out[k].append((time.perf_counter() - t) * 1000.0)
    return out


def round_trip_ms(pool: RayRecognitionPool, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds + 1):
        t = time.perf_counter()
        with contextlib.suppress(FrameDecodeError):
            pool.analyse_jpeg(b"\xff\xd8no")
        out.append((time.perf_counter() - t) * 1000.0)
    return out[1:]


def throughput(fn: Callable[[bytes], object], frames: list[bytes], threads: int, seconds: float) -> float:
    """Frames per second with ``threads`` callers each going round the frames for ``seconds``."""
    done = [0] * threads
    stop = time.monotonic() + seconds

    def loop(k: int) -> None:
        i = k
        while time.monotonic() < stop:
            fn(frames[i % len(frames)])
            done[k] += 1
            i += threads

    began = time.monotonic()
    workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.monotonic() - began)


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--actors", type=int, nargs="+", default=[1, 2, 3], help="pool sizes to measure")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per throughput row")
    ap.add_argument("--frames", type=int, default=40, help="distinct clip frames")
    ap.add_argument("--rounds", type=int, default=25, help="frames per latency figure")
    args = ap.parse_args()
    import ray

    frames = clip_frames(args.frames)
    kib = statistics.mean(len(f) for f in frames) / 1024
    print(f"{len(frames)} frames of {CLIP.name}, JPEG {kib:.0f} KiB on average; {os.cpu_count()} CPUs", flush=True)

    t = time.monotonic()
    pipeline = FacePipeline()
    pipeline.warm_up()
    faces = statistics.mean(len(pipeline.observe(decode_jpeg(f))) for f in frames[:10])
    print(f"local pipeline loaded in {time.monotonic() - t:.1f} s, {faces:.1f} faces per frame", flush=True)

    def local(jpeg: bytes) -> object:
        return pipeline.observe(decode_jpeg(jpeg))

    rows: list[tuple[str, int, int, float, str]] = []
    for threads in (1, 2):
        rows.append(("local threads", threads, threads, throughput(local, frames, threads, args.seconds), ""))
        print(f"local, {threads} thread(s): {rows[-1][3]:.2f} fps", flush=True)
    station_rss = rss_mib()

    temp = tempfile.mkdtemp(prefix="fsray-bench-", dir="/tmp")
    ray.init(
        num_cpus=max(args.actors),
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        _temp_dir=temp,
    )
    local_lat: list[float] = []
    ray_lat: list[float] = []
    trip: list[float] = []
    actor_mem: dict[int, list[tuple[int, int]]] = {}
    try:
        for n in args.actors:
            t = time.monotonic()
            pool = RayRecognitionPool(RayPoolConfig(address="auto", actors=n, cpus_per_actor=1, max_batch=2))
            pool.start()
            loaded = time.monotonic() - t
            try:
                if n == 1:
                    local_lat, ray_lat = paired_latency_ms([local, pool.analyse_jpeg], frames, args.rounds)
                    trip = round_trip_ms(pool, 50)
                fps = throughput(pool.analyse_jpeg, frames, pool.config.station_workers, args.seconds)
                actor_mem[n] = pool.actor_memory_bytes()
                st = pool.stats()
                note = f"actors loaded in {loaded:.0f} s; {st.frames / max(1, st.batches):.2f} frames per call"
                rows.append(("ray actors", n, pool.config.station_workers, fps, note))
                print(f"ray, {n} actor(s): {fps:.2f} fps ({note})", flush=True)
            finally:
                pool.stop()
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    # The machine is shared: the first local row again shows how much the load moved meanwhile.
    rows.append(("local threads, again", 2, 2, throughput(local, frames, 2, args.seconds), "after the Ray rows"))

    print()
    print("| path | workers | caller threads | frames/s | vs 1 local thread | notes |")
    print("|---|---:|---:|---:|---:|---|")
    base = rows[0][3]
    for path, n, callers, fps, note in rows:
        print(f"| {path} | {n} | {callers} | {fps:.2f} | {fps / base:.2f} | {note} |")
    print()
    if ray_lat:
        lp50, rp50 = statistics.median(local_lat), statistics.median(ray_lat)
        print("| one frame at a time (taking turns) | p50 ms | mean ms | ratio (p50) |")
        print("|---|---:|---:|---:|")
        print(f"| local (decode + observe) | {lp50:.1f} | {statistics.mean(local_lat):.1f} | 1.00 |")
        print(f"| 1 Ray actor (JPEG there, observations back) | {rp50:.1f} | {statistics.mean(ray_lat):.1f} "
              f"| {rp50 / lp50:.2f} |")  # fmt: skip
        print(f"| Ray round trip alone (no model work) | {statistics.median(trip):.1f} | {statistics.mean(trip):.1f} "
              f"| {statistics.median(trip) / lp50:.3f} |")  # fmt: skip
        print(f"\nRay path minus local, per frame: {rp50 - lp50:+.1f} ms at p50")
    for n, mem in actor_mem.items():
        rss, pss = (statistics.mean(m[i] for m in mem) / 2**20 for i in (0, 1))
        print(f"{n} actor(s): memory per actor RSS {rss:.0f} MiB, PSS {pss:.0f} MiB (libraries shared on the node)")
    print(f"this process with the local pipeline loaded: RSS {station_rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
