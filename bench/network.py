"""Network benchmark: FaceStation UDP against imagezmq REQ/REP and PUB/SUB over loopback.

N sender processes stream the same pre-encoded JPEG frames at F fps to one hub
process per transport, one transport after the other. Everything stays on
127.0.0.1. For each transport it prints one Markdown table row::

    python bench/network.py                          # 16 cameras x 15 fps x 640x480 x q80, 10 s each
    python bench/network.py --cameras 4 --seconds 5  # a quick run

Timeline of one transport: the hub starts and binds, the senders start and
report ready, then the parent sets a common start time T. Senders send from T;
frames captured in [T + warm-up, T + warm-up + D) are the measured ones, on
both sides (by the capture timestamp carried with each frame), so "lost" is
frames sent in the window minus frames the hub decoded from the window. The hub
keeps receiving for a grace period after the window; later frames count as lost.

Hub CPU is the hub process's CPU time (all threads, user + system, from psutil)
over the window divided by the window's wall time; "decode" is the part of it
spent inside cv2.imdecode (thread CPU time). Latency is capture (sender, just
before sending) to decoded (hub, just after cv2.imdecode), both from
time.time() on this machine. Every hub decodes on a non-main thread and, for
imagezmq REQ/REP, after sending the reply.

Caveat, measured: what cv2.imdecode costs depends on the hub process's glibc
heap, not on the transport. When glibc trims the heap after each decode frees
its ~1 MB output buffer, the next decode pays ~420 page faults (~+1 ms CPU per
640x480 frame). Which hubs hit that depends on their allocation history, so the
table also shows CPU excluding decode; ``--malloc-top-pad 8000000`` makes decode
cost the same everywhere (0 faults).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import platform
import queue
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent

RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)  # per-thread on Linux
DEFAULT_CLIP = ROOT.parent / "shared" / "faces" / "video" / "short_hamilton_clip.mp4"
HOST = "127.0.0.1"  # never anything else
TRANSPORTS = {"udp": "FaceStation UDP", "reqrep": "imagezmq REQ/REP", "pubsub": "imagezmq PUB/SUB"}
REFERENCE = "reqrep"
SETUP_TIMEOUT_S = 60.0  # a process that is not ready by then is a failure
START_DELAY_S = 0.5  # between "go" and the first frame, so every sender starts on time


@dataclass(frozen=True)
class Config:
    cameras: int
    fps: float
    width: int
    height: int
    quality: int
    seconds: float
    warmup: float
    grace: float
    mbps: float
    fec_group: int
    phase: str = "staggered"
    malloc_top_pad: int = 0
    profile_dir: str | None = None

    def offset(self, index: int) -> float:
        """When camera ``index`` sends within each frame interval: all at once, or spread evenly."""
        return 0.0 if self.phase == "aligned" else index / (self.cameras * self.fps)

    def window_us(self, start_at: float) -> tuple[int, int]:
        """The measured window in integer microseconds (the same on both sides)."""
        begin = start_at + self.warmup
        return int(begin * 1e6), int((begin + self.seconds) * 1e6)

    def stop_at(self, start_at: float) -> float:
        """When the hub stops receiving (and senders close)."""
        return start_at + self.warmup + self.seconds + self.grace


@dataclass
class HubResult:
    delivered: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    decode_cpu_s: float = 0.0
    decode_faults: int = 0  # minor page faults inside cv2.imdecode (see the module's caveat)
    decoded_total: int = 0
    decode_errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SenderResult:
    name: str
    sent_window: int = 0
    sent_total: int = 0
    skipped: int = 0
    send_s: float = 0.0  # wall time inside the transport's send call, window frames


# --------------------------------------------------------------------------
# Frames


def camera_name(index: int) -> str:
    return f"cam{index:02d}"


def prepare_frames(clip: Path, count: int, width: int, height: int, quality: int) -> tuple[list[bytes], str]:
    """``count`` JPEG frames of the clip resized to WxH (or synthetic ones), and where they came from."""
    pictures: list[Any] = []
    origin = f"synthetic (no {clip})"
    if clip.is_file():
        cap = cv2.VideoCapture(str(clip))
        try:
            for _ in range(count):
                ok, img = cap.read()
                if not ok:
                    break
                pictures.append(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA))
        finally:
            cap.release()
        if pictures:
            origin = f"{clip.name}, {len(pictures)} frames"
    if not pictures:
        from network.udp_sender import DemoSource

        demo = DemoSource(width, height)
        for i in range(count):
            pic = demo.read(i / 15.0)
            if pic is not None:
                pictures.append(pic)
    frames = []
    for img in pictures:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        frames.append(buf.tobytes())
    return frames, origin


# --------------------------------------------------------------------------
# Child processes (spawned; they import this module afresh)


def _child_setup() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us


def _wait_go(go: Any, start_at: Any, parent: int) -> float:
    """Wait (bounded) for the parent's start signal; the common start time."""
    deadline = time.monotonic() + SETUP_TIMEOUT_S * 2
    while not go.wait(0.5):
        if time.monotonic() > deadline or os.getppid() != parent:
            raise TimeoutError("no start signal from the parent")
    return float(start_at.value)


