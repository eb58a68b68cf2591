"""How the alignment templates and verification thresholds in vision/ were derived (an offline step).

Nothing here runs in the station; it is the record of, and the way to redo, two measured constants:

* **Templates** (``vision.align``): each model was trained on crops framed a particular way around a
  face detector's box. Running our MTCNN on ../shared/faces/identities (62 people × 10 LFW photos),
  reproducing each model's own crop, and averaging where the five landmarks land inside it gives a
  template; a similarity warp to it reproduces that framing from landmarks alone.
* **Thresholds** (``verification_threshold`` on each embedder): the cosine similarity that best
  separates same-person from different-person pairs among the identities photos (all 2,790
  same-person pairs; 2,790 different-person pairs drawn with a fixed seed). LFW fold 1 is not used,
  so ``main.py evaluate lfw`` on fold 1 runs at a threshold fixed before it.

* **Identification threshold** (``default_threshold``, what vision.matcher uses for 1:N): see
  :func:`derive_identification_threshold`.

Run: ``.venv/bin/python -m vision.calibration [templates|threshold|identification] [--model NAME]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from vision.detector import MtcnnDetector
from vision.lfw import best_threshold, pick_central
from vision.pipeline import read_image
from vision.types import Detection, FloatArray, ImageBGR

IDENTITIES = Path(__file__).resolve().parent.parent.parent / "shared" / "faces" / "identities"


def identity_images(root: Path = IDENTITIES) -> list[tuple[str, Path]]:
    """(person, path) for every photo under ``root``, sorted."""
    return [(p.parent.name, p) for p in sorted(root.glob("*/*.jpg"))]


def _mean_landmarks_in_box_crop(
    dets: list[tuple[ImageBGR, Detection]], margin_fraction: float, pixel_margin: float, size: int
) -> npt.NDArray[np.float64]:
    """Mean landmark positions inside crops of the detector box grown by a margin, resized to size×size."""
    points = []
    for _image, det in dets:
        x, y, w, h = det.box
        mx = pixel_margin + margin_fraction * w
        my = pixel_margin + margin_fraction * h
        x0, y0, cw, ch = x - mx, y - my, w + 2 * mx, h + 2 * my
        pts = np.asarray(det.landmarks, dtype=np.float64)
        points.append(np.stack([(pts[:, 0] - x0) / cw * size, (pts[:, 1] - y0) / ch * size], axis=1))
    return np.asarray(np.mean(points, axis=0), dtype=np.float64)


def derive_templates(limit: int = 620) -> dict[str, list[list[float]]]:
    """Measure the FaceNet, VGGFace2 and (when dlib is installed) dlib templates on the identities photos."""
    detector = MtcnnDetector()
    dets: list[tuple[ImageBGR, Detection]] = []
    for _person, path in identity_images()[:limit]:
        image = read_image(path)
        if image is None:
            continue
        det = pick_central(detector.detect(image), image.shape[1], image.shape[0])
        if det is not None:
            dets.append((image, det))
    out: dict[str, list[list[float]]] = {}
    # where the landmarks sit inside MTCNN's own box, as fractions of its width and height
    out["box"] = np.round(_mean_landmarks_in_box_crop(dets, 0.0, 0.0, 1), 3).tolist()
    # facenet: align_dataset_mtcnn --margin 32 --image_size 160 (16 px a side, squashed to 160×160)
    out["facenet"] = np.round(_mean_landmarks_in_box_crop(dets, 0.0, 16.0, 160), 1).tolist()
    # VGGFace2: the box grown by 30% (15% a side), shorter side to 256, centre 224 = 0.875 of the box
    grown = _mean_landmarks_in_box_crop(dets, 0.15, 0.0, 256)
    out["vggface2"] = np.round(grown - 16.0, 1).tolist()
    try:
        import dlib
        import face_recognition_models as frm
    except ImportError:
        return out
    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    chip_points = []
    for image, _det in dets:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        rects = hog(rgb, 1)
        if not rects:
            continue
        rect = min(rects, key=lambda r: abs(r.center().x - image.shape[1] / 2) + abs(r.center().y - image.shape[0] / 2))
        chip = dlib.get_face_chip(rgb, predictor(rgb, rect), size=150, padding=0.25)
        big = np.asarray(cv2.resize(cv2.cvtColor(np.asarray(chip), cv2.COLOR_RGB2BGR), (300, 300)), np.uint8)
        found = pick_central(detector.detect(big), 300, 300)
        if found is not None:
            chip_points.append(np.asarray(found.landmarks) / 2.0)
    if chip_points:
        out["dlib"] = np.round(np.asarray(np.mean(chip_points, axis=0), dtype=np.float64), 1).tolist()
    return out


def derive_threshold(model: str, seed: int = 1) -> dict[str, float | int]:
    """The best-accuracy cosine threshold over identities pairs (balanced same/different)."""
    from vision.embedders import load_embedder
    from vision.pipeline import FacePipeline

    pipeline = FacePipeline(embedder=load_embedder(model))
    people: dict[str, list[npt.NDArray[np.float32]]] = {}
    for person, path in identity_images():
        image = read_image(path)
        if image is not None:
            people.setdefault(person, []).append(pipeline.central_faces([image])[0].embedding)
    same = [float(a @ b) for embs in people.values() for a, b in itertools.combinations(embs, 2)]
    names = sorted(people)
    rng = np.random.default_rng(seed)
    diff: list[float] = []
    while len(diff) < len(same):
        i, j = rng.choice(len(names), 2, replace=False)
        a, b = people[names[i]], people[names[j]]
        diff.append(float(a[rng.integers(len(a))] @ b[rng.integers(len(b))]))
    scores = np.asarray(same + diff)
    labels = np.asarray([True] * len(same) + [False] * len(diff))
    thr, acc = best_threshold(scores, labels)
    return {"threshold": round(thr, 4), "accuracy": acc, "same_pairs": len(same), "different_pairs": len(diff)}


def identity_embeddings(model: str) -> tuple[list[str], FloatArray]:
    """(person per row, unit embeddings) of every identities photo, through the one pipeline."""
    from vision.embedders import load_embedder
    from vision.pipeline import FacePipeline

    pipeline = FacePipeline(embedder=load_embedder(model))
    names: list[str] = []
    rows: list[FloatArray] = []
    items = identity_images()
    for start in range(0, len(items), 32):
        chunk = [(person, read_image(path)) for person, path in items[start : start + 32]]
        loaded = [(person, image) for person, image in chunk if image is not None]
        for (person, _), obs in zip(loaded, pipeline.central_faces([i for _, i in loaded]), strict=True):
            names.append(person)
            rows.append(obs.embedding)
    return names, np.asarray(rows, dtype=np.float32)


def derive_identification_threshold(model: str, accept: float = 0.01) -> dict[str, float | int]:
    """The 1:N threshold (``default_threshold``) at which at most ``accept`` of strangers are named.

    A face of someone not enrolled is compared with every enrolled sample, so the best of many
    different-person scores must stay under the threshold: it sits far above the 1:1
    ``verification_threshold``. Five stranger splits of the identities people (persons ``k::6``,
    k = 0..4, ten each) are left out in turn, the others are enrolled with their first 5 photos,
    and the threshold is the (1 - accept) quantile of the strangers' best-person scores, pooled.
    Split k = 5 is never used here: tests/test_vision_accuracy.py leaves those people out.
    """
    names, rows = identity_embeddings(model)
    people = sorted(set(names))
    best_scores: list[float] = []
    for k in range(5):
        strangers = set(people[k::6][:10])
        gallery_rows = []
        gallery_people = []
        seen: dict[str, int] = {}
        for name, row in zip(names, rows, strict=True):
            if name not in strangers and seen.get(name, 0) < 5:
                seen[name] = seen.get(name, 0) + 1
                gallery_rows.append(row)
                gallery_people.append(name)
        gallery = np.asarray(gallery_rows)
        owners = np.asarray(gallery_people)
        for name, row in zip(names, rows, strict=True):
            if name in strangers:
                scores = gallery @ row
                best_scores.append(float(max(scores[owners == p].max() for p in set(gallery_people))))
    threshold = float(np.quantile(np.asarray(best_scores), 1.0 - accept))
    return {"default_threshold": round(threshold, 3), "strangers": len(best_scores), "accept": accept}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vision.calibration", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["templates", "threshold", "identification"])
    parser.add_argument("--model", default="facenet-512")
    args = parser.parse_args(argv)
    if args.what == "templates":
        print(json.dumps(derive_templates()))
    elif args.what == "identification":
        print(json.dumps(derive_identification_threshold(args.model)))
    else:
        print(json.dumps(derive_threshold(args.model)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
