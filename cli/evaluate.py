"""``main.py evaluate lfw|identification``: accuracy on a benchmark, from the raw photos, one JSON object.

Both measure through the project's own detection, alignment and embedding, with the photo model by
default (station/models.py): ``lfw`` the 1:1 verification protocol (vision/lfw.py), ``identification``
the open-set 1:N protocol of a watchlist (vision/identification.py: FNIR and FPIR at the shipped
operating point, FNIR at FPIR 1% and 0.1%, and the DET curve as an SVG).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import CliError, emit
from station import settings as table
from station.models import photo_model


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("evaluate", parents=[common], help="measure accuracy on a benchmark (lfw)")
    bench = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    q = bench.add_parser("lfw", parents=[common], help="LFW verification pairs, from the raw photos")
    q.add_argument("--pairs", required=True, metavar="FILE", help="LFW pairs.txt (10 folds, or one)")
    q.add_argument("--images", required=True, metavar="DIR", help="folder of NAME/NAME_NNNN.jpg photos")
    q.add_argument("--model", help="embedding model (default: the photo model; facenet-512, dlib-128, fusion-640, …)")
    q.set_defaults(func=run_lfw)
    q = bench.add_parser("identification", parents=[common], help="open-set 1:N: FNIR and FPIR of a watchlist")
    q.add_argument("directory", metavar="DIR", help="one folder of photos per person (the watchlist)")
    q.add_argument("--enrol", type=int, required=True, metavar="N", help="enrol the first N photos of each person")
    q.add_argument(
        "--strangers", metavar="DIR2", help="photos of people never enrolled (default: people left out of DIR in turn)"
    )
    q.add_argument("--det", metavar="FILE.svg", help="also draw the DET curve (FNIR against FPIR, log axes)")
    q.add_argument("--model", help="embedding model (default: the photo model)")
    table.add_arguments(q, "threshold")
    q.set_defaults(func=run_identification)


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
        result = evaluate(pairs, images, model=args.model or photo_model())
    except (PairsError, VisionError) as exc:
        raise CliError(str(exc)) from None
    emit(result.as_json())
    return 0


def run_identification(args: argparse.Namespace) -> int:
    """The open-set protocol on DIR (and DIR2); ``--det`` writes the DET curve beside the JSON."""
    directory = Path(args.directory)
    strangers = Path(args.strangers) if args.strangers else None
    if not directory.is_dir():
        raise CliError(f"{directory} is not a folder of person folders")
    if strangers is not None and not strangers.is_dir():
        raise CliError(f"--strangers: {strangers} is not a folder")
    det = Path(args.det) if args.det else None
    if det is not None and not det.parent.is_dir():
        raise CliError(f"--det: no folder {det.parent} to write the DET curve in")
    from vision.det_svg import result_svg
    from vision.identification import ProtocolError, evaluate_identification
    from vision.types import VisionError

    try:
        result = evaluate_identification(
            directory, args.enrol, strangers, model=args.model or photo_model(), threshold=args.threshold
        )
    except (ProtocolError, VisionError) as exc:
        raise CliError(str(exc)) from None
    if det is not None:
        try:
            det.write_text(result_svg(result), encoding="utf-8")
        except OSError as exc:
            raise CliError(f"--det: cannot write {det}: {exc.strerror}") from None
    emit(result.as_json())
    return 0
