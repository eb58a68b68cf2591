"""The lean station, measured: install size, start-up, memory, a Ray actor and accuracy, before and after.

Each side is a checkout of the code and a fresh venv holding that checkout's ``pip install '.[station]'``
(plus ``ray`` for the actor row). Make them, then measure them side by side in one run (the
machine is shared: each measure runs the sides in turn, so load moves both alike):

    .venv/bin/python bench/lean.py venv /tmp/lean/before /tmp/lean/venv-before --with ray
    .venv/bin/python bench/lean.py venv . /tmp/lean/venv-after --with ray
    .venv/bin/python bench/lean.py measure --side before=/tmp/lean/before:/tmp/lean/venv-before \\
        --side after=.:/tmp/lean/venv-after [--only install,start,rss,ray,accuracy,lfw] [--dist before=DIR]

What each row is:

* **install**: ``du`` of the venv right after ``pip install '.[station]'`` (recorded by ``venv`` in
  ``VENV/.lean-install.json``, before ``--with`` adds anything), and how much of it is the venv's own
  pip and setuptools; whether TensorFlow is installed.
* **start**: ``main.py headless --demo 1`` (a real sender streaming the Hamilton clip over loopback,
  the demo people enrolled into a new gallery) from process start to its first ``recognition`` line
  that reports faces recognised (``--stats-every 0.25``): once with an empty model cache (a fresh
  machine: every model converted), then the median of five starts with that cache (cold starts of a
  warm machine), the sides taking turns; and the station's own CPU seconds by then (the steadier
  figure on a shared machine), and its peak RSS by then on the first start. Each start has a new
  gallery, so the demo people are enrolled each time.
* **rss**: the station's resident memory with models loaded (from a filled model cache) and 1 or 4
  demo cameras streaming:
  the median of samples taken every 0.5 s over ``--seconds`` once recognition runs, and the peak
  (VmHWM); whether any TensorFlow library is mapped into the process.
* **ray**: one recognition actor on a private local Ray (vision.ray_workers), after it analysed a
  few clip frames: its RSS and whether TensorFlow is mapped into it.
* **accuracy**: recall/precision on the annotated group photos (IoU >= 0.4, bench.vision), and
  ``main.py scan`` of the clip against a gallery of the two demo people: its tracks and names.
* **lfw**: ``main.py evaluate lfw`` on fold 1 with facenet-512 and fusion-640 (minutes each).
* **package**: ``du`` of each ``--dist`` folder (``make package``'s dist/facestation).

Everything runs on 127.0.0.1 in temporary folders, removed at the end (galleries hold faces).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT.parent / "shared" / "faces"
CLIP = FACES / "video" / "short_hamilton_clip.mp4"
LFW = FACES / "lfw_pairs_fold1"
INSTALL_RECORD = ".lean-install.json"
MB = 1024 * 1024
DEMO_PEOPLE = {"Lin-Manuel Miranda": "lin-manuel-miranda.png", "Alex Lacamoire": "alex-lacamoire.png"}


@dataclass(frozen=True)
class Side:
    name: str
    checkout: Path
    venv: Path

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")


def du_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 1024


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


# ------------------------------------------------------------------------------------ venv


def make_venv(checkout: Path, venv: Path, extras: list[str]) -> None:
    """A fresh venv with ``pip install '.[station]'`` from ``checkout``; its size recorded, then ``extras`` added."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    started = time.monotonic()
    subprocess.run([*pip, ".[station]"], cwd=checkout, check=True)
    seconds = time.monotonic() - started
    sp = site_packages(venv)
    tooling = sum(du_mb(p) for p in sp.iterdir() if p.name.split("-")[0] in ("pip", "setuptools", "pkg_resources"))
    biggest = sorted(((du_mb(p), p.name) for p in sp.iterdir() if p.is_dir()), reverse=True)[:12]
    record = {
        "venv_mb": du_mb(venv),
        "pip_setuptools_mb": tooling,
        "install_s": seconds,
        "tensorflow": (sp / "tensorflow").is_dir(),
        "biggest": [[name, round(mb)] for mb, name in biggest],
    }
    (venv / INSTALL_RECORD).write_text(json.dumps(record, indent=1))
    print(json.dumps(record))
    if extras:
        subprocess.run([*pip, *extras], check=True)


