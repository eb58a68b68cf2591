"""Accuracy levers on ../shared/faces, measured in one run: one table row per lever.

Run: ``.venv/bin/python bench/accuracy.py [--cache DIR] [--rows NAME ...]`` (about 15 minutes on a
busy 2-core machine, almost all of it dlib's ResNet; with ``--cache`` a second run takes seconds).

Every photo (the identities set and LFW fold 1) is detected once with our MTCNN; each lever then
embeds the face nearest the centre (and the largest face, for enrolment) its own way. Columns:

* **pool 1:N** (the lever comparison): the calibration pool of vision.calibration (52 people, the
  accuracy test's strangers and fold 1's photos left out), the first 3 photos of each person
  enrolled as ``main.py enrol`` does (largest face, refused below the quality limits), people
  held out as strangers in 10 rotating folds (vision.identification): rank-1, FNIR at FPIR 1% and
  0.1% (pooled over 3,100 mated and 509 stranger searches, so 0.1% means no stranger at all).
* **FNMR@1e-4**: a photo against one person's 3-photo template, at a false-match rate of 1e-4
  (254k impostor comparisons: finer-grained than the 509 strangers above).
* **op t / margin**: the lever's own operating point, calibrated as vision.calibration does (the
  95% upper bound of the FPIR-1% threshold for a 200-person watchlist; the margin scaled by score
  spread) on the pool only.
* **test FPIR / FNIR** at that point, on tests/test_vision_accuracy.py's split (52 people enrolled
  with 5 photos, 100 photos of 10 left-out people): test data, reported, never used to choose.
* **LFW**: fold-1 accuracy at the verification threshold calibrated on the pool (test data), and
  the best accuracy over all thresholds (optimistic).
* **ms/face**: embedding time per face relative to FaceNet's in the same run (timings on a shared
  machine are noisy: read them as ratios).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vision.native_logs import quiet_native_logs  # noqa: E402

quiet_native_logs()  # before anything imports TensorFlow

from vision.align import DLIB_TEMPLATE, FACENET_TEMPLATE, Template, similarity_transform  # noqa: E402
from vision.calibration import FOLD1_IMAGES, IDENTITIES, calibration_pool, test_strangers  # noqa: E402
from vision.fpir_estimate import estimate_threshold, fnir_at, template_comparisons  # noqa: E402
from vision.identification import PersonFaces, fnir_at_fpir, rank1, run_protocol  # noqa: E402
from vision.lfw import accuracy_at, best_threshold, parse_pairs, pick_central  # noqa: E402
from vision.matcher import Match  # noqa: E402
from vision.pipeline import central_box, landmarks_in_box, read_image  # noqa: E402
from vision.quality import QualityLimits, measure  # noqa: E402
from vision.types import Detection, FloatArray, ImageBGR  # noqa: E402

F64 = npt.NDArray[np.float64]
FOLD1 = FOLD1_IMAGES.parent
FACENET_MARGIN = 0.05

# --------------------------------------------------------------------------- faces of every photo


@dataclass(frozen=True)
class Faces:
    """The detections the protocols use of one photo (``central`` None: no face; ``fallback``: central box)."""

    central: Detection | None
    largest: Detection | None
    fallback: Detection
    quality: float  # the enrolment face's quality score (FaceNet crop), 0 when none
    enrol_ok: bool  # the largest face passes main.py enrol's quality limits (judged on FaceNet's crop)


def all_photos() -> list[Path]:
    return sorted(IDENTITIES.glob("*/*.jpg")) + sorted(FOLD1_IMAGES.glob("*/*.jpg"))


def detect_all(cache: Path) -> dict[Path, Faces]:
    """MTCNN once per photo, cached as JSON in ``cache``."""
    file = cache / "detections.json"
    raw: dict[str, list[list[Any]]]
    if file.is_file():
        raw = json.loads(file.read_text())
    else:
        from vision.detector import MtcnnDetector

        detector = MtcnnDetector()
        raw = {}
        for path in all_photos():
            image = read_image(path)
            dets = [] if image is None else detector.detect(image)
            raw[str(path)] = [[list(d.box), [list(p) for p in d.landmarks], d.confidence] for d in dets]
        file.write_text(json.dumps(raw))
    out: dict[Path, Faces] = {}
    for key, listed in raw.items():
        path = Path(key)
        image = read_image(path)
        assert image is not None
        found = [Detection(tuple(b), tuple((p[0], p[1]) for p in lm), float(c)) for b, lm, c in listed]  # type: ignore[arg-type]
        height, width = image.shape[:2]
        central = pick_central(found, width, height)
        largest = max(found, key=lambda d: d.box[2] * d.box[3]) if found else None
        box = central_box(width, height)
        fallback = Detection(box, landmarks_in_box(box), 0.0)
        quality, enrol_ok = 0.0, False
        if largest is not None:
            measured = measure(largest, crop(image, largest.landmarks, FACENET_TEMPLATE))
            quality, enrol_ok = measured.score, measured.reject_reason(QualityLimits()) is None
        out[path] = Faces(central, largest, fallback, quality, enrol_ok)
    return out


# --------------------------------------------------------------------------- embedding variants


def crop(
    image: ImageBGR, landmarks: Sequence[tuple[float, float]], t: Template, points: Sequence[int] = ()
) -> ImageBGR:
    """``vision.align.align``, optionally fitting only some of the five landmarks."""
    if not points:
        m = t.matrix(landmarks)  # type: ignore[arg-type]
    else:
        target = t.array()
        c = t.size / 2.0
        target[:, 0] = (target[:, 0] - c) / t.x_stretch + c
        idx = list(points)
        sim = similarity_transform(np.asarray(landmarks, dtype=np.float64)[idx], target[idx])
        stretch = np.array([[t.x_stretch, 0.0, c * (1.0 - t.x_stretch)], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        m = (stretch @ np.vstack([sim, [0.0, 0.0, 1.0]]))[:2]
    out = cv2.warpAffine(image, m, (t.size, t.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out, dtype=np.uint8)


def zoomed(t: Template, factor: float) -> Template:
    """The template with its landmarks spread ``factor`` times about the crop centre (a tighter crop above 1)."""
    c = t.size / 2.0
    return Template(t.size, tuple(((x - c) * factor + c, (y - c) * factor + c) for x, y in t.points), t.x_stretch)


@dataclass(frozen=True)
class Variant:
    """How one lever embeds a face: a model, its crop (template, landmarks used) and test-time flip."""

    name: str
    model: str
    template: Template | None = None  # None: the model's own
    points: tuple[int, ...] = ()
    flip: bool = False

    def key(self) -> str:
        return hashlib.sha1(repr(self).encode()).hexdigest()[:12]


Embeddings = dict[tuple[Path, str], FloatArray]  # (photo, "central" | "largest" | "fallback") -> unit row


def embed_variant(v: Variant, faces: dict[Path, Faces], cache: Path) -> Embeddings:
    file = cache / f"emb-{v.key()}.npz"
    keys: list[tuple[Path, str]] = []
    for path, f in faces.items():
        for role, det in (("central", f.central), ("largest", f.largest), ("fallback", f.fallback)):
            if det is None or (role == "largest" and det is f.central) or (role == "fallback" and f.central):
                continue
            keys.append((path, role))
    if file.is_file():
        with np.load(file) as data:
            return dict(zip(keys, data["rows"].astype(np.float32), strict=True))
    from vision.embedders import load_embedder

    embedder = load_embedder(v.model)
    template = v.template or embedder.template
    rows: list[FloatArray] = []
    batch: list[ImageBGR] = []

    def flush() -> None:
        if batch:
            rows.extend(embed_crops(v, embedder, np.stack(batch)))
            batch.clear()

    images: dict[Path, ImageBGR] = {}
    for path, role in keys:
        if path not in images:
            images.clear()
            image = read_image(path)
            assert image is not None
            images[path] = image
        f = faces[path]
        det = {"central": f.central, "largest": f.largest, "fallback": f.fallback}[role]
        assert det is not None
        batch.append(crop(images[path], det.landmarks, template, v.points))
        if len(batch) == 32:
            flush()
    flush()
    np.savez(file, rows=np.asarray(rows, dtype=np.float32))
    print(f"  embedded {v.name}: {len(rows)} faces", file=sys.stderr)
    return dict(zip(keys, rows, strict=True))


def embed_crops(v: Variant, embedder: Any, crops: npt.NDArray[np.uint8]) -> FloatArray:
    """The variant's unit embeddings of aligned crops (with flip: the mean with their mirror images)."""
    out: FloatArray = embedder.embed(crops)
    if v.flip:
        out = out + embedder.embed(np.ascontiguousarray(crops[:, :, ::-1]))
        out = (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)
    return out


