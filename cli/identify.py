"""``main.py identify PATH...``: who is in these images, one JSON line per image."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cli.common import emit, image_paths, load_pipeline, open_gallery, read_image
from station import settings as table

log = logging.getLogger("facestation")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("identify", parents=[common], help="who is in these images (JSON line per image)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    p.add_argument("--model", help="embedding model (default: the photo model, fusion-640 where dlib is installed)")
    table.add_arguments(p, "threshold")  # checked by the one settings table
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Each face's box, person (or null) and score; the score is null when nobody is enrolled."""
    from station.photos import choose_model, identify_faces, photo_matcher

    gallery = open_gallery(args, "cli")
    try:
        pipeline = load_pipeline(choose_model(gallery, args.model))
        matcher = photo_matcher(gallery, pipeline.model, args.threshold)
        failures = 0
        for path, problem in image_paths(args.paths):
            try:
                if problem is not None:
                    raise ValueError(problem)
                faces = identify_faces(pipeline, matcher, read_image(Path(path)))
            except ValueError as exc:
                failures += 1
                emit({"path": str(path), "faces": [], "error": str(exc)})
                continue
            emit({"path": str(path), "faces": faces})
        return 1 if failures else 0
    finally:
        gallery.close()
