"""How the constants in vision/ were measured (an offline step), and the way to measure them again.

Nothing here runs in the station. Every figure comes from ../shared/faces and never from a test's
own split:

* **The calibration pool**: the identities photos (62 LFW people × 10) less the ten people
  tests/test_vision_accuracy.py leaves out as strangers (``people[5::6]``, :data:`TEST_STRANGERS`)
  and less the 16 photos that LFW fold 1 (tests/test_vision_lfw.py) also uses: 52 people, 509
  photos. Each photo gives the face nearest its centre, through the one pipeline.
* **Templates** (``vision.align``): each model was trained on crops framed a particular way around a
  face detector's box. Running our MTCNN on the identities photos, reproducing each model's own
  crop, and averaging where the five landmarks land inside it gives a template; a similarity warp
  to it reproduces that framing from landmarks alone (``templates``; measured on all 620 photos
  before this pool existed: landmark positions, not identities).
* **Verification threshold** (1:1, ``verification_threshold``, what ``evaluate lfw`` uses on one
  fold): the cosine that best separates the pool's same-person pairs (all of them) from as many
  different-person pairs (drawn with seed 1). LFW fold 1 plays no part, so it runs at a threshold
  fixed before it.
* **Identification threshold** (1:N, ``default_threshold``): every pool photo against every
  template of 3 photos (each person once per rotation of their photos; 3 is what the open-set
  protocol enrols), and the threshold at which a 200-person watchlist would name 1% of strangers,
  from an exponential tail of the impostor scores (vision.fpir_estimate). Calibrated on 52
  well-photographed people, the point estimate is optimistic for other people, so the threshold
  is the 95% upper bound over 1,000 resamples of the people (seed 0); the margin is ignored (it
  only names fewer). The operating-points table (threshold → expected FPIR, its upper bound, and
  the pool's FNIR) is for the Settings dialog.
* **Scoring** (``scoring``, how vision.matcher scores a person): the per-person rule each model
  was chosen with in bench/accuracy.py (fusion-640: the mean template); the 1:N threshold is
  calibrated with it.
* **Margin** (over the runner-up, ``default_margin``): FaceNet's 0.05, scaled for every other model
  by the spread (standard deviation) of its different-person cosines over FaceNet's, so a margin
  means the same separation in every model's units.
* **Fusion weight** (``fusion-640``): the z-score rule, each cosine over its different-person spread:
  w(FaceNet) = s(dlib) / (s(FaceNet) + s(dlib)), rounded to 0.05.

Run: ``.venv/bin/python -m vision.calibration calibrate --model NAME`` (prints JSON and the Python
literal for vision/embedders/calibrated.py; a few minutes per model on 2 cores), or ``templates``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from vision.detector import MtcnnDetector
from vision.embedders.calibrated import ModelCalibration, OperatingPoint
from vision.embedders.calibrated import calibration as calibration_of
from vision.fpir_estimate import SCORES, ThresholdEstimate, estimate_threshold, fnir_at, template_comparisons
from vision.lfw import best_threshold, pick_central
from vision.pipeline import central_box, landmarks_in_box, read_image
from vision.types import Detection, FloatArray, ImageBGR

FACES = Path(__file__).resolve().parent.parent.parent / "shared" / "faces"
IDENTITIES = FACES / "identities"
FOLD1_IMAGES = FACES / "lfw_pairs_fold1" / "images"
ENROL = 3  # photos per calibration template: what the open-set protocol enrols
GALLERY = 200  # the watchlist size the 1:N threshold is calibrated for
TARGET_FPIR = 0.01
FACENET_MARGIN = 0.05


def identity_images(root: Path = IDENTITIES) -> list[tuple[str, Path]]:
    """(person, path) for every photo under ``root``, sorted."""
    return [(p.parent.name, p) for p in sorted(root.glob("*/*.jpg"))]


def test_strangers(people: list[str]) -> list[str]:
    """The people tests/test_vision_accuracy.py leaves out of its gallery as strangers (sorted names)."""
    return people[5::6][:10]


def calibration_pool(root: Path = IDENTITIES, fold1: Path = FOLD1_IMAGES) -> list[tuple[str, Path]]:
    """The pool of the module docstring: identities photos less the test strangers and fold 1's photos."""
    photos = identity_images(root)
    left_out = set(test_strangers(sorted({person for person, _ in photos})))
    in_fold1 = {p.relative_to(fold1).as_posix() for p in fold1.glob("*/*.jpg")} if fold1.is_dir() else set()
    return [
        (person, path) for person, path in photos if person not in left_out and f"{person}/{path.name}" not in in_fold1
    ]


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