def _sleep_until(t: float) -> None:
    left = t - time.time()
    if left > 0:
        time.sleep(left)


class _Recorder:
    """Decodes each frame and records what the table needs (one thread only)."""

    def __init__(self, window: tuple[int, int], cameras: int) -> None:
        self.window = window
        self.result = HubResult(delivered={camera_name(i): 0 for i in range(cameras)})

    def frame(self, camera: str, captured_us: int, jpeg: Any) -> None:
        faults = resource.getrusage(RUSAGE_THREAD).ru_minflt
        t0 = time.thread_time()
        img = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
        done = time.time()
        cpu = time.thread_time() - t0
        faults = resource.getrusage(RUSAGE_THREAD).ru_minflt - faults
        r = self.result
        r.decoded_total += 1
        if img is None:
            r.decode_errors += 1
            return
        if self.window[0] <= captured_us < self.window[1]:
            r.delivered[camera] = r.delivered.get(camera, 0) + 1
            r.latencies_ms.append((done - captured_us / 1e6) * 1000.0)
            r.decode_cpu_s += cpu
            r.decode_faults += faults


def _profiled(fn: Callable[[], None], path: str | None) -> Callable[[], None]:
    """Run ``fn`` under cProfile (on whatever thread calls it) and dump to ``path``."""
    if path is None:
        return fn

    def run() -> None:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        try:
            fn()
        finally:
            prof.disable()
            prof.dump_stats(path)

    return run


def hub_main(kind: str, cfg: Config, key: bytes, results: Any, hub_q: Any, go: Any, start_at: Any, parent: int) -> None:
    _child_setup()
    try:
        result = _HUBS[kind](cfg, key, results, hub_q, go, start_at, parent)
        results.put(("hub-done", result))
    except BaseException:
        results.put(("error", "hub", traceback.format_exc()))


def _hub_udp(cfg: Config, key: bytes, results: Any, hub_q: Any, go: Any, start_at: Any, parent: int) -> HubResult:
    from network.frames import Frame
    from network.udp_receiver import ReceiverConfig, UdpReceiver

    rx = UdpReceiver(key, HOST, 0, config=ReceiverConfig(station_name="bench"))
    recorder: _Recorder | None = None

    reassembled_ms: list[float] = []

    def on_frame(frame: Frame) -> None:
        if recorder is not None:
            captured_us = round(frame.captured_at * 1e6)
            if recorder.window[0] <= captured_us < recorder.window[1]:
                reassembled_ms.append(frame.latency_ms)
            recorder.frame(frame.camera, captured_us, frame.jpeg)

    rx.add_listener(on_frame)
    if cfg.profile_dir:  # cProfile sees one thread: profile the receive thread itself
        rx._run = _profiled(rx._run, os.path.join(cfg.profile_dir, "hub-udp.prof"))  # type: ignore[method-assign]
    rx.start()
    try:
        results.put(("hub-ready", rx.address[1]))
        t0 = _wait_go(go, start_at, parent)
        recorder = _Recorder(cfg.window_us(t0), cfg.cameras)
        _sleep_until(cfg.stop_at(t0))
    finally:
        rx.stop()
    assert recorder is not None
    stats = rx.stats()
    recorder.result.extra = {
        "datagrams": rx.datagrams,
        "incomplete": sum(s.incomplete for s in stats),
        "recovered": sum(s.recovered for s in stats),
        "rejected": rx.rejected(),
        "capture->reassembled ms p50/p95": [round(float(np.percentile(reassembled_ms, q)), 2) for q in (50, 95)]
        if reassembled_ms
        else None,
    }
    return recorder.result