def time_variants(
    variants: dict[str, Variant], faces: dict[Path, Faces], count: int = 24, repeats: int = 3
) -> dict[str, float]:
    """Milliseconds per face of each variant on the same faces, interleaved and best of ``repeats``."""
    from vision.embedders import load_embedder

    picked = [(p, f.central) for p, f in faces.items() if f.central is not None][:count]
    images = {p: read_image(p) for p, _ in picked}
    best = {k: float("inf") for k in variants}
    for v in variants.values():  # warm up: first calls trace graphs and allocate
        embedder = load_embedder(v.model)
        crops = np.stack([crop(images[p], d.landmarks, v.template or embedder.template, v.points) for p, d in picked])  # type: ignore[arg-type]
        embed_crops(v, embedder, crops)
    for _ in range(repeats):
        for k, v in variants.items():
            embedder = load_embedder(v.model)
            template = v.template or embedder.template
            crops = np.stack([crop(images[p], d.landmarks, template, v.points) for p, d in picked])  # type: ignore[arg-type]
            start = time.perf_counter()
            embed_crops(v, embedder, crops)
            best[k] = min(best[k], (time.perf_counter() - start) / len(crops) * 1000.0)
    return best


def fuse(a: Embeddings, b: Embeddings, weight: float) -> Embeddings:
    """The normalised concatenation [sqrt(w) a, sqrt(1 - w) b]: its cosine is w cos_a + (1 - w) cos_b."""
    out: Embeddings = {}
    for key, row in a.items():
        v = np.concatenate([np.sqrt(weight) * row, np.sqrt(1.0 - weight) * b[key]])
        out[key] = (v / np.linalg.norm(v)).astype(np.float32)
    return out