# --------------------------------------------------------------------------------- station


def side_env(home: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACESTATION_", "PYTHON"))}
    env.update(
        XDG_DATA_HOME=str(home / "data"),
        FACESTATION_LOG_DIR=str(home / "logs"),
        FACESTATION_MODEL_CACHE=str(cache),
        QT_QPA_PLATFORM="offscreen",
    )
    return env


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def maps_tensorflow(pid: int) -> bool:
    """Whether TensorFlow's own libraries are mapped (not OpenVINO's libopenvino_tensorflow_frontend)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    return "site-packages/tensorflow/" in maps or "libtensorflow_framework" in maps


@contextmanager
def headless(side: Side, home: Path, cache: Path, cameras: int) -> Iterator[tuple[subprocess.Popen[str], float]]:
    """``main.py headless --demo N`` of ``side``, started now; yields the process and its start time."""
    command = [side.python, "main.py", "headless", "--gallery", str(home / "gallery.db"), "--listen", "127.0.0.1:0"]
    command += ["--demo", str(cameras), "--stats-every", "0.25"]
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=side.checkout,
        env=side_env(home, cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield proc, started
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def first_recognition(proc: subprocess.Popen[str], started: float, timeout: float = 300) -> float:
    """Seconds from ``started`` to the first recognition line with faces recognised."""
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event.get("event") == "recognition" and int(event.get("recognised", 0)) > 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            break
    raise RuntimeError(f"no recognition line within {timeout:.0f} s (exit status {proc.poll()})")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_start(side: Side, home: Path, cache: Path) -> tuple[float, float, bool, float]:
    """(seconds, station CPU seconds) to the first recognition line, whether TensorFlow got mapped, and
    the station's peak RSS (MiB) by then."""
    shutil.rmtree(home / "data", ignore_errors=True)  # a new gallery each time: the demo people enrolled anew
    (home / "gallery.db").unlink(missing_ok=True)
    with headless(side, home, cache, 1) as (proc, started):
        seconds = first_recognition(proc, started)
        return seconds, cpu_s(proc.pid), maps_tensorflow(proc.pid), rss_mb(proc.pid)[1]


def start_times(sides: list[Side], warm_runs: int = 5) -> dict[str, dict[str, Any]]:
    """Each side's first start on an empty model cache, then ``warm_runs`` starts that find it filled,
    the sides taking turns start by start (the machine is shared); medians of the warm starts."""
    runs: dict[str, list[tuple[float, float, bool, float]]] = {s.name: [] for s in sides}
    with tempfile.TemporaryDirectory(prefix="lean-start-") as tmp:
        for _ in range(1 + warm_runs):
            for side in sides:
                home = Path(tmp) / side.name
                home.mkdir(exist_ok=True)
                runs[side.name].append(one_start(side, home, home / "models"))
    out: dict[str, dict[str, Any]] = {}
    for name, found in runs.items():
        warm = found[1:]
        out[name] = {
            "first_start_s": round(found[0][0], 1),
            "first_start_cpu_s": round(found[0][1], 1),
            "first_start_peak_mib": round(found[0][3]),
            "warm_start_s": round(statistics.median(r[0] for r in warm), 1),
            "warm_start_cpu_s": round(statistics.median(r[1] for r in warm), 1),
            "warm_start_runs_s": [round(r[0], 1) for r in warm],
            "first_start_tf_mapped": found[0][2],
            "warm_start_tf_mapped": any(r[2] for r in warm),
        }
    return out


def memory(side: Side, cameras: int, seconds: float, cache: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lean-rss-") as tmp, headless(side, Path(tmp), cache, cameras) as run:
        proc, started = run
        first_recognition(proc, started)
        threading.Thread(target=proc.communicate, daemon=True).start()  # keep reading its lines
        samples: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            samples.append(rss_mb(proc.pid)[0])
            time.sleep(0.5)
        _, peak = rss_mb(proc.pid)
        tf = maps_tensorflow(proc.pid)
    steady = samples[len(samples) * 2 // 5 :]
    return {"rss_mib": round(statistics.median(steady)), "peak_mib": round(peak), "tf_mapped": tf}


# ------------------------------------------------------------------------------- children

RAY_CHILD = """
import json, os, secrets, sys, tempfile
os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
sys.path.insert(0, os.getcwd())
import cv2, ray
from vision.ray_workers import RayPoolConfig, RayRecognitionPool
cap = cv2.VideoCapture(sys.argv[1])
jpegs = []
while len(jpegs) < 20:
    ok, frame = cap.read()
    if not ok:
        break
    jpegs.append(cv2.imencode(".jpg", frame)[1].tobytes())
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _temp_dir=tempfile.mkdtemp(prefix="lean-ray-"))
pool = RayRecognitionPool(RayPoolConfig(address=None, actors=1)).start()
faces = sum(len(pool.analyse_jpeg(j)) for j in jpegs)
(rss, pss), = pool.actor_memory_bytes()
pid = pool.actor_pids()[0]
maps = open(f"/proc/{pid}/maps").read()
tf = "site-packages/tensorflow/" in maps or "libtensorflow_framework" in maps
pool.stop()
ray.shutdown()
print(json.dumps({"actor_rss_mib": round(rss / 2**20), "actor_pss_mib": round(pss / 2**20), "faces": faces,
                  "actor_tf_mapped": tf}))
"""

GROUP_CHILD = """
import json, os, sys
sys.path.insert(0, os.getcwd())
from bench.vision import GROUP, recall_precision
from vision.detector import MtcnnDetector
det = MtcnnDetector()
annotations = json.loads((GROUP / "face_boxes_dlib.json").read_text())
hits, truth, found = recall_precision(lambda image: [d.box for d in det.detect(image)], annotations)
print(json.dumps({"group_recall": f"{hits}/{truth}", "group_precision": f"{hits}/{found}", "runtime": det.runtime}))
"""


def child_json(side: Side, code: str, *args: str, cache: Path, timeout: float = 900) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lean-child-") as tmp:
        proc = subprocess.run(
            [side.python, "-c", code, *args],
            cwd=side.checkout,
            env=side_env(Path(tmp), cache),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main_py(side: Side, home: Path, cache: Path, *args: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [side.python, "main.py", *args, "--gallery", str(home / "gallery.db")],
        cwd=side.checkout,
        env=side_env(home, cache),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"main.py {args[0]}: {proc.stderr.strip()[-500:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def scan_clip(side: Side, cache: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lean-scan-") as tmp:
        home = Path(tmp)
        for name, photo in DEMO_PEOPLE.items():
            main_py(side, home, cache, "enrol", "--name", name, str(side.checkout / "demo" / "reference_faces" / photo))
        lines = main_py(side, home, cache, "scan", str(CLIP), "--start", "2026-01-01T00:00:00Z")
    tracks = [(e["track"], e["person"], e.get("frames")) for e in lines if e["event"] == "sighting"]
    named = sorted({str(p) for _, p, _ in tracks if p})
    return {"scan_tracks": len(tracks), "scan_named": ", ".join(named), "scan_detail": tracks}


def lfw(side: Side, cache: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lean-lfw-") as tmp:
        for model in ("facenet-512", "fusion-640"):
            args = ("evaluate", "lfw", "--pairs", str(LFW / "pairs_fold1.txt"), "--images", str(LFW / "images"))
            result = main_py(side, Path(tmp), cache, *args, "--model", model)[-1]
            out[f"lfw_{model}"] = f"{100 * result['accuracy']:.2f}% (AUC {result['auc']:.4f})"
    return out


# ---------------------------------------------------------------------------------- measure

Measure = Callable[[Side, Path, argparse.Namespace], dict[str, Any]]


def m_install(side: Side, cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    record = side.venv / INSTALL_RECORD
    if not record.is_file():
        return {"venv_mb": round(du_mb(side.venv)), "note": "no install record: measured now"}
    data: dict[str, Any] = json.loads(record.read_text())
    return {
        "venv_mb": round(data["venv_mb"]),
        "without_pip_setuptools_mb": round(data["venv_mb"] - data["pip_setuptools_mb"]),
        "tensorflow_installed": data["tensorflow"],
        "biggest": data["biggest"][:6],
    }


def m_rss(side: Side, cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lean-warm-") as tmp:
        one_start(side, Path(tmp), cache)  # fills the model cache if it is empty: these are warm starts
    for cameras in (1, 4):
        for key, value in memory(side, cameras, args.seconds, cache).items():
            out[f"{key}_{cameras}cam"] = value
    return out


def m_ray(side: Side, cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    return child_json(side, RAY_CHILD, str(CLIP), cache=cache)


def m_accuracy(side: Side, cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    return {**child_json(side, GROUP_CHILD, cache=cache), **scan_clip(side, cache)}


def m_lfw(side: Side, cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    return lfw(side, cache)


MEASURES: dict[str, Measure] = {
    "install": m_install,
    "rss": m_rss,
    "ray": m_ray,
    "accuracy": m_accuracy,
    "lfw": m_lfw,
}


def parse_side(text: str) -> Side:
    name, _, paths = text.partition("=")
    checkout, _, venv = paths.partition(":")
    if not (name and checkout and venv):
        raise argparse.ArgumentTypeError(f"expected NAME=CHECKOUT:VENV, got {text!r}")
    return Side(name, Path(checkout).resolve(), Path(venv).resolve())


def measure(args: argparse.Namespace) -> int:
    sides: list[Side] = args.side
    results: dict[str, dict[str, Any]] = {s.name: {} for s in sides}
    caches = {s.name: Path(tempfile.mkdtemp(prefix=f"lean-models-{s.name}-")) for s in sides}
    try:
        for name in args.only.split(","):
            if name == "start":  # start by start, the sides taking turns
                for side_name, found in start_times(sides).items():
                    results[side_name].update(found)
                continue
            for side in sides:  # the sides in turn, measure by measure
                started = time.monotonic()
                results[side.name].update(MEASURES[name](side, caches[side.name], args))
                print(f"{side.name} {name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        for item in args.dist:
            side_name, _, folder = item.partition("=")
            results[side_name]["package_mb"] = round(du_mb(Path(folder)))
    finally:
        for cache in caches.values():
            shutil.rmtree(cache, ignore_errors=True)
    print(json.dumps(results, indent=1))
    keys = [k for k in results[sides[0].name] if k not in ("biggest", "scan_detail")]
    print("\n| figure | " + " | ".join(s.name for s in sides) + " |")
    print("|---|" + "---|" * len(sides))
    for key in keys:
        print(f"| {key} | " + " | ".join(str(results[s.name].get(key, "")) for s in sides) + " |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    venv = sub.add_parser("venv", help="make a fresh venv with CHECKOUT's '.[station]' and record its size")
    venv.add_argument("checkout", type=Path)
    venv.add_argument("venv", type=Path)
    venv.add_argument("--with", dest="extras", nargs="*", default=[], help="packages added after the record")
    run = sub.add_parser("measure", help="measure the sides in turn and print one table")
    run.add_argument("--side", type=parse_side, action="append", required=True, help="NAME=CHECKOUT:VENV")
    run.add_argument("--only", default="install,start,rss,ray,accuracy", help=f"of start,{','.join(MEASURES)}")
    run.add_argument("--seconds", type=float, default=20.0, help="RSS sampling time per camera count")
    run.add_argument("--dist", action="append", default=[], metavar="NAME=DIR", help="a frozen app folder")
    args = parser.parse_args()
    if args.command == "venv":
        make_venv(args.checkout.resolve(), args.venv.resolve(), args.extras)
        return 0
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