def _hub_zmq(
    cfg: Config, key: bytes, results: Any, hub_q: Any, go: Any, start_at: Any, parent: int, *, reqrep: bool
) -> HubResult:
    import imagezmq
    import zmq

    if reqrep:
        hub = imagezmq.ImageHub(open_port=f"tcp://{HOST}:*")
        results.put(("hub-ready", hub.zmq_socket.getsockopt_string(zmq.LAST_ENDPOINT)))
    else:  # in PUB/SUB the senders bind: learn their endpoints first, then connect to each
        results.put(("hub-ready", None))
        endpoints: list[str] = hub_q.get(timeout=SETUP_TIMEOUT_S)
        hub = imagezmq.ImageHub(open_port=endpoints[0], REQ_REP=False)
        for endpoint in endpoints[1:]:
            hub.connect(endpoint)
        results.put(("hub-connected", len(endpoints)))
    hub.zmq_socket.setsockopt(zmq.RCVTIMEO, 100)
    hub.zmq_socket.setsockopt(zmq.LINGER, 0)
    try:
        t0 = _wait_go(go, start_at, parent)
        recorder = _Recorder(cfg.window_us(t0), cfg.cameras)
        stop_at = cfg.stop_at(t0)
        limit = int((cfg.warmup + cfg.seconds + cfg.grace + 5) * cfg.fps * cfg.cameras * 2) + 1000

        def loop() -> None:
            for _ in range(limit):
                if time.time() >= stop_at:
                    return
                try:
                    msg, jpeg = hub.recv_jpg()
                except zmq.Again:
                    continue
                if reqrep:
                    hub.send_reply(b"OK")
                name, _frame_id, captured = str(msg).split()
                recorder.frame(name, int(captured), jpeg)

        path = (
            os.path.join(cfg.profile_dir, f"hub-{'reqrep' if reqrep else 'pubsub'}.prof") if cfg.profile_dir else None
        )
        _on_worker_thread(_profiled(loop, path), stop_at + 10)
    finally:
        hub.close()
    return recorder.result