# --------------------------------------------------------------------------- scoring rules

# (samples (k, dim), probes (n, dim), sample qualities (k,)) -> per-person score of each probe
Rule = Callable[[F64, F64, F64], F64]


def rule_max(samples: F64, probes: F64, quality: F64) -> F64:
    out: F64 = (probes @ samples.T).max(axis=1)
    return out


def _unit(v: F64) -> F64:
    out: F64 = v / max(float(np.linalg.norm(v)), 1e-12)
    return out


def rule_mean(samples: F64, probes: F64, quality: F64) -> F64:
    out: F64 = probes @ _unit(samples.mean(axis=0))
    return out


def rule_max_mean(samples: F64, probes: F64, quality: F64) -> F64:
    return 0.5 * (rule_max(samples, probes, quality) + rule_mean(samples, probes, quality))


def rule_quality_mean(samples: F64, probes: F64, quality: F64) -> F64:
    w = np.maximum(quality, 1e-3)
    out: F64 = probes @ _unit((samples * w[:, None]).sum(axis=0))
    return out


RULES: dict[str, Rule] = {
    "max": rule_max,
    "mean": rule_mean,
    "max+mean": rule_max_mean,
    "quality-mean": rule_quality_mean,
}


class RuleIdentifier:
    """An open-set identifier scoring each person by ``rule`` (optionally z-normalised over the gallery)."""

    def __init__(
        self, rule: Rule, pids: Sequence[int], rows: FloatArray, quality: Sequence[float], *, znorm: bool = False
    ) -> None:
        ids = np.asarray(pids)
        x = np.asarray(rows, dtype=np.float64)
        q = np.asarray(quality, dtype=np.float64)
        self._persons = np.unique(ids)
        self._groups = [(x[ids == p], q[ids == p]) for p in self._persons]
        self._rule = rule
        self._znorm = znorm

    @property
    def persons(self) -> int:
        return len(self._persons)

    def person_scores(self, embeddings: npt.ArrayLike, *, model: str) -> FloatArray:
        probes = np.asarray(embeddings, dtype=np.float64)
        scores = np.stack([self._rule(s, probes, q) for s, q in self._groups], axis=1)
        if self._znorm:
            scores = (scores - scores.mean(axis=1, keepdims=True)) / np.maximum(scores.std(axis=1, keepdims=True), 1e-6)
        return scores.astype(np.float32)

    def match(self, embeddings: npt.ArrayLike, *, model: str) -> list[Match]:
        return [Match(None, None, 0.0, 0.0) for _ in range(len(np.asarray(embeddings)))]