@dataclass(frozen=True, slots=True)
class PoolEmbeddings:
    """One model's unit embedding of every pool photo (the face nearest the centre, else the central box)."""

    model: str
    people: tuple[str, ...]  # sorted names; ``person`` indexes them
    person: tuple[int, ...]
    rows: FloatArray


def pool_embeddings(models: list[str], pool: list[tuple[str, Path]] | None = None) -> dict[str, PoolEmbeddings]:
    """Embed the pool with each model, detecting each photo once."""
    from vision.embedders import load_embedder
    from vision.pipeline import FacePipeline

    items = calibration_pool() if pool is None else pool
    detector = MtcnnDetector()
    pipelines = {m: FacePipeline(detector=detector, embedder=load_embedder(m)) for m in models}
    people = tuple(sorted({person for person, _ in items}))
    index = {p: i for i, p in enumerate(people)}
    person: list[int] = []
    rows: dict[str, list[FloatArray]] = {m: [] for m in models}
    for name, path in items:
        image = read_image(path)
        if image is None:
            continue
        height, width = image.shape[:2]
        found = pick_central(detector.detect(image), width, height)
        if found is None:
            box = central_box(width, height)
            found = Detection(box=box, landmarks=landmarks_in_box(box), confidence=0.0)
        person.append(index[name])
        for m, pipeline in pipelines.items():
            rows[m].append(pipeline.observe_detections(image, [found])[0].embedding)
    return {
        m: PoolEmbeddings(m, people, tuple(person), np.asarray(rows[m], dtype=np.float32).reshape(len(person), -1))
        for m in models
    }


def pair_scores(data: PoolEmbeddings, seed: int = 1) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Every same-person pair and as many different-person pairs (drawn with ``seed``): scores, labels."""
    labels = np.asarray(data.person)
    groups = [np.flatnonzero(labels == k) for k in range(len(data.people))]
    same = [float(data.rows[a] @ data.rows[b]) for g in groups for a, b in itertools.combinations(g, 2)]
    rng = np.random.default_rng(seed)
    diff: list[float] = []
    while len(diff) < len(same):
        i, j = rng.choice(len(groups), 2, replace=False)
        a, b = groups[i], groups[j]
        if len(a) and len(b):
            diff.append(float(data.rows[a[rng.integers(len(a))]] @ data.rows[b[rng.integers(len(b))]]))
    return np.asarray(same + diff), np.asarray([True] * len(same) + [False] * len(diff))


def verification_threshold(data: PoolEmbeddings) -> dict[str, float | int]:
    """The best-accuracy 1:1 threshold on the pool pairs."""
    scores, labels = pair_scores(data)
    threshold, accuracy = best_threshold(scores, labels)
    return {"threshold": threshold, "accuracy": accuracy, "pairs": len(scores)}


def impostor_spread(data: PoolEmbeddings) -> float:
    """Standard deviation of the cosines between photos of different pool people."""
    labels = np.asarray(data.person)
    sims = data.rows @ data.rows.T
    upper = np.triu(np.ones(sims.shape, dtype=bool), 1) & (labels[:, None] != labels[None, :])
    return float(np.std(sims[upper]))


def fusion_weight(facenet: PoolEmbeddings, dlib: PoolEmbeddings) -> float:
    """The z-score weight of FaceNet's cosine in the fusion, rounded to 0.05."""
    sf, sd = impostor_spread(facenet), impostor_spread(dlib)
    return round(sd / (sf + sd) / 0.05) * 0.05


def scaled_margin(data: PoolEmbeddings, facenet: PoolEmbeddings) -> float:
    """FaceNet's margin in ``data``'s units (rounded to 0.005, at least 0.005)."""
    if data.model == facenet.model:
        return FACENET_MARGIN
    ratio = impostor_spread(data) / impostor_spread(facenet)
    return max(0.005, round(FACENET_MARGIN * ratio / 0.005) * 0.005)