def _on_worker_thread(fn: Callable[[], None], deadline: float) -> None:
    """Run ``fn`` on a worker thread, as the UDP receiver decodes on its receive thread.

    Decoding on the main thread would cost more for a reason unrelated to the
    transport: glibc trims the main heap after every decode (see the module's
    caveat), so each 640x480 frame pays ~420 page faults there.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="hub-receive", daemon=True)
    thread.start()
    thread.join(timeout=max(1.0, deadline - time.time()))
    if thread.is_alive():
        raise TimeoutError("hub receive loop did not stop")
    if errors:
        raise errors[0]


_HUBS: dict[str, Callable[..., HubResult]] = {
    "udp": _hub_udp,
    "reqrep": lambda *a: _hub_zmq(*a, reqrep=True),
    "pubsub": lambda *a: _hub_zmq(*a, reqrep=False),
}


def sender_main(
    kind: str,
    index: int,
    cfg: Config,
    key: bytes,
    hub: Any,
    frames: list[bytes],
    results: Any,
    go: Any,
    start_at: Any,
    parent: int,
) -> None:
    _child_setup()
    try:
        if kind == "udp":
            result = _send_udp(index, cfg, key, int(hub), frames, results, go, start_at, parent)
        else:
            result = _send_zmq(index, cfg, str(hub), frames, results, go, start_at, parent, reqrep=kind == "reqrep")
        results.put(("sender-done", result))
    except BaseException:
        results.put(("error", camera_name(index), traceback.format_exc()))


def _paced(
    index: int, cfg: Config, t0: float, send: Callable[[int, int], None], tick: Callable[[], None]
) -> SenderResult:
    """Send at ``cfg.fps`` from ``t0`` until the window ends; skip (never queue) a slot we are late for."""
    result = SenderResult(camera_name(index))
    begin_us, end_us = cfg.window_us(t0)
    t0 += cfg.offset(index)
    interval = 1.0 / cfg.fps
    for k in range(int((cfg.warmup + cfg.seconds) * cfg.fps) + 1):
        due = t0 + k * interval
        if due * 1e6 >= end_us:
            break
        _sleep_until(due)
        if time.time() - due > interval:
            result.skipped += 1
            continue
        tick()
        captured_us = int(time.time() * 1e6)
        if captured_us >= end_us:
            break
        send(k, captured_us)
        result.sent_total += 1
        if captured_us >= begin_us:
            result.sent_window += 1
            result.send_s += time.time() - captured_us / 1e6
    return result


def _send_udp(
    index: int,
    cfg: Config,
    key: bytes,
    port: int,
    frames: list[bytes],
    results: Any,
    go: Any,
    start_at: Any,
    parent: int,
) -> SenderResult:
    from network.udp_sender import DemoSource, Sender

    name = camera_name(index)
    station = (HOST, port)
    sender = Sender(
        DemoSource(cfg.width, cfg.height, cfg.fps),
        key,
        name=name,
        fps=cfg.fps,
        max_width=cfg.width,
        quality=cfg.quality,
        station=station,
        bind_host=HOST,
        mbps=cfg.mbps,
        fec_group=cfg.fec_group,
    )
    sender.width, sender.height = cfg.width, cfg.height
    try:
        sender._send_hello(station)
        results.put(("sender-ready", name, None))
        t0 = _wait_go(go, start_at, parent)
        last_hello = time.monotonic()

        def tick() -> None:  # what Sender.run does between frames
            nonlocal last_hello
            if time.monotonic() - last_hello >= 1.0:
                last_hello = time.monotonic()
                sender._send_hello(station)
            sender.poll_control(0)

        def send(k: int, captured_us: int) -> None:
            sender.send_frame(frames[k % len(frames)], k, captured_us)

        result = _paced(index, cfg, t0, send, tick)
        _sleep_until(cfg.stop_at(t0))
    finally:
        sender.close()
    return result


def _send_zmq(
    index: int,
    cfg: Config,
    endpoint: str,
    frames: list[bytes],
    results: Any,
    go: Any,
    start_at: Any,
    parent: int,
    *,
    reqrep: bool,
) -> SenderResult:
    import imagezmq
    import zmq

    name = camera_name(index)
    if reqrep:
        sender = imagezmq.ImageSender(connect_to=endpoint)
        sender.zmq_socket.setsockopt(zmq.RCVTIMEO, 5000)  # a vanished hub must not hang us
        sender.zmq_socket.setsockopt(zmq.SNDTIMEO, 5000)
        bound = None
    else:
        sender = imagezmq.ImageSender(connect_to=f"tcp://{HOST}:*", REQ_REP=False)
        bound = sender.zmq_socket.getsockopt_string(zmq.LAST_ENDPOINT)
    sender.zmq_socket.setsockopt(zmq.LINGER, 0)
    try:
        results.put(("sender-ready", name, bound))
        t0 = _wait_go(go, start_at, parent)

        def send(k: int, captured_us: int) -> None:
            sender.send_jpg(f"{name} {k} {captured_us}", frames[k % len(frames)])

        result = _paced(index, cfg, t0, send, lambda: None)
        _sleep_until(cfg.stop_at(t0))  # keep queued PUB messages deliverable until the hub stops
    finally:
        sender.close()
    return result


# --------------------------------------------------------------------------
# The parent


@dataclass
class Row:
    kind: str
    hub: HubResult
    senders: list[SenderResult]
    hub_cpu: float
    senders_cpu: float
    seconds: float  # the measured window (frames are counted by capture time within it)
    hub_threads: list[str] = field(default_factory=list)

    @property
    def fps(self) -> list[float]:
        return [self.hub.delivered.get(s.name, 0) / self.seconds for s in self.senders]

    @property
    def decode_cpu(self) -> float:
        return self.hub.decode_cpu_s / self.seconds

    @property
    def transport_cpu(self) -> float:
        """Hub CPU less the time inside cv2.imdecode: what receiving itself costs."""
        return self.hub_cpu - self.decode_cpu

    @property
    def sent(self) -> int:
        return sum(s.sent_window for s in self.senders)

    @property
    def lost(self) -> int:
        return self.sent - sum(self.hub.delivered.get(s.name, 0) for s in self.senders)

    def latency(self, q: float) -> float:
        return float(np.percentile(self.hub.latencies_ms, q)) if self.hub.latencies_ms else float("nan")


class BenchError(RuntimeError):
    pass


def _collect(results: Any, want: str, count: int, timeout: float) -> list[tuple[Any, ...]]:
    """``count`` messages of kind ``want``; a child's error message becomes a BenchError."""
    return _collect_all(results, {want: count}, timeout)[want]