# --------------------------------------------------------------------------- the data sets


@dataclass(frozen=True)
class Data:
    pool: list[tuple[str, list[Path]]]  # calibration people and their photos
    test_enrolled: list[tuple[str, list[Path]]]  # the accuracy test: everyone but its strangers
    test_strangers: list[Path]


def load_data() -> Data:
    by_person: dict[str, list[Path]] = {}
    for person, path in calibration_pool():
        by_person.setdefault(person, []).append(path)
    people = sorted(p.name for p in IDENTITIES.iterdir() if p.is_dir())
    left_out = test_strangers(people)
    return Data(
        pool=sorted(by_person.items()),
        test_enrolled=[(p, sorted((IDENTITIES / p).glob("*.jpg"))) for p in people if p not in left_out],
        test_strangers=[x for p in left_out for x in sorted((IDENTITIES / p).glob("*.jpg"))],
    )


def row_of(e: Embeddings, faces: dict[Path, Faces], path: Path, role: str) -> FloatArray | None:
    """The embedding a protocol uses: "probe" (central, None without a face), "enrol" (largest), "any"."""
    f = faces[path]
    if role == "probe":
        return e[(path, "central")] if f.central is not None else None
    if role == "any":
        return e[(path, "central")] if f.central is not None else e[(path, "fallback")]
    if f.largest is None or not f.enrol_ok:
        return None
    return e[(path, "central")] if f.largest is f.central else e[(path, "largest")]


# --------------------------------------------------------------------------- one row


@dataclass(frozen=True)
class Row:
    name: str
    rank1: float
    fnir_1: float
    fnir_01: float
    fnmr_1e4: float
    threshold: float
    margin: float
    test_fpir: float
    test_fnir: float
    lfw: float
    lfw_best: float
    ms: float
    note: str = ""


def spread(e: Embeddings, data: Data, faces: dict[Path, Faces]) -> float:
    rows = [row_of(e, faces, x, "any") for _, photos in data.pool for x in photos]
    labels = np.asarray([k for k, (_, photos) in enumerate(data.pool) for _ in photos])
    x = np.asarray(rows, dtype=np.float64)
    sims = x @ x.T
    upper = np.triu(np.ones(sims.shape, dtype=bool), 1) & (labels[:, None] != labels[None, :])
    return float(np.std(sims[upper]))


