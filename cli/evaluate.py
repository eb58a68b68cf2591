"""``main.py evaluate lfw``: accuracy on a benchmark, from the raw photos, one JSON object."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import CliError, emit


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("evaluate", parents=[common], help="measure accuracy on a benchmark (lfw)")
    bench = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    q = bench.add_parser("lfw", parents=[common], help="LFW verification pairs, from the raw photos")
    q.add_argument("--pairs", required=True, metavar="FILE", help="LFW pairs.txt (10 folds, or one)")
    q.add_argument("--images", required=True, metavar="DIR", help="folder of NAME/NAME_NNNN.jpg photos")
    q.add_argument("--model", default="facenet-512", help="embedding model (facenet-512, dlib-128, vggface2-2048)")
    q.set_defaults(func=run_lfw)


def run_lfw(args: argparse.Namespace) -> int:
    """LFW verification (vision/lfw.py has the protocol)."""
    pairs, images = Path(args.pairs), Path(args.images)
    if not pairs.is_file():
        raise CliError(f"--pairs: {pairs} is not a file")
    if not images.is_dir():
        raise CliError(f"--images: {images} is not a folder")
    try:
        from vision.lfw import PairsError, evaluate
        from vision.types import VisionError
    except ImportError as exc:
        raise CliError(f"evaluate needs the station extra (pip install '.[station]'): {exc}") from None
    try:
        result = evaluate(pairs, images, model=args.model)
    except (PairsError, VisionError) as exc:
        raise CliError(str(exc)) from None
    emit(result.as_json())
    return 0
