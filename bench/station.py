"""The station alone: what a real headless station costs per analysed frame, and where its CPU goes.

    .venv/bin/python bench/station.py [--cameras 2,4,16] [--seconds 30] [--warmup 10]
        [--tree DIR[=LABEL] ...] [--variant LABEL:ENV=VALUE[,ENV=VALUE] ...] [--workers 1,2]
    .venv/bin/python bench/station.py --soak 15          # 4 cameras for 15 minutes: RSS, errors, sightings

Each configuration (a source tree, a variant, a worker count, N cameras) runs in a process of its own
(bench/station_run.py) whose ``sys.path`` starts with the tree: the same ``Station`` and
``StationOptions`` as ``main.py headless`` (loopback, local workers, the station's defaults), Lin-Manuel
Miranda enrolled from ../shared/faces/video/reference_faces/ in a temporary gallery (deleted after: it
holds a face). N cameras are replayed from ONE further process (bench/station_replay.py) that only seals
and sends pre-encoded JPEGs of the Hamilton clip (640x360, 15 fps, each camera from its own offset) with
the real wire protocol. ``--tree`` runs an older commit's station beside the working tree's (make one
with ``git worktree add /tmp/v2 ff09aa2``); everything that touches a station's code is in
bench/station_adapter.py. ``--variant`` sets environment variables for a configuration (e.g.
``streams1:FACESTATION_OV_STREAMS=1``) or runs a patched copy of the tree (``gil5@/tmp/gil5``), to
measure an experiment as a ratio against the default in the same run.

Per configuration it prints: analysed frames/s per camera (mean, min); CPU ms per analysed frame (the
whole station process); cores by thread group (bench/station_accounting.py: receiver, recognition,
inference runtime, writer, other); the worst camera's first-decision p95; who was named in the
sightings; the replay process's cores; and the same clip through the stages alone (decode, detection on
the live schedule, align, embed, match, track on one thread, one frame after another, no receiver and no
service threads, the analysed frames' stride matching the measured rate) as CPU ms per frame, and the
ratio system ÷ parts. CPU is process CPU time (user + system), so a native thread's spinning counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.station_replay import encode_clip, write_frames  # noqa: E402

CLIP = ROOT.parent / "shared" / "faces" / "video" / "short_hamilton_clip.mp4"
RUN = ROOT / "bench" / "station_run.py"
GROUPS = ("receiver", "recognition", "inference runtime", "OpenCV workers", "writer", "worker processes", "other")
NOT_NAMED = "not named (unknown or undecided)"  # as bench/station_run.py counts them


@dataclass(frozen=True)
class Config:
    """One configuration: which tree, which variant (environment), how many workers and cameras."""

    label: str
    tree: Path
    env: dict[str, str] = field(default_factory=dict)
    workers: int | None = None
    cameras: int = 2

    @property
    def name(self) -> str:
        workers = "" if self.workers is None else f", {self.workers} workers"
        return f"{self.label}{workers}"


def tree_label(tree: Path) -> str:
    """ "branch at abc1234" (with "+changes" when the work tree differs from its commit)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "?"
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    dirty = "+changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    where = "working tree" if tree.resolve() == ROOT else (branch if branch and branch != "HEAD" else "detached")
    return f"{where} at {commit}{dirty}"


def parse_tree(text: str) -> tuple[str, Path]:
    path, _, label = text.partition("=")
    tree = Path(path).resolve()
    if not (tree / "station" / "station.py").is_file():
        raise SystemExit(f"--tree {path}: no station/station.py there")
    return label or tree_label(tree), tree