def measure_row(
    name: str,
    e: Embeddings,
    data: Data,
    faces: dict[Path, Faces],
    *,
    rule: str = "max",
    znorm: bool = False,
    margin: float | None = None,
    facenet_spread: float,
    ms: float,
    note: str = "",
) -> Row:
    score_rule = RULES[rule]
    own_spread = spread(e, data, faces)
    chosen_margin = (
        margin if margin is not None else round(FACENET_MARGIN * own_spread / facenet_spread / 0.005) * 0.005
    )
    chosen_margin = max(chosen_margin, 0.0)
    # pool 1:N, enrol 3, 10 folds (no margin: the DET of the score itself)
    quality_of: dict[bytes, float] = {}
    people = []
    for person, photos in data.pool:
        enrol = [(row_of(e, faces, x, "enrol"), faces[x].quality) for x in photos[:3]]
        kept = [r for r, _ in enrol if r is not None]
        quality_of.update({r.tobytes(): q for r, q in enrol if r is not None})
        people.append(
            PersonFaces(
                person,
                tuple(kept),
                3 - len(kept),
                tuple(row_of(e, faces, x, "probe") for x in photos[3:]),
                tuple(row_of(e, faces, x, "probe") for x in photos),
            )
        )
    dim = len(next(iter(e.values())))

    def build(pids: Sequence[int], names: Sequence[str], rows: FloatArray) -> RuleIdentifier:
        qual = [quality_of.get(r.astype(np.float32).tobytes(), 0.5) for r in rows]
        return RuleIdentifier(score_rule, pids, rows, qual, znorm=znorm)

    outcome = run_protocol(people, None, model=name, dim=dim, build_matcher=build, folds=10)
    fnir_1, _ = fnir_at_fpir(outcome.mated, outcome.strangers, 0.01, 0.0)
    fnir_01, _ = fnir_at_fpir(outcome.mated, outcome.strangers, 0.001, 0.0)
    # calibration as vision.calibration does it (pool only), for this rule
    labels = [k for k, (_, photos) in enumerate(data.pool) for _ in photos]
    rows = np.asarray([row_of(e, faces, x, "any") for _, photos in data.pool for x in photos], dtype=np.float32)
    quality_of.update(
        {
            r.tobytes(): faces[x].quality
            for (_, photos) in data.pool
            for x, r in zip(photos, [row_of(e, faces, x, "any") for x in photos], strict=True)
            if r is not None
        }
    )
    fnmr, threshold = float("nan"), float("nan")
    if not znorm:

        def template_score(template: F64, probes: F64) -> F64:
            q = np.asarray([quality_of.get(t.tobytes(), 0.5) for t in template.astype(np.float32)])
            return score_rule(template, probes, q)

        comparisons = template_comparisons(labels, rows, 3, template_score)
        estimate = estimate_threshold(comparisons, gallery=200, fpir=0.01)
        threshold = float(np.ceil(estimate.upper * 1000) / 1000)
        order = np.sort(comparisons.impostor)[::-1]
        fnmr = fnir_at(comparisons, float(np.nextafter(order[int(1e-4 * len(order))], np.inf)))
    # the accuracy test's split at that operating point
    test_fpir = test_fnir = float("nan")
    if not znorm:
        pids, grows, gq = [], [], []
        for k, (_person, photos) in enumerate(data.test_enrolled):
            for x in photos[:5]:
                pids.append(k)
                grows.append(row_of(e, faces, x, "any"))
                gq.append(faces[x].quality)
        ident = RuleIdentifier(score_rule, pids, np.asarray(grows), gq)
        strangers = np.asarray([row_of(e, faces, x, "any") for x in data.test_strangers])
        s = ident.person_scores(strangers, model=name).astype(np.float64)
        test_fpir = float(np.mean(_named(s, threshold, chosen_margin)))
        probes, truth = [], []
        for k, (_person, photos) in enumerate(data.test_enrolled):
            for x in photos[5:]:
                probes.append(row_of(e, faces, x, "any"))
                truth.append(k)
        s = ident.person_scores(np.asarray(probes), model=name).astype(np.float64)
        hit = _named(s, threshold, chosen_margin) & (np.argmax(s, axis=1) == np.asarray(truth))
        test_fnir = float(1.0 - np.mean(hit))
    # LFW fold 1 at the pool's verification threshold
    vt = _verification_threshold(rows, labels)
    lfw, lfw_best = _lfw(e, faces, vt)
    return Row(
        name, rank1(outcome.mated), fnir_1, fnir_01, fnmr, threshold, chosen_margin, test_fpir, test_fnir,
        lfw, lfw_best, ms, note,
    )  # fmt: skip


