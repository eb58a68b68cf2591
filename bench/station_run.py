"""One configuration of bench/station.py, in a process of its own: a station, the replayed cameras, the figures.

    python bench/station_run.py --tree DIR --frames FILE --cameras N --seconds S --out RESULT.json

``sys.path`` starts with ``--tree`` (the source tree whose station is measured) before anything of
the project is imported; this script's helpers (bench/station_accounting.py, bench/station_adapter.py)
are loaded from beside it by path, so an older tree's own ``bench/`` is never in the way. The replayed
cameras run in one more process (bench/station_replay.py, from this script's tree). The result is one
JSON object written to ``--out``; bench/station.py prints the tables.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FACES = ROOT.parent / "shared" / "faces"
REFERENCE = FACES / "video" / "reference_faces" / "lin-manuel-miranda.png"
PERSON = "Lin-Manuel Miranda"
NOT_NAMED = "not named (unknown or undecided)"


def load_helper(name: str) -> ModuleType:
    """A module of this script's folder, loaded by path (not through ``sys.path``: that is the tree's)."""
    spec = importlib.util.spec_from_file_location(f"_stationbench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def use_tree(tree: Path) -> None:
    """Make ``tree`` the first place imports look, and this script's folder no place at all."""
    here = str(HERE)
    sys.path[:] = [str(tree)] + [p for p in sys.path if p and Path(p).resolve() != Path(here)]


class ErrorCount(logging.Handler):
    """Counts the log records at WARNING and above, by logger (a recognition error is logged there)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname} {record.name}"] += 1


def start_replay(address: tuple[str, int], key_file: Path, frames: Path, cameras: int, fps: float) -> Any:
    cmd = [sys.executable, str(HERE / "station_replay.py"), "--station", f"{address[0]}:{address[1]}"]
    cmd += ["--key-file", str(key_file), "--frames", str(frames), "--cameras", str(cameras), "--fps", f"{fps:g}"]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ""})


class Sampler:
    """The figures at one moment: process and thread CPU, the replay's CPU, per-camera recognition."""

    def __init__(self, acc: ModuleType, sut: Any, replay: Any) -> None:
        import psutil

        self.acc = acc
        self.sut = sut
        self.replay = psutil.Process(replay.pid)

    def take(self) -> dict[str, Any]:
        try:
            replay_s = self.acc.process_cpu(self.replay)
        except Exception:
            replay_s = math.nan
        return {
            "t": time.monotonic(),
            "process": self.acc.process_cpu(),
            "children": self.acc.children_cpu(exclude=self.replay.pid),
            "threads": self.acc.sample_threads(),
            "replay": replay_s,
            "cameras": self.sut.per_camera(),
        }


def window(acc: ModuleType, a: dict[str, Any], b: dict[str, Any], known: Any) -> dict[str, Any]:
    """What happened between two samples."""
    seconds = b["t"] - a["t"]
    own_s = b["process"] - a["process"]
    children_s = max(0.0, b["children"] - a["children"])  # worker processes (a restarted one loses its CPU)
    groups = acc.by_group(a["threads"], b["threads"], own_s, known)
    groups["worker processes"] = children_s
    analysed = {
        cam: int(v["recognised"] or 0) - int(a["cameras"].get(cam, {}).get("recognised") or 0)
        for cam, v in b["cameras"].items()
    }
    return {
        "seconds": seconds,
        "process_s": own_s + children_s,
        "groups_s": groups,
        "threads_s": acc.by_name(a["threads"], b["threads"]),
        "replay_s": b["replay"] - a["replay"],
        "analysed": analysed,
        "first_decision_p95": {cam: v["first_decision_p95"] for cam, v in b["cameras"].items()},
        "errors": {cam: int(v["errors"] or 0) for cam, v in b["cameras"].items()},
    }


