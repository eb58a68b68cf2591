"""``main.py identify PATH...``: who is in these images, one JSON line per image."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import emit, image_paths, load_pipeline, open_gallery, read_image
from station import settings as table


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("identify", parents=[common], help="who is in these images (JSON line per image)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    p.add_argument("--model", help="embedding model (default facenet-512)")
    table.add_arguments(p, "threshold")  # checked by the one settings table
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Each face's box, person (or null) and score; the score is null when nobody is enrolled."""
    from station.runtime import RecognitionSettings
    from vision.matcher import NO_SCORE, Matcher

    gallery = open_gallery(args, "cli")
    try:
        pipeline = load_pipeline(args.model)
        settings = RecognitionSettings.from_gallery(gallery, pipeline.model, threshold=args.threshold)
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
                            "score": None if m.score <= NO_SCORE else round(float(m.score), 4),
                        }
                        for f, m in zip(faces, matches, strict=True)
                    ],
                }
            )
        return 1 if failures else 0
    finally:
        gallery.close()