def _named(scores: F64, threshold: float, margin: float) -> npt.NDArray[np.bool_]:
    ordered = np.sort(scores, axis=1)
    top = ordered[:, -1]
    runner = ordered[:, -2] if scores.shape[1] > 1 else np.full(len(scores), -1.0)
    named: npt.NDArray[np.bool_] = (top >= threshold) & (top - runner >= margin)
    return named


def _verification_threshold(rows: FloatArray, labels: Sequence[int]) -> float:
    import itertools

    lab = np.asarray(labels)
    groups = [np.flatnonzero(lab == k) for k in range(int(lab.max()) + 1)]
    same = [float(rows[a] @ rows[b]) for g in groups for a, b in itertools.combinations(g, 2)]
    rng = np.random.default_rng(1)
    diff: list[float] = []
    while len(diff) < len(same):
        i, j = rng.choice(len(groups), 2, replace=False)
        diff.append(
            float(rows[groups[i][rng.integers(len(groups[i]))]] @ rows[groups[j][rng.integers(len(groups[j]))]])
        )
    threshold, _ = best_threshold(np.asarray(same + diff), np.asarray([True] * len(same) + [False] * len(diff)))
    return threshold


def _lfw(e: Embeddings, faces: dict[Path, Faces], threshold: float) -> tuple[float, float]:
    pairs = parse_pairs(FOLD1 / "pairs_fold1.txt")

    def at(name: str, index: int) -> FloatArray:
        row = row_of(e, faces, FOLD1_IMAGES / name / f"{name}_{index:04d}.jpg", "any")
        assert row is not None
        return row

    scores = np.asarray([float(at(p.left, p.left_index) @ at(p.right, p.right_index)) for p in pairs.pairs])
    labels = np.asarray([p.same for p in pairs.pairs])
    return accuracy_at(scores, labels, threshold), best_threshold(scores, labels)[1]


# --------------------------------------------------------------------------- the run