def _collect_all(results: Any, wants: dict[str, int], timeout: float) -> dict[str, list[tuple[Any, ...]]]:
    """Messages of the kinds in ``wants``, that many of each, in any order."""
    deadline = time.monotonic() + timeout
    got: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in wants}
    while any(len(got[kind]) < n for kind, n in wants.items()):
        left = deadline - time.monotonic()
        if left <= 0:
            missing = {kind: f"{len(got[kind])} of {n}" for kind, n in wants.items()}
            raise BenchError(f"timed out waiting for {missing}")
        try:
            msg = results.get(timeout=min(left, 1.0))
        except queue.Empty:
            continue
        if msg[0] == "error":
            raise BenchError(f"{msg[1]} failed:\n{msg[2]}")
        if msg[0] not in wants:
            raise BenchError(f"expected {' or '.join(wants)}, got {msg[0]}")
        got[msg[0]].append(msg)
    return got


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _threads(pid: int) -> dict[int, tuple[str, float, int]]:
    """Per thread of ``pid``: (name, CPU seconds, voluntary context switches), from /proc (Linux only)."""
    out: dict[int, tuple[str, float, int]] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (task / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            cpu = (int(fields[11]) + int(fields[12])) / tick
            switches = next(
                int(line.split()[1])
                for line in (task / "status").read_text().splitlines()
                if line.startswith("voluntary_ctxt_switches")
            )
            out[int(task.name)] = ((task / "comm").read_text().strip(), cpu, switches)
    return out


def _thread_deltas(
    before: dict[int, tuple[str, float, int]], after: dict[int, tuple[str, float, int]], wall: float
) -> list[str]:
    rows = []
    for tid, (name, cpu, sw) in after.items():
        _, cpu0, sw0 = before.get(tid, (name, 0.0, 0))
        rows.append(((cpu - cpu0) / wall, (sw - sw0) / wall, name))
    rows.sort(reverse=True)
    return [f"{name} {cores:.2f} cores, {wakeups:.0f} sleeps/s" for cores, wakeups, name in rows[:3] if cores >= 0.005]


def _reap(procs: list[Any], patience: float = 5.0) -> None:
    """Join (up to ``patience`` s), then terminate, then kill whatever we started; nothing outlives the run."""
    deadline = time.monotonic() + patience
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=2.0)
        if p.is_alive():
            p.kill()
            p.join(timeout=2.0)


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def run_transport(kind: str, cfg: Config, frames: list[bytes], children: list[Any]) -> Row:
    ctx = mp.get_context("spawn")
    key = os.urandom(32)
    results = ctx.Queue()
    hub_q = ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    parent = os.getpid()
    procs: list[Any] = []
    finished = False
    saved_env = os.environ.get("MALLOC_TOP_PAD_")
    if cfg.malloc_top_pad:  # read by glibc at start-up in each spawned child
        os.environ["MALLOC_TOP_PAD_"] = str(cfg.malloc_top_pad)
    try:
        hub = ctx.Process(
            target=hub_main, args=(kind, cfg, key, results, hub_q, go, start_at, parent), name=f"hub-{kind}"
        )
        hub.start()
        procs.append(hub)
        children.append(hub)
        endpoint = _collect(results, "hub-ready", 1, SETUP_TIMEOUT_S)[0][1]
        for i in range(cfg.cameras):
            p = ctx.Process(
                target=sender_main,
                args=(kind, i, cfg, key, endpoint, frames, results, go, start_at, parent),
                name=f"sender-{kind}-{i}",
            )
            p.start()
            procs.append(p)
            children.append(p)
        ready = _collect(results, "sender-ready", cfg.cameras, SETUP_TIMEOUT_S)
        _restore_env("MALLOC_TOP_PAD_", saved_env)
        if kind == "pubsub":
            hub_q.put([m[2] for m in sorted(ready, key=lambda m: m[1])])
            _collect(results, "hub-connected", 1, SETUP_TIMEOUT_S)
        hub_ps = [psutil.Process(hub.pid)]
        sender_ps = [psutil.Process(p.pid) for p in procs[1:]]
        t0 = time.time() + START_DELAY_S
        start_at.value = t0
        go.set()
        _sleep_until(t0 + cfg.warmup)
        w0, h0, s0, th0 = time.time(), _cpu(hub_ps), _cpu(sender_ps), _threads(hub_ps[0].pid)
        _sleep_until(t0 + cfg.warmup + cfg.seconds)
        w1, h1, s1, th1 = time.time(), _cpu(hub_ps), _cpu(sender_ps), _threads(hub_ps[0].pid)
        done = _collect_all(results, {"sender-done": cfg.cameras, "hub-done": 1}, cfg.grace + 30)
        hub_result: HubResult = done["hub-done"][0][1]
        senders = sorted((m[1] for m in done["sender-done"]), key=lambda s: s.name)
        wall = w1 - w0
        hub_threads = _thread_deltas(th0, th1, wall)
        finished = True
        return Row(kind, hub_result, senders, (h1 - h0) / wall, (s1 - s0) / wall, cfg.seconds, hub_threads)
    finally:
        _restore_env("MALLOC_TOP_PAD_", saved_env)
        _reap(procs, 5.0 if finished else 0.0)  # interrupted or failed: terminate at once
        for q in (results, hub_q):
            if not finished:
                q.cancel_join_thread()
            q.close()
            q.join_thread()


