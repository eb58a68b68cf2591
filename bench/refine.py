"""Detect and refine: what the live engine's detection costs per frame, against a full detection on every frame.

Run: ``taskset -c 0 .venv/bin/python bench/refine.py [--frames 138] [--every 3] [--rounds 3]``
(under a minute on one core).

The Hamilton clip at 15 fps (every second frame of the 29.97 fps file, 640×360), through the real
detector on OpenVINO and the real tracker, in three ways, one after the other in one run:

* **full**: a full MTCNN pass on every frame at the live minimum face (40 px): the old path;
* **refine only**: O-Net near the full pass's faces of the frame before (the cheap step alone: what it
  costs, and how many faces that carry on it keeps; faces new in a frame it cannot find);
* **schedule**: the live engine's: a full pass every ``--every``-th frame, O-Net near the live
  tracks' last boxes in between (``vision.face_sources.StationDetection``).

Per way: CPU ms per frame (best of ``--rounds``), faces found, and for the schedule the share of the
full pass's faces (IoU >= 0.5) it found on the same frames.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vision.native_logs import quiet_native_logs  # noqa: E402

quiet_native_logs()

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from vision.detector import box_iou  # noqa: E402
from vision.pipeline import FacePipeline  # noqa: E402
from vision.tracker import Tracker  # noqa: E402
from vision.types import Box, ImageBGR  # noqa: E402

CLIP = ROOT.parent / "shared" / "faces" / "video" / "short_hamilton_clip.mp4"
MIN_FACE = 40.0


def clip_frames(limit: int) -> list[ImageBGR]:
    cap = cv2.VideoCapture(str(CLIP))
    frames: list[ImageBGR] = []
    index = 0
    while len(frames) < limit:
        ok, image = cap.read()
        if not ok:
            break
        if index % 2 == 0:
            frames.append(np.asarray(image, dtype=np.uint8))
        index += 1
    cap.release()
    return frames


def run(
    pipeline: FacePipeline, frames: list[ImageBGR], mode: str, every: int, known: list[list[Box]] | None = None
) -> tuple[float, list[list[Box]]]:
    """CPU seconds per frame and the boxes found on each frame (``refine``: near ``known``'s previous frame)."""
    tracker = Tracker("bench")
    found: list[list[Box]] = []
    began = time.process_time()
    for i, image in enumerate(frames):
        at = i / 15.0
        if mode == "full" or (mode == "schedule" and i % every == 0):
            faces = pipeline.candidates(image, min_face=MIN_FACE)
        elif mode == "refine":
            hints = known[i - 1] if known is not None and i > 0 else []
            faces = pipeline.refine_candidates(image, hints, min_face=MIN_FACE) if hints else []
        else:
            hints = tracker.recent_boxes(at, 0.5)
            faces = pipeline.refine_candidates(image, hints, min_face=MIN_FACE) if hints else []
        boxes = [f.detection.box for f in faces]
        tracker.update([replace(f, crop=None) for f in faces], at=at)
        found.append(boxes)
    return (time.process_time() - began) / max(1, len(frames)), found


def recall(truth: list[list[Box]], got: list[list[Box]]) -> tuple[int, int]:
    hits = total = 0
    for t, g in zip(truth, got, strict=True):
        total += len(t)
        hits += sum(1 for b in t if any(box_iou(b, c) >= 0.5 for c in g))
    return hits, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=138, help="clip frames at 15 fps (default 138: the whole clip)")
    ap.add_argument("--every", type=int, default=3, help="the schedule's full detection every N frames (default 3)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not CLIP.exists():
        raise SystemExit(f"the clip lives in {CLIP}")
    cv2.setNumThreads(1)
    frames = clip_frames(args.frames)
    pipeline = FacePipeline()
    pipeline.warm_up()
    results: dict[str, tuple[float, list[list[Box]]]] = {}
    for _ in range(args.rounds):
        for mode in ("full", "refine", "schedule"):
            known = results["full"][1] if "full" in results else None
            cost, boxes = run(pipeline, frames, mode, args.every, known)
            if mode not in results or cost < results[mode][0]:
                results[mode] = (cost, boxes)
    full_cost, truth = results["full"]
    print(f"\n{len(frames)} frames of the clip at 15 fps, 640×360, min face {MIN_FACE:g} px, best of {args.rounds}\n")
    print("| detection | CPU ms per frame | ÷ full | faces found | full pass's faces found |")
    print("|---|---|---|---|---|")
    for mode, label in (
        ("full", "full MTCNN on every frame (old path)"),
        ("refine", "O-Net only, near the full pass's faces of the frame before"),
        ("schedule", f"live schedule: full every {args.every}, O-Net near the tracks between"),
    ):
        cost, boxes = results[mode]
        hits, total = recall(truth, boxes)
        print(
            f"| {label} | {cost * 1000:.1f} | {full_cost / cost:.1f}× | {sum(len(b) for b in boxes)} "
            f"| {hits}/{total} = {hits / max(1, total):.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