def parse_variant(text: str) -> tuple[str, Path | None, dict[str, str]]:
    """``LABEL[@DIR][:ENV=VALUE,...]``: environment variables, and optionally a tree of the variant's own."""
    head, _, assignments = text.partition(":")
    label, at, path = head.partition("@")
    tree = parse_tree(path)[1] if at else None
    env: dict[str, str] = {}
    for item in filter(None, assignments.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SystemExit(f"--variant {text}: expected LABEL[@DIR][:ENV=VALUE,...]")
        env[key] = value
    return label, tree, env


def run_config(config: Config, frames: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One configuration in its own process; its result (or an "error" entry)."""
    with tempfile.TemporaryDirectory(prefix="facestation-stationbench-out-") as out_dir:
        out = Path(out_dir) / "result.json"
        cmd = [sys.executable, str(RUN), "--tree", str(config.tree), "--frames", str(frames), "--out", str(out)]
        cmd += ["--cameras", str(config.cameras), "--seconds", f"{args.seconds:g}", "--warmup", f"{args.warmup:g}"]
        if config.workers is not None:
            cmd += ["--workers", str(config.workers)]
        if args.soak:
            cmd += ["--soak", f"{args.soak:g}", "--no-parts"]
        elif not args.parts:
            cmd += ["--no-parts"]
        env = {**os.environ, **config.env, "PYTHONPATH": ""}
        print(f"... {config.name}, {config.cameras} cameras", file=sys.stderr, flush=True)
        # its log lines (warnings, the soak's minutes) go to this stderr as they come
        done = subprocess.run(cmd, env=env, cwd=config.tree, check=False)
        if done.returncode != 0 or not out.exists():
            return {"error": f"the configuration's process exited with {done.returncode} (its stderr is above)"}
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The table's figures from one result."""
    seconds = result["seconds"]
    cameras = result["cameras"]
    rates = [result["analysed"].get(f"cam-{i + 1:02d}", 0) / seconds for i in range(cameras)]
    frames = sum(result["analysed"].values())
    ms = 1000.0 * result["process_s"] / frames if frames else float("nan")
    fd = [v for v in result["first_decision_p95"].values() if v is not None]
    parts = result.get("parts")
    parts_ms = 1000.0 * parts["process_s"] / parts["frames"] if parts and parts["frames"] else None
    return {
        "mean": sum(rates) / max(1, len(rates)),
        "min": min(rates, default=0.0),
        "ms": ms,
        "cores": result["process_s"] / seconds,
        "groups": {g: result["groups_s"].get(g, 0.0) / seconds for g in GROUPS},
        "group_ms": {g: 1000.0 * result["groups_s"].get(g, 0.0) / frames if frames else 0.0 for g in GROUPS},
        "first_decision": max(fd) if fd else None,
        "named": result.get("named", {}),
        "replay": result["replay_s"] / seconds,
        "parts_ms": parts_ms,
        "ratio": ms / parts_ms if parts_ms else None,
        "errors": sum(result["errors"].values()),
    }


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def named_text(named: dict[str, int]) -> str:
    return ", ".join(f"{k} ×{v}" for k, v in sorted(named.items(), key=lambda kv: (kv[0] == NOT_NAMED, kv[0])))


def print_tables(rows: list[tuple[Config, dict[str, Any]]], args: argparse.Namespace) -> None:
    print(
        f"\n## The station alone: {args.seconds:g} s measured after {args.warmup:g} s warm-up, clip 640x360 at "
        f"15 fps per camera, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end\n"
    )
    print(
        "| configuration | cameras | analysed fps per camera (mean / min) | CPU ms per analysed frame "
        "| stages alone ms per frame | system ÷ parts | station cores | replay cores "
        "| first decision p95 ms (worst camera) | errors | named in sightings |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for config, result in rows:
        if "error" in result:
            print(f"| {config.name} | {config.cameras} | failed: {result['error'].splitlines()[-1]} |")
            continue
        s = summary(result)
        print(
            f"| {config.name} | {config.cameras} | {s['mean']:.2f} / {s['min']:.2f} | {s['ms']:.1f} "
            f"| {fmt(s['parts_ms'])} | {fmt(s['ratio'], '.2f')} | {s['cores']:.2f} | {s['replay']:.3f} "
            f"| {fmt(s['first_decision'], '.0f')} | {s['errors']} | {named_text(s['named']) or 'nobody'} |"
        )
    print("\nCores by thread group (and CPU ms per analysed frame):\n")
    print("| configuration | cameras | " + " | ".join(GROUPS) + " |")
    print("|---|---|" + "---|" * len(GROUPS))
    for config, result in rows:
        if "error" in result:
            continue
        s = summary(result)
        cells = " | ".join(f"{s['groups'][g]:.2f} ({s['group_ms'][g]:.1f})" for g in GROUPS)
        print(f"| {config.name} | {config.cameras} | {cells} |")
    print_parts(rows)


def print_parts(rows: list[tuple[Config, dict[str, Any]]]) -> None:
    with_parts = [(c, r) for c, r in rows if "parts" in r]
    if not with_parts:
        return
    stages = ("decode", "detect", "align", "embed", "match", "track")
    print("\nThe stages alone, CPU ms per frame (process CPU: inference runs on the runtime's own threads; 'thread'")
    print("is the calling thread's share):\n")
    print("| configuration | cameras | frames (stride) | " + " | ".join(stages) + " | thread | process |")
    print("|---|---|---|" + "---|" * (len(stages) + 2))
    for config, result in with_parts:
        p = result["parts"]
        n = max(1, p["frames"])
        cells = " | ".join(f"{1000 * p['stages'].get(s, 0.0) / n:.2f}" for s in stages)
        print(
            f"| {config.name} | {config.cameras} | {p['frames']} ({p['stride']}) | {cells} "
            f"| {1000 * p['thread_s'] / n:.1f} | {1000 * p['process_s'] / n:.1f} |"
        )


def print_soak(config: Config, result: dict[str, Any], minutes: float) -> None:
    if "error" in result:
        print(f"\nsoak of {config.name} failed: {result['error']}")
        return
    s = summary(result)
    rss = result["rss"]
    start = next((v for m, v in rss if m >= 3), None)
    growth = None if start is None else (rss[-1][1] - start) / 2**20
    print(f"\n## Soak: {config.name}, {config.cameras} cameras, {minutes:g} minutes\n")
    print("| minute | " + " | ".join(f"{m:g}" for m, _ in rss) + " |")
    print("|---|" + "---|" * len(rss))
    print("| RSS MiB | " + " | ".join(f"{v / 2**20:.0f}" for _, v in rss) + " |")
    for net in result.get("compiled", [{}])[-1]:
        print(f"| {net} shapes compiled | " + " | ".join(str(c.get(net, "-")) for c in result["compiled"]) + " |")
    print(
        f"\nRSS growth from minute 3 to the end: {fmt(growth)} MiB; recognition errors: {s['errors']}; "
        f"warnings logged: {sum(result['warnings'].values())} {result['warnings'] or ''}; "
        f"sightings announced: {result['announced']}, missing from the gallery: {result['missing_sightings']}; "
        f"analysed {s['mean']:.2f} fps per camera at {s['ms']:.1f} ms CPU each; named: {named_text(s['named'])}"
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", default="2,4,16", help="camera counts, comma-separated (default 2,4,16)")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds per configuration (default 30)")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds of replay before measuring (default 10)")
    ap.add_argument("--tree", action="append", default=[], metavar="DIR[=LABEL]", help="a source tree to measure")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL[@DIR][:ENV=VALUE,...]",
        help="an experiment: environment variables, and/or a tree of its own (e.g. a patched copy)",
    )
    ap.add_argument("--workers", default="", help="recognition worker counts, comma-separated (default: the station's)")
    ap.add_argument("--soak", type=float, default=0.0, metavar="MINUTES", help="one soak of 4 cameras instead")
    ap.add_argument("--no-parts", dest="parts", action="store_false", help="skip the stages alone")
    ap.add_argument("--no-default", action="store_true", help="run only the variants, not the default beside them")
    return ap


def configs(args: argparse.Namespace) -> list[Config]:
    trees = [parse_tree(t) for t in args.tree] or [(tree_label(ROOT), ROOT)]
    variants = [parse_variant(v) for v in args.variant]
    if not args.no_default or not variants:
        variants.insert(0, ("", None, {}))
    workers: list[int | None] = [int(w) for w in args.workers.split(",") if w.strip()] or [None]
    cameras = [4] if args.soak else [int(c) for c in args.cameras.split(",")]
    out = []
    for n in cameras:
        for label, tree in trees:
            for vlabel, own, env in variants:
                if own is not None and tree != trees[0][1]:
                    continue  # a variant with a tree of its own runs once, not once per tree
                for w in workers:
                    name = f"{label} {vlabel}".strip() if own is None else vlabel
                    out.append(Config(name, own or tree, env, w, n))
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not CLIP.exists():
        raise SystemExit(f"the clip lives in {CLIP}")
    todo = configs(args)
    with tempfile.TemporaryDirectory(prefix="facestation-stationbench-") as folder:
        frames = Path(folder) / "frames.bin"
        write_frames(frames, encode_clip(CLIP))
        rows = []
        began = time.monotonic()
        for config in todo:
            rows.append((config, run_config(config, frames, args)))
    if args.soak:
        for config, result in rows:
            print_soak(config, result, args.soak)
    else:
        print_tables(rows, args)
    print(f"\n({time.monotonic() - began:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