# --------------------------------------------------------------------------
# Output


def environment(cfg: Config, frames: list[bytes], origin: str) -> str:
    import cryptography
    import imagezmq
    import zmq

    sizes = [len(f) for f in frames]
    return (
        f"Environment: {os.cpu_count()} cores ({platform.machine()}, {platform.system()} {platform.release()}), "
        f"load {os.getloadavg()[0]:.2f}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"OpenCV {cv2.__version__}, cryptography {cryptography.__version__}, pyzmq {zmq.__version__} "
        f"(libzmq {zmq.zmq_version()}), imagezmq {imagezmq.__version__}, psutil {psutil.__version__}. "
        f"Frames: {origin}, {cfg.width}x{cfg.height} q{cfg.quality}, JPEG {np.mean(sizes) / 1024:.1f} KiB mean "
        f"({min(sizes) / 1024:.1f}-{max(sizes) / 1024:.1f})."
    )


def table(rows: list[Row], cfg: Config) -> str:
    head = (
        "| transport | cameras | fps/camera mean | fps/camera min | sent | lost (incomplete) "
        "| hub CPU (cores) | of which decode | hub CPU excl. decode | senders CPU (cores) "
        "| latency p50 ms | latency p95 ms |"
    )
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for r in rows:
        fps = r.fps
        lost_pct = 100.0 * r.lost / r.sent if r.sent else 0.0
        lines.append(
            f"| {TRANSPORTS[r.kind]} | {len(r.senders)} | {np.mean(fps):.2f} | {min(fps):.2f} | {r.sent} "
            f"| {r.lost} ({lost_pct:.1f}%) | {r.hub_cpu:.2f} | {r.decode_cpu:.2f} | {r.transport_cpu:.2f} "
            f"| {r.senders_cpu:.2f} | {r.latency(50):.1f} | {r.latency(95):.1f} |"
        )
    return "\n".join(lines)