VARIANTS = {
    "facenet": Variant("facenet-512 (shipped)", "facenet-512"),
    "facenet-flip": Variant("facenet-512 + flip", "facenet-512", flip=True),
    "facenet-zoom-in": Variant("facenet-512, crop 7% tighter", "facenet-512", zoomed(FACENET_TEMPLATE, 1.07)),
    "facenet-zoom-out": Variant("facenet-512, crop 7% looser", "facenet-512", zoomed(FACENET_TEMPLATE, 0.93)),
    "facenet-4pt": Variant("facenet-512, eyes+mouth fit", "facenet-512", points=(0, 1, 3, 4)),
    "dlib": Variant("dlib-128", "dlib-128"),
    "dlib-flip": Variant("dlib-128 + flip", "dlib-128", flip=True),
    "dlib-zoom-in": Variant("dlib-128, crop 7% tighter", "dlib-128", zoomed(DLIB_TEMPLATE, 1.07)),
    "fusion": Variant("fusion-640 (master crop)", "fusion-640"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="keep detections and embeddings here between runs")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facestation-accuracy-") as tmp:
        cache = args.cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        return run(cache, args.json)


def run(cache: Path, json_out: Path | None) -> int:
    data = load_data()
    print(f"pool {len(data.pool)} people; detecting {len(all_photos())} photos", file=sys.stderr)
    faces = detect_all(cache)
    e = {k: embed_variant(v, faces, cache) for k, v in VARIANTS.items()}
    ms = time_variants(VARIANTS, faces)
    fn_spread = spread(e["facenet"], data, faces)
    sd = spread(e["dlib"], data, faces)
    weight = round(sd / (fn_spread + sd) / 0.05) * 0.05
    rows: list[Row] = []

    def add(name: str, emb: Embeddings, cost: float, **kw: object) -> None:
        rows.append(measure_row(name, emb, data, faces, facenet_spread=fn_spread, ms=cost, **kw))  # type: ignore[arg-type]
        print(f"  measured {name}", file=sys.stderr)

    add("facenet-512 (shipped)", e["facenet"], ms["facenet"])
    add("facenet-512, margin 0", e["facenet"], ms["facenet"], margin=0.0)
    for k in ("facenet-flip", "facenet-zoom-in", "facenet-zoom-out", "facenet-4pt"):
        add(VARIANTS[k].name, e[k], ms[k])
    add("dlib-128, margin 0.05 (as shipped)", e["dlib"], ms["dlib"], margin=0.05)
    add("dlib-128, scaled margin", e["dlib"], ms["dlib"])
    add("dlib-128 + flip", e["dlib-flip"], ms["dlib-flip"])
    add("dlib-128, crop 7% tighter", e["dlib-zoom-in"], ms["dlib-zoom-in"])
    both = ms["facenet"] + ms["dlib"]
    for w in (0.1, weight, 0.3, 0.5):
        add(f"fusion direct crops, w={w:.2f}", fuse(e["facenet"], e["dlib"], w), both)
    add(f"fusion + flip, w={weight:.2f}", fuse(e["facenet-flip"], e["dlib-flip"], weight), 2 * both)
    tighter = fuse(e["facenet"], e["dlib-zoom-in"], weight)
    add(f"fusion, dlib crop 7% tighter, w={weight:.2f}", tighter, ms["facenet"] + ms["dlib-zoom-in"])
    add("fusion-640, best sample", e["fusion"], ms["fusion"])
    add("fusion-640, best sample, margin 0.05", e["fusion"], ms["fusion"], margin=0.05)
    add("fusion-640, mean template (shipped)", e["fusion"], ms["fusion"], rule="mean")
    for rule in ("max+mean", "quality-mean"):
        add(f"fusion-640, {rule} template", e["fusion"], ms["fusion"], rule=rule)
    add("fusion-640, z-norm over gallery", e["fusion"], ms["fusion"], znorm=True)
    add("facenet-512, mean template", e["facenet"], ms["facenet"], rule="mean")

    base = ms["facenet"]
    head = (
        f"{'lever':38s} {'rank-1':>7s} {'FNIR@1%':>8s} {'@0.1%':>7s} {'FNMR@1e-4':>9s} {'op t':>6s} {'margin':>6s} "
        f"{'test FPIR':>9s} {'test FNIR':>9s} {'LFW':>7s} {'best':>7s} {'ms/face':>8s}"
    )
    print(f"z-score fusion weight (FaceNet): {weight:.2f} (spreads: FaceNet {fn_spread:.4f}, dlib {sd:.4f})")
    print(head)
    for r in rows:
        print(
            f"{r.name:38s} {r.rank1:7.4f} {r.fnir_1:8.4f} {r.fnir_01:7.4f} {r.fnmr_1e4:9.4f} {r.threshold:6.3f} "
            f"{r.margin:6.3f} {r.test_fpir:9.3f} {r.test_fnir:9.3f} {r.lfw:7.4f} {r.lfw_best:7.4f} "
            f"{r.ms:5.1f} ({r.ms / base:.1f}x)"
        )
    if json_out is not None:
        json_out.write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