def soak(sut: Any, minutes: float, first: dict[str, Any]) -> tuple[list[tuple[float, int]], list[dict[str, int]]]:
    """RSS, and the models compiled so far, every minute for ``minutes`` (minute 0 is ``first``)."""
    import psutil

    proc = psutil.Process()
    rss = [(0.0, proc.memory_info().rss)]
    compiled = [sut.compiled()]
    for m in range(1, int(minutes) + 1):
        time.sleep(max(0.0, first["t"] + 60.0 * m - time.monotonic()))
        rss.append((float(m), proc.memory_info().rss))
        compiled.append(sut.compiled())
        print(
            f"soak: minute {m}: RSS {rss[-1][1] / 2**20:.0f} MiB, compiled {compiled[-1]}", file=sys.stderr, flush=True
        )
    return rss, compiled


def parts_plan(frames: int, cameras: int, rate: float, fps: float, budget: int = 150) -> tuple[int, list[int]]:
    """The stride matching the measured rate per camera, and the cameras' start frames to replay alone
    (enough passes over the clip for about ``budget`` frames, each from a camera's own start)."""
    stride = max(1, round(fps / rate)) if rate > 0 else 1
    per_pass = -(-frames // stride)
    passes = max(1, min(cameras, -(-budget // per_pass)))
    return stride, [(i * frames) // cameras for i in range(passes)]


def run(args: argparse.Namespace, acc: ModuleType, adapter: ModuleType, frames_file: ModuleType) -> dict[str, Any]:
    jpegs = frames_file.read_frames(args.frames)
    folder = Path(tempfile.mkdtemp(prefix="facestation-stationbench-"))  # 0700: it will hold a face
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    announced: list[tuple[str, str, str | None]] = []
    lock = threading.Lock()
    replay = None
    try:
        known = acc.attribute()  # before the station: OpenCV's pool, and the native threads already there
        key_file = folder / "station.key"
        adapter.new_key(key_file)
        sut = adapter.StationUnderTest(folder, key_file, workers=args.workers)
        began = time.monotonic()
        address = sut.start()
        sut.enrol(PERSON, REFERENCE)
        loaded_s = time.monotonic() - began

        def on_sighting(s: tuple[str, str, str | None]) -> None:
            with lock:
                announced.append(s)

        sut.on_sighting(on_sighting)
        replay = start_replay(address, key_file, args.frames, args.cameras, args.fps)
        sampler = Sampler(acc, sut, replay)
        time.sleep(args.warmup)
        first = sampler.take()
        rss: list[tuple[float, int]] = []
        compiled: list[dict[str, int]] = []
        if args.soak:
            rss, compiled = soak(sut, args.soak, first)
        else:
            time.sleep(args.seconds)
        last = sampler.take()
        result = window(acc, first, last, known)
        replay.terminate()
        replay.wait(10)
        sut.keep_engine()
        sut.stop()
        result.update(loaded_s=loaded_s, rss=rss, compiled=compiled, warnings=dict(errors.counts), cameras=args.cameras)
        with lock:
            result["named"] = dict(Counter(p or NOT_NAMED for _, _, p in announced))
            result["missing_sightings"] = len(sut.missing_sightings(announced)) if args.soak else None
            result["announced"] = len(announced)
        if args.parts:
            frames = sum(result["analysed"].values())
            rate = frames / max(1e-9, result["seconds"]) / max(1, args.cameras)
            stride, starts = parts_plan(len(jpegs), args.cameras, rate, args.fps)
            sut.stages_alone(jpegs, starts[:1], stride, args.fps)  # warm: caches, shapes of this stride
            parts = sut.stages_alone(jpegs, starts, stride, args.fps)
            result["parts"] = {**vars(parts), "stride": stride}
        return result
    finally:
        if replay is not None and replay.poll() is None:
            replay.kill()
        shutil.rmtree(folder, ignore_errors=True)  # the gallery holds a face: leave nothing behind


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=ROOT)
    ap.add_argument("--frames", type=Path, required=True)
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--soak", type=float, default=0.0, metavar="MINUTES")
    ap.add_argument("--no-parts", dest="parts", action="store_false")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    use_tree(args.tree.resolve())
    acc = load_helper("station_accounting")
    replay = load_helper("station_replay")
    adapter = load_helper("station_adapter")
    adapter.quiet_logs()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = run(args, acc, adapter, replay)
    args.out.write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