def ratios(rows: list[Row]) -> list[str]:
    ref = next((r for r in rows if r.kind == REFERENCE), None)
    if ref is None:
        return []
    out = []
    for r in rows:
        if r is ref:
            continue
        out.append(
            f"{TRANSPORTS[r.kind]} / {TRANSPORTS[ref.kind]}: latency p50 x{r.latency(50) / ref.latency(50):.2f}, "
            f"p95 x{r.latency(95) / ref.latency(95):.2f}, hub CPU x{r.hub_cpu / ref.hub_cpu:.2f}, "
            f"hub CPU excl. decode x{r.transport_cpu / ref.transport_cpu:.2f}"
        )
    return out


def details(rows: list[Row], cfg: Config) -> list[str]:
    out = []
    for r in rows:
        s = r.senders
        extra = f"; receiver counters: {r.hub.extra}" if r.hub.extra else ""
        frames = max(1, len(r.hub.latencies_ms))
        decode_ms = 1000.0 * r.hub.decode_cpu_s / frames
        out.append(
            f"{TRANSPORTS[r.kind]}: sent per camera in the window {min(x.sent_window for x in s)}"
            f"-{max(x.sent_window for x in s)} (target {cfg.fps * cfg.seconds:.0f}), "
            f"slots skipped by late senders {sum(x.skipped for x in s)}, "
            f"send call {1000.0 * sum(x.send_s for x in s) / max(1, r.sent):.2f} ms/frame, "
            f"decode {decode_ms:.2f} ms CPU and "
            f"{r.hub.decode_faults / frames:.0f} page faults per frame, "
            f"decode errors {r.hub.decode_errors}; busiest hub threads: {'; '.join(r.hub_threads) or '?'}{extra}"
        )
    return out


# --------------------------------------------------------------------------
# Command line


def _resolution(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or not (16 <= int(w) <= 4096 and 16 <= int(h) <= 4096):
        raise argparse.ArgumentTypeError(f"expected WxH like 640x480, got {text!r}")
    return int(w), int(h)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/network.py",
        description="FaceStation UDP vs imagezmq REQ/REP and PUB/SUB over 127.0.0.1; prints a Markdown table.",
    )
    p.add_argument("--cameras", type=int, default=16, help="sender processes (default 16)")
    p.add_argument("--fps", type=float, default=15.0, help="frames per second per camera (default 15)")
    p.add_argument("--resolution", type=_resolution, default=(640, 480), metavar="WxH", help="default 640x480")
    p.add_argument("--quality", type=int, default=80, help="JPEG quality (default 80)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per transport (default 10)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds sent before the window (default 1)")
    p.add_argument("--grace", type=float, default=2.0, help="seconds the hub keeps receiving after it (default 2)")
    p.add_argument("--frames", type=int, default=60, help="distinct pre-encoded frames (default 60)")
    p.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="video to take frames from (else synthetic)")
    p.add_argument(
        "--transports",
        default=",".join(TRANSPORTS),
        help=f"comma-separated subset of {','.join(TRANSPORTS)} (default all, in that order)",
    )
    p.add_argument(
        "--phase",
        choices=("staggered", "aligned"),
        default="staggered",
        help="staggered: cameras spread evenly over each frame interval (default); aligned: all send at once",
    )
    p.add_argument(
        "--malloc-top-pad",
        type=int,
        default=0,
        metavar="BYTES",
        help="set glibc MALLOC_TOP_PAD_ in every child (e.g. 8000000): removes the heap-history-dependent "
        "page-fault cost of cv2.imdecode, so decode costs the same in every hub (default: glibc's own)",
    )
    p.add_argument("--max-mbps", type=float, default=200.0, help="FaceStation sender pacing (default 200)")
    p.add_argument("--fec-group", type=int, default=8, help="FaceStation data chunks per parity chunk (default 8)")
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="run each hub's receive loop under cProfile and write DIR/hub-KIND.prof (inflates hub CPU)",
    )
    return p


