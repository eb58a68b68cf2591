"""LFW verification: parse a ``pairs.txt``, embed the raw photos with our own pipeline, score.

Protocol (../shared/faces/README.md): every photo goes through the same detect → align → embed path
as a live frame. The labelled person is the detected face nearest the centre; when MTCNN finds no
face, a fixed central box is used instead and counted in ``no_face``. Pairs are scored by cosine
similarity. With 10 folds, the threshold for each fold is chosen on the other nine (standard
10-fold protocol). With fewer folds, the accuracy is reported at the embedder's
``verification_threshold``, a constant fixed before the run and calibrated on other photos
(``vision.calibration``), next to the best accuracy over all thresholds, which is optimistic because
it peeks at the answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vision.types import Detection, FloatArray

BoolArray = npt.NDArray[np.bool_]


class PairsError(ValueError):
    """A pairs file or an image it names is missing or malformed; the message says which line."""


@dataclass(frozen=True, slots=True)
class Pair:
    left: str
    left_index: int
    right: str
    right_index: int
    fold: int

    @property
    def same(self) -> bool:
        return self.left == self.right


@dataclass(frozen=True, slots=True)
class PairsFile:
    folds: int
    per_fold: int
    pairs: tuple[Pair, ...]


def image_path(images: Path, name: str, index: int) -> Path:
    return images / name / f"{name}_{index:04d}.jpg"


def parse_pairs(path: Path) -> PairsFile:
    """Read LFW's ``pairs.txt`` format: a header ``folds n``, then per fold n same and n different pairs."""
    try:
        lines = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise PairsError(f"cannot read pairs file {path}: {exc}") from exc
    if not lines:
        raise PairsError(f"pairs file {path} is empty")
    folds, per_fold = _parse_header(path, lines[0])
    body = lines[1:]
    if len(body) != folds * per_fold * 2:
        raise PairsError(f"{path}: header promises {folds * per_fold * 2} pairs, the file has {len(body)}")
    pairs = tuple(_parse_pair(path, number, fields, number // (2 * per_fold)) for number, fields in enumerate(body))
    return PairsFile(folds=folds, per_fold=per_fold, pairs=pairs)


def _parse_header(path: Path, head: list[str]) -> tuple[int, int]:
    """(folds, pairs per class) from the first line: ``folds n``, or one count (pairsDevTrain.txt style)."""
    try:
        if len(head) == 1:
            folds, per_fold = 1, int(head[0])
        elif len(head) == 2:
            folds, per_fold = int(head[0]), int(head[1])
        else:
            raise ValueError
    except ValueError:
        raise PairsError(f"{path}:1: expected a header 'folds pairs_per_class', got {' '.join(head)!r}") from None
    if not (1 <= folds <= 100 and 1 <= per_fold <= 100_000):
        raise PairsError(f"{path}:1: implausible header {folds} {per_fold}")
    return folds, per_fold


def _parse_pair(path: Path, number: int, fields: list[str], fold: int) -> Pair:
    """Body line ``number`` (0-based): ``name i j`` (same person) or ``name1 i name2 j``."""
    try:
        if len(fields) == 3:
            return Pair(fields[0], int(fields[1]), fields[0], int(fields[2]), fold)
        if len(fields) == 4:
            return Pair(fields[0], int(fields[1]), fields[2], int(fields[3]), fold)
    except ValueError:
        pass
    raise PairsError(f"{path}:{number + 2}: expected 'name i j' or 'name1 i name2 j'")


def pick_central(detections: list[Detection], width: int, height: int) -> Detection | None:
    """The detection whose box centre is nearest the image centre (LFW's labelled person)."""
    if not detections:
        return None

    def distance(d: Detection) -> float:
        x, y, w, h = d.box
        return float(np.hypot(x + w / 2 - width / 2, y + h / 2 - height / 2))

    return min(detections, key=distance)


def accuracy_at(scores: FloatArray | npt.NDArray[np.float64], labels: BoolArray, threshold: float) -> float:
    return float(np.mean((scores >= threshold) == labels))


def best_threshold(scores: npt.NDArray[np.floating], labels: BoolArray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy; the threshold is midway between neighbouring scores."""
    s = np.sort(np.unique(scores))
    candidates = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2.0, [s[-1] + 1e-6]])
    accs = np.array([np.mean((scores >= t) == labels) for t in candidates])
    i = int(np.argmax(accs))
    return float(candidates[i]), float(accs[i])


def roc_auc(scores: npt.NDArray[np.floating], labels: BoolArray) -> float:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half)."""
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    ranks_sorted = np.arange(1, len(order) + 1, dtype=np.float64)
    # average ranks over ties
    _, start, counts = np.unique(allv, return_index=True, return_counts=True)
    for s, c in zip(start, counts, strict=True):
        if c > 1:
            ranks_sorted[s : s + c] = ranks_sorted[s : s + c].mean()
    ranks[order] = ranks_sorted
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def tar_at_far(scores: npt.NDArray[np.floating], labels: BoolArray, far: float) -> float:
    """True-accept rate at the strictest threshold whose false-accept rate is <= ``far``.

    With 300 different-person pairs a FAR of 1e-3 means no false accept at all.
    """
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allowed = int(np.floor(far * len(neg)))
    neg_sorted = np.sort(neg)[::-1]
    threshold = neg_sorted[allowed] if allowed < len(neg_sorted) else -np.inf
    return float(np.mean(pos > threshold))


@dataclass(frozen=True, slots=True)
class LfwResult:
    accuracy: float
    std: float
    threshold: float
    auc: float
    tar_at_far_1e_3: float
    pairs: int
    no_face: int
    seconds: float
    best_accuracy: float
    best_threshold: float
    model: str
    protocol: str

    def as_json(self) -> dict[str, object]:
        return {
            "accuracy": round(self.accuracy, 4),
            "std": round(self.std, 4),
            "threshold": round(self.threshold, 4),
            "auc": round(self.auc, 4),
            "tar_at_far_1e-3": round(self.tar_at_far_1e_3, 4),
            "pairs": self.pairs,
            "no_face": self.no_face,
            "seconds": round(self.seconds, 1),
            "best_accuracy": round(self.best_accuracy, 4),
            "best_threshold": round(self.best_threshold, 4),
            "best_accuracy_note": "optimistic: the threshold was chosen on the pairs it scores",
            "model": self.model,
            "protocol": self.protocol,
        }


def score_pairs(
    pairs_file: PairsFile, images: Path, embed_images: Callable[[list[Path]], list[tuple[FloatArray, bool]]]
) -> tuple[npt.NDArray[np.float64], BoolArray, int]:
    """Cosine similarity per pair, labels, and how many distinct photos had no detected face.

    ``embed_images(paths) -> [(unit embedding, face_found)]`` is given each distinct photo once,
    in chunks, so embeddings can be computed in batches.
    """
    sides = [(p.left, p.left_index) for p in pairs_file.pairs] + [(p.right, p.right_index) for p in pairs_file.pairs]
    needed = sorted(set(sides))
    missing = [image_path(images, n, i) for n, i in needed if not image_path(images, n, i).is_file()]
    if missing:
        raise PairsError(f"{len(missing)} image(s) named in the pairs file are not under {images}, e.g. {missing[0]}")
    cache: dict[tuple[str, int], FloatArray] = {}
    no_face = 0
    chunk = 32
    for start in range(0, len(needed), chunk):
        keys = needed[start : start + chunk]
        for key, (embedding, found) in zip(keys, embed_images([image_path(images, *k) for k in keys]), strict=True):
            cache[key] = embedding
            no_face += 0 if found else 1
    scores = np.array([float(cache[p.left, p.left_index] @ cache[p.right, p.right_index]) for p in pairs_file.pairs])
    labels = np.array([p.same for p in pairs_file.pairs])
    return scores, labels, no_face


def summarise(
    pairs_file: PairsFile,
    scores: npt.NDArray[np.float64],
    labels: BoolArray,
    fixed_threshold: float,
    no_face: int,
    seconds: float,
    model: str,
) -> LfwResult:
    """Accuracy by the protocol the pairs file allows (see the module docstring)."""
    folds = np.array([p.fold for p in pairs_file.pairs])
    best_thr, best_acc = best_threshold(scores, labels)
    if pairs_file.folds >= 2:
        accs, thrs = [], []
        for k in range(pairs_file.folds):
            train, test = folds != k, folds == k
            thr, _ = best_threshold(scores[train], labels[train])
            thrs.append(thr)
            accs.append(accuracy_at(scores[test], labels[test], thr))
        accuracy, std, threshold = float(np.mean(accs)), float(np.std(accs)), float(np.mean(thrs))
        protocol = f"{pairs_file.folds}-fold: each fold's threshold chosen on the other folds"
    else:
        accuracy, std, threshold = accuracy_at(scores, labels, fixed_threshold), 0.0, fixed_threshold
        protocol = "one fold: accuracy at the embedder's calibrated threshold, fixed before the run"
    return LfwResult(
        accuracy=accuracy,
        std=std,
        threshold=threshold,
        auc=roc_auc(scores, labels),
        tar_at_far_1e_3=tar_at_far(scores, labels, 1e-3),
        pairs=len(pairs_file.pairs),
        no_face=no_face,
        seconds=seconds,
        best_accuracy=best_acc,
        best_threshold=best_thr,
        model=model,
        protocol=protocol,
    )


def evaluate(pairs_path: Path, images: Path, model: str = "facenet-512") -> LfwResult:
    """Run the whole protocol with the named embedder; raises PairsError or VisionError on bad input."""
    from vision.embedders import load_embedder
    from vision.pipeline import FacePipeline, read_image

    pairs_file = parse_pairs(pairs_path)
    if not images.is_dir():
        raise PairsError(f"image folder {images} does not exist")
    embedder = load_embedder(model)
    pipeline = FacePipeline(embedder=embedder)
    pipeline.warm_up()
    start = time.perf_counter()

    def embed_images(paths: list[Path]) -> list[tuple[FloatArray, bool]]:
        loaded = []
        for path in paths:
            image = read_image(path)
            if image is None:
                raise PairsError(f"{path} is not a readable image")
            loaded.append(image)
        return [(obs.embedding, obs.detected) for obs in pipeline.central_faces(loaded)]

    scores, labels, no_face = score_pairs(pairs_file, images, embed_images)
    seconds = time.perf_counter() - start
    return summarise(pairs_file, scores, labels, embedder.verification_threshold, no_face, seconds, embedder.name)