def identification_estimate(
    data: PoolEmbeddings, *, scoring: str = "best-sample", gallery: int = GALLERY, fpir: float = TARGET_FPIR
) -> tuple[ThresholdEstimate, int, int, list[OperatingPoint]]:
    """The 1:N threshold estimate, the comparison counts and the operating-points table."""
    comparisons = template_comparisons(data.person, data.rows, ENROL, SCORES[scoring])
    estimate = estimate_threshold(comparisons, gallery=gallery, fpir=fpir)
    chosen = math.ceil(estimate.upper * 1000) / 1000
    step = max(0.005, round(estimate.point_model.beta / 0.005) * 0.005)
    points = []
    for k in range(-3, 4):
        t = round(chosen + k * step, 3)
        point, upper = estimate.fpir_at(t)
        points.append(OperatingPoint(t, round(point, 4), round(upper, 4), round(fnir_at(comparisons, t), 4)))
    return estimate, len(comparisons.impostor), len(comparisons.genuine), points


def calibrate(model: str) -> tuple[ModelCalibration, dict[str, object]]:
    """Every calibrated figure of ``model``, and the evidence (as JSON) behind them."""
    parts = ["facenet-512", "dlib-128"] if model == "fusion-640" else []
    needed = sorted({model, "facenet-512", *parts})
    embedded = pool_embeddings(needed)
    data, facenet = embedded[model], embedded["facenet-512"]
    weight = fusion_weight(facenet, embedded["dlib-128"]) if model == "fusion-640" else 1.0
    verification = verification_threshold(data)
    shipped = calibration_of(model)
    scoring = shipped.scoring if shipped is not None else "best-sample"
    estimate, impostors, genuines, points = identification_estimate(data, scoring=scoring)
    calibration = ModelCalibration(
        model=model,
        identification_threshold=math.ceil(estimate.upper * 1000) / 1000,
        margin=scaled_margin(data, facenet),
        verification_threshold=round(float(verification["threshold"]), 3),
        gallery=GALLERY,
        people=len(data.people),
        impostor_comparisons=impostors,
        genuine_comparisons=genuines,
        operating_points=tuple(points),
        facenet_weight=weight,
        scoring=scoring,
    )
    evidence: dict[str, object] = {
        "model": model,
        "photos": len(data.person),
        "people": len(data.people),
        "verification": verification,
        "identification_point_estimate": round(estimate.point, 4),
        "identification_upper_95": round(estimate.upper, 4),
        "tail": {"u": estimate.point_model.u, "beta": estimate.point_model.beta, "p_u": estimate.point_model.p_u},
        "resamples": estimate.resamples,
        "impostor_spread": impostor_spread(data),
        "facenet_impostor_spread": impostor_spread(facenet),
    }
    if model == "fusion-640":
        from vision.embedders.fusion import FusionEmbedder

        evidence["derived_facenet_weight"] = weight
        evidence["shipped_facenet_weight"] = FusionEmbedder.facenet_weight
    return calibration, evidence


def as_python(c: ModelCalibration) -> str:
    """The calibration as the literal that vision/embedders/calibrated.py holds."""
    points = "".join(
        f"        OperatingPoint({p.threshold}, {p.fpir}, {p.fpir_upper}, {p.fnir}),\n" for p in c.operating_points
    )
    weight = f"    facenet_weight={c.facenet_weight},\n" if c.facenet_weight != 1.0 else ""
    weight += f"    scoring={json.dumps(c.scoring)},\n" if c.scoring != "best-sample" else ""
    return (
        f"ModelCalibration(\n    model={json.dumps(c.model)},\n"
        f"    identification_threshold={c.identification_threshold},\n"
        f"    margin={c.margin},\n    verification_threshold={c.verification_threshold},\n    gallery={c.gallery},\n"
        f"    people={c.people},\n    impostor_comparisons={c.impostor_comparisons},\n"
        f"    genuine_comparisons={c.genuine_comparisons},\n    operating_points=(\n{points}    ),\n{weight})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vision.calibration", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["templates", "calibrate"])
    parser.add_argument("--model", default="facenet-512")
    args = parser.parse_args(argv)
    if args.what == "templates":
        print(json.dumps(derive_templates()))
        return 0
    calibration, evidence = calibrate(args.model)
    print(json.dumps(evidence))
    print(as_python(calibration))
    return 0


if __name__ == "__main__":
    sys.exit(main())