def _check(args: argparse.Namespace) -> list[str]:
    problems = []
    if not 1 <= args.cameras <= 64:
        problems.append("--cameras must be within 1..64")
    if not 0 < args.fps <= 120:
        problems.append("--fps must be within (0, 120]")
    if not 1 <= args.quality <= 100:
        problems.append("--quality must be within 1..100")
    if not 0.5 <= args.seconds <= 600:
        problems.append("--seconds must be within 0.5..600")
    if not 0 <= args.warmup <= 30 or not 0.1 <= args.grace <= 30:
        problems.append("--warmup must be within 0..30 and --grace within 0.1..30")
    if not 1 <= args.frames <= 1000:
        problems.append("--frames must be within 1..1000")
    if not 0 <= args.malloc_top_pad <= 1 << 30:
        problems.append("--malloc-top-pad must be within 0..1 GiB")
    if args.fec_group < 0:
        problems.append("--fec-group must not be negative")
    kinds = [k.strip() for k in args.transports.split(",") if k.strip()]
    if not kinds or any(k not in TRANSPORTS for k in kinds):
        problems.append(f"--transports takes a subset of {','.join(TRANSPORTS)}")
    return problems


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for problem in _check(args):
        parser.error(problem)
    kinds = [k.strip() for k in args.transports.split(",") if k.strip()]
    width, height = args.resolution
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    cfg = Config(
        cameras=args.cameras,
        fps=args.fps,
        width=width,
        height=height,
        quality=args.quality,
        seconds=args.seconds,
        warmup=args.warmup,
        grace=args.grace,
        mbps=args.max_mbps,
        fec_group=args.fec_group,
        phase=args.phase,
        malloc_top_pad=args.malloc_top_pad,
        profile_dir=str(Path(args.profile).resolve()) if args.profile else None,
    )
    frames, origin = prepare_frames(args.clip, args.frames, width, height, args.quality)
    print(environment(cfg, frames, origin), flush=True)
    print(
        f"Run: {cfg.cameras} cameras x {cfg.fps:g} fps x {width}x{height} x q{cfg.quality}, "
        f"{cfg.seconds:g} s measured per transport after {cfg.warmup:g} s warm-up, {cfg.grace:g} s grace, "
        f"{cfg.phase} phases" + (f", MALLOC_TOP_PAD_={cfg.malloc_top_pad}" if cfg.malloc_top_pad else "") + ".\n",
        flush=True,
    )
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, _raise_interrupt)
    children: list[Any] = []
    rows: list[Row] = []
    try:
        for kind in kinds:
            print(f"... {TRANSPORTS[kind]}", file=sys.stderr, flush=True)
            rows.append(run_transport(kind, cfg, frames, children))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"bench/network.py: error: {exc}", file=sys.stderr)
        return 1
    finally:
        _reap([p for p in children if p.is_alive()], 0.0)
    print(table(rows, cfg))
    print()
    for line in ratios(rows) + details(rows, cfg):
        print(f"- {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
