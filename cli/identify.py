"""``main.py identify PATH...``: who is in these images, one JSON line per image."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from cli.common import emit, image_paths, load_pipeline, open_gallery, read_image
from station import settings as table

log = logging.getLogger("facestation")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("identify", parents=[common], help="who is in these images (JSON line per image)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    p.add_argument("--model", help="embedding model (default: the photo model, fusion-640 where dlib is installed)")
    table.add_arguments(p, "threshold")  # checked by the one settings table
    p.set_defaults(func=run)


def choose_model(gallery: Any, asked: str | None) -> str:
    """The model to identify with: the one asked for, else the photo model where the gallery has samples of
    it, else the live model (a gallery enrolled before fusion-640, or named from live clusters only)."""
    from station.models import LIVE_MODEL, photo_model

    if asked:
        return asked
    photo = photo_model()
    if photo == LIVE_MODEL:
        return photo
    photo_people = set(gallery.sample_matrix(photo).names)
    live_people = set(gallery.sample_matrix(LIVE_MODEL).names)
    if not photo_people and live_people:
        log.warning("no %s samples in this gallery: identifying with %s (enrol again to store both)", photo, LIVE_MODEL)
        return LIVE_MODEL
    missing = sorted(live_people - photo_people)
    if missing:
        log.warning(
            "%d enrolled people have no %s sample and cannot be found in photos (%s%s): enrol a photo of them",
            len(missing),
            photo,
            ", ".join(missing[:3]),
            "…" if len(missing) > 3 else "",
        )
    return photo


def photo_settings(gallery: Any, model: str, threshold: float | None) -> Any:
    """The decision for photos: the gallery's recognition threshold is the live model's, so another
    model uses its own calibrated threshold and margin; ``--threshold`` overrides either."""
    from station.models import LIVE_MODEL
    from station.runtime import RecognitionSettings

    if model == LIVE_MODEL:
        return RecognitionSettings.from_gallery(gallery, model, threshold=threshold)
    base = RecognitionSettings.for_model(model)
    return base if threshold is None else RecognitionSettings(threshold=threshold, margin=base.margin)


def run(args: argparse.Namespace) -> int:
    """Each face's box, person (or null) and score; the score is null when nobody is enrolled."""
    from vision.matcher import Matcher

    gallery = open_gallery(args, "cli")
    try:
        pipeline = load_pipeline(choose_model(gallery, args.model))
        settings = photo_settings(gallery, pipeline.model, args.threshold)
        matcher = Matcher.from_matrices(
            pipeline.model,
            gallery.sample_matrix(pipeline.model),
            gallery.negative_matrix(pipeline.model),
            threshold=settings.threshold,
            margin=settings.margin,
        )
        failures = 0
        for path, problem in image_paths(args.paths):
            try:
                if problem is not None:
                    raise ValueError(problem)
                faces = pipeline.observe(read_image(Path(path)))
            except ValueError as exc:
                failures += 1
                emit({"path": str(path), "faces": [], "error": str(exc)})
                continue
            matches = matcher.match([f.embedding for f in faces], model=pipeline.model) if faces else []
            emit(
                {
                    "path": str(path),
                    "faces": [
                        {
                            "box": [round(float(v), 1) for v in f.detection.box],
                            "person": m.person,
                            "score": None if m.score is None else round(m.score, 4),
                        }
                        for f, m in zip(faces, matches, strict=True)
                    ],
                }
            )
        return 1 if failures else 0
    finally:
        gallery.close()
