"""``main.py enrol``: faces from image files or folders for one person (``--name``), or a whole roster
(``--folders DIR``, one subfolder per person), with the models loaded once (station/roster.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.common import CliError, emit, load_pipeline, open_gallery

if TYPE_CHECKING:
    from station.roster import RosterSummary
    from storage.gallery import Gallery


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("enrol", parents=[common], help="enrol faces from image files or folders, or a roster")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--name", help="the person's name (created if new)")
    who.add_argument(
        "--folders", metavar="DIR", help="a roster: each subfolder of DIR is one person, named after the folder"
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="image files or folders of images (with --name)")
    p.add_argument(
        "--model",
        help="store samples of this model only (default: the live model facenet-512 and the photo model fusion-640)",
    )
    p.add_argument("--min-face", type=float, default=40.0, metavar="PX", help="refuse faces smaller than this")
    p.add_argument(
        "--watchlist",
        action="append",
        default=[],
        metavar="NAME",
        help="put the enrolled person (with --folders: everyone) on this watchlist, created if new; repeatable",
    )
    p.set_defaults(func=run)


def _progress_bar(total: int, what: str) -> Any:
    """A progress bar on stderr when it is a terminal (tqdm), else None."""
    if not sys.stderr.isatty() or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="photo", desc=what, file=sys.stderr, leave=False)


Entry = tuple[str, list[Path], list[tuple[str, str]], tuple[str, ...]]  # name, files, problems, watchlists


def _entries(args: argparse.Namespace) -> list[Entry]:
    """Who to enrol from which files, checked before any model loads (CliError for a bad command line)."""
    from station.roster import RosterError, list_images, read_roster
    from storage.errors import GalleryError
    from storage.watchlists import check_name

    try:
        extra = tuple(check_name(w) for w in args.watchlist)
    except GalleryError as exc:
        raise CliError(f"--watchlist: {exc}") from None
    if args.folders is not None and args.paths:
        raise CliError("--folders takes the roster folder alone; give PATHs only with --name")
    if args.min_face <= 0:
        raise CliError("--min-face must be positive")
    if args.name is None:
        try:
            roster = read_roster(Path(args.folders))
        except RosterError as exc:
            raise CliError(str(exc)) from None
        return [(e.name, list(e.files), list(e.problems), (*e.watchlists, *extra)) for e in roster]
    name = args.name.strip()
    if not name:
        raise CliError("--name must not be empty")
    if not args.paths:
        raise CliError("--name needs at least one PATH (an image or a folder of images)")
    files, problems = list_images(Path(p) for p in args.paths)
    return [(name, files, problems, extra)]


def run(args: argparse.Namespace) -> int:
    entries = _entries(args)
    gallery = open_gallery(args, "cli")
    try:
        summary = _enrol_all(args, gallery, entries)
        if args.folders is not None:
            emit(summary.as_json())
        return 0 if summary.enrolled else 1
    finally:
        gallery.close()


def _enrol_all(args: argparse.Namespace, gallery: Gallery, entries: list[Entry]) -> RosterSummary:
    """Load the models once and enrol each person, a JSON line each; returns the RosterSummary."""
    from station.models import enrolment_models
    from station.roster import RosterSummary, enrol_person
    from vision.quality import QualityLimits

    pipeline = load_pipeline(args.model)
    others = [] if args.model else enrolment_models()[1:]  # the photo model, beside the live one
    companions = [load_pipeline(m, detector=pipeline.detector) for m in others]
    limits = QualityLimits(min_face=args.min_face)
    bar = _progress_bar(sum(len(f) for _, f, _, _ in entries), "enrolling")
    summary = RosterSummary()
    try:
        for name, files, problems, lists in entries:
            if bar is not None:
                bar.set_postfix_str(name, refresh=False)
            result = enrol_person(
                gallery,
                pipeline,
                name,
                files,
                limits=limits,
                problems=problems,
                progress=(lambda _p: bar.update(1)) if bar is not None else None,
                companions=companions,
                watchlists=lists,
            )
            summary.add(result)
            emit(result.as_json())
    finally:
        if bar is not None:
            bar.close()
    return summary
