"""The doorway sets through the live engine's tracker and decision at several thresholds, fast: per person who
passes, how many strangers are named and how many enrolled people missed (issue 22's track calibration).

    .venv/bin/python bench/doorway_sweep.py [--set design|heldout|both] [--thresholds 0.569,0.594,...]

The detections do not depend on the threshold, so each distinct picture of a set is detected, aligned and
embedded once (by the live model, and by the photo model for the confirmation, from the original frame as the
engine's confirmer does), and every frame of the video is then replayed through the real
:class:`vision.tracker.Tracker` and :class:`vision.decision.Decider` (the live model proposes, the photo model
confirms at the same strictness) with the looks served from that cache. One difference from ``main.py scan``:
every frame is searched whole (scan searches every third frame whole and the rest near the live tracks, which
finds the same faces on these still pictures). ``bench/doorway.py`` measures the engine itself at the shipped
threshold; this sweeps the threshold. The face data stays in memory; nothing is written.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vision.native_logs import quiet_native_logs  # noqa: E402

quiet_native_logs()

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.doorway_data import FPS, DoorwaySet, SetName, build_set, canvas  # noqa: E402
from bench.doorway_score import Kind, Report, Sighting, Span, score_run  # noqa: E402
from station.models import LIVE_MODEL, photo_model  # noqa: E402
from vision.decision import ConfirmRules, Decider, next_revision  # noqa: E402
from vision.embedders import load_embedder  # noqa: E402
from vision.embedders.calibrated import calibration, expected_at, threshold_for  # noqa: E402
from vision.evidence import Moment  # noqa: E402
from vision.faces import Face  # noqa: E402
from vision.frames import FrameRef  # noqa: E402
from vision.matcher import Matcher  # noqa: E402
from vision.pipeline import FacePipeline, read_image  # noqa: E402
from vision.tracker import Tracker, TrackRecord  # noqa: E402
from vision.types import FloatArray, ImageBGR  # noqa: E402

THRESHOLDS = (0.569, 0.594, 0.619, 0.644, 0.669, 0.694, 0.719)  # facenet-512's calibrated operating points
MARGIN = 0.05


@dataclass
class Cache:
    """One set's looks: each distinct picture's faces, their live and photo embeddings, and the enrolled rows."""

    doorway: DoorwaySet
    faces: dict[Path, list[Face]]
    live: dict[int, FloatArray]  # id(face.crop) -> live embedding
    photo: dict[int, FloatArray]  # id(face.detection) -> photo embedding
    enrolled: dict[str, tuple[FloatArray, FloatArray]]  # person -> (live rows, photo rows)


def build_cache(name: SetName, live: FacePipeline, photo: FacePipeline) -> Cache:
    doorway = build_set(name)
    cache = Cache(doorway, {}, {}, {}, {})
    for p in doorway.passes:
        for path in p.photos:
            if path not in cache.faces:
                cache.faces[path] = _look(path, live, photo, cache)
    for person, files in doorway.enrolled.items():
        images: list[ImageBGR] = [i for i in (read_image(f) for f in files) if i is not None]
        rows = [np.stack([o.embedding for o in pipe.central_faces(images)]) for pipe in (live, photo)]
        cache.enrolled[person] = (rows[0], rows[1])
    return cache


def _look(path: Path, live: FacePipeline, photo: FacePipeline, cache: Cache) -> list[Face]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    frame = canvas(np.asarray(image, dtype=np.uint8))
    faces = live.candidates(frame, min_face=40)
    if faces:
        rows = live.embed_crops([f.crop for f in faces if f.crop is not None])
        confirm = photo.observe_detections(frame, [f.detection for f in faces])
        for face, row, seen in zip(faces, rows, confirm, strict=True):
            cache.live[id(face.crop)] = row
            cache.photo[id(face.detection)] = seen.embedding
    return faces


class CachedConfirmer:
    """The photo model's looks at a track's moments, served from the cache."""

    def __init__(self, rows: dict[int, FloatArray], model: str) -> None:
        self._rows = rows
        self.model = model
        self.looks = 0

    def embed_moments(self, moments: Sequence[Moment]) -> FloatArray | None:
        rows = [self._rows[id(m.detection)] for m in moments if id(m.detection) in self._rows]
        self.looks += len(rows)
        return np.stack(rows) if rows else None


def decider(cache: Cache, threshold: float, live_model: str, photo_name: str) -> Decider:
    people = sorted(cache.enrolled)
    ids = [i + 1 for i, p in enumerate(people) for _ in range(len(cache.enrolled[p][0]))]
    names = [p for p in people for _ in range(len(cache.enrolled[p][0]))]
    live = Matcher(live_model, ids, names, np.concatenate([cache.enrolled[p][0] for p in people]), threshold=threshold)
    point = expected_at(live_model, threshold)
    photo_threshold = threshold_for(photo_name, point.fpir_upper) if point is not None else None
    found = calibration(photo_name)
    assert photo_threshold is not None and found is not None
    rows = np.concatenate([cache.enrolled[p][1] for p in people])
    photo = Matcher(photo_name, ids, names, rows, threshold=photo_threshold, margin=found.margin)
    return Decider(live, next_revision(), ConfirmRules(photo))


def replay(cache: Cache, decide: Decider, confirmer: CachedConfirmer) -> list[TrackRecord]:
    doorway = cache.doorway
    frames: list[list[Face]] = [[] for _ in range(doorway.frames)]
    for p in doorway.passes:
        for k, path in enumerate(p.photos):
            for j in range(p.frames_each):
                frames[p.first + k * p.frames_each + j] = cache.faces[path]
    tracker = Tracker("door")
    judge = decide.bind(confirmer)
    ref = FrameRef(None, 640, 360)
    records: list[TrackRecord] = []
    for i, faces in enumerate(frames):
        t = i / FPS
        update = tracker.update(faces, at=t, now=t, frame=ref, embed=lambda crops: _rows(cache, crops), judge=judge)
        records += update.ended
    return records + tracker.flush()


def _rows(cache: Cache, crops: Sequence[ImageBGR]) -> FloatArray:
    return np.stack([cache.live[id(c)] for c in crops])


def score(cache: Cache, records: list[TrackRecord], threshold: float) -> Report:
    spans = [Span(p.index, Kind(p.kind.value), p.person, p.first, p.last) for p in cache.doorway.passes]
    sightings = [
        Sighting(r.track_id, r.person, r.score, round(r.start * FPS), round(r.end * FPS), r.frames, r.looks)
        for r in records
    ]
    return score_run(spans, sightings, threshold, MARGIN)


def upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen ``k`` times in ``n`` (bisection on the binomial)."""
    lo, hi = k / n, 1.0
    for _ in range(50):
        p = (lo + hi) / 2
        cdf = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))
        lo, hi = (p, hi) if cdf > 1 - confidence else (lo, p)
    return hi


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["design", "heldout", "both"], default="design")
    ap.add_argument("--thresholds", default=",".join(map(str, THRESHOLDS)), help="live thresholds to sweep")
    args = ap.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    live = FacePipeline(embedder=load_embedder(LIVE_MODEL))
    photo = FacePipeline(detector=live.detector, embedder=load_embedder(photo_model()))
    sets = [SetName.DESIGN, SetName.HELDOUT] if args.set == "both" else [SetName(args.set)]
    print(
        "| set | live threshold | photo threshold | stranger passes named | 95% upper | enrolled passes missed "
        "| switches | photo looks |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in sets:
        cache = build_cache(name, live, photo)
        for t in thresholds:
            decide = decider(cache, t, live.model, photo.model)
            confirmer = CachedConfirmer(cache.photo, photo.model)
            report = score(cache, replay(cache, decide, confirmer), t)
            assert decide.confirm is not None
            print(
                f"| {name} | {t:.3f} | {decide.confirm.matcher.threshold:.3f} | {report.alarms}/{report.strangers} "
                f"({report.fpir:.2%}) | {upper_bound(report.alarms, report.strangers):.2%} | "
                f"{report.missed}/{report.watchlist} ({report.fnir:.1%}) | {report.switches} | {confirmer.looks} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
