"""``main.py scan FILE...``: recorded footage through the live engine, as fast as the CPU allows.

Sighting lines as ``headless`` prints them (times from ``--start``, or each file's modification
time, plus the frame's offset), then one ``scan`` line per file; a progress bar on stderr when it
is a terminal. The sightings go into the gallery, so History searches them like any camera's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli.common import CliError, emit, load_pipeline, open_gallery
from cli.headless import print_sighting
from station import settings as table


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("scan", parents=[common], help="recorded footage through the live engine (sighting lines)")
    p.add_argument("files", nargs="+", metavar="FILE", help="video files")
    p.add_argument("--camera", metavar="NAME", help="camera name for the sightings (default: each file's name)")
    p.add_argument("--start", metavar="ISO", help="when the footage starts (default: the file's modification time)")
    p.add_argument("--fps", type=float, default=15.0, help="frames analysed per second of footage (0: every frame)")
    table.add_arguments(p, "threshold")  # checked by the one settings table
    p.add_argument("--workers", type=int, default=2, metavar="N", help="detection threads (default 2)")
    p.set_defaults(func=run)


class _Progress:
    """A progress bar on stderr when it is a terminal (whole percents), nothing otherwise."""

    def __init__(self, path: Path) -> None:
        self._bar: Any = None
        self._shown = 0
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=100, unit="%", desc=path.name, file=sys.stderr, leave=False)

    def __call__(self, done: float) -> None:
        if self._bar is not None and int(done * 100) > self._shown:
            self._bar.update(int(done * 100) - self._shown)
            self._shown = int(done * 100)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _checked(args: argparse.Namespace) -> tuple[list[Path], float | None]:
    """The files and the start time the flags give; CliError naming the first bad one."""
    from storage.errors import GalleryError
    from storage.timeutil import parse_iso

    if args.fps < 0 or args.fps > 240:
        raise CliError("--fps must be 0..240 (0 analyses every frame)")
    if args.workers < 1 or args.workers > 16:
        raise CliError("--workers must be 1..16")
    start = None
    if args.start is not None:
        try:
            start = parse_iso(args.start, "--start")
        except (GalleryError, ValueError) as exc:
            raise CliError(str(exc)) from None
    paths = [Path(f) for f in args.files]
    for path in paths:
        if not path.is_file():
            raise CliError(f"no video file at {path}")
    return paths, start


def run(args: argparse.Namespace) -> int:
    from station.models import photo_model
    from station.runtime import PhotoModel, RecognitionSettings
    from station.scan import ScanError, scan_file

    paths, start = _checked(args)
    gallery = open_gallery(args, "scan")
    failures = 0
    try:
        pipeline = load_pipeline()
        photo = None
        if photo_model() != pipeline.model:  # names are confirmed by the photo model, as live
            photo_pipeline = load_pipeline(photo_model(), detector=pipeline.detector)
            photo = PhotoModel(photo_pipeline.model, lambda: photo_pipeline)
        try:
            settings = RecognitionSettings.from_gallery(gallery, pipeline.model, threshold=args.threshold)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        offset = 0.0
        for path in paths:
            progress = _Progress(path)
            try:
                summary = scan_file(
                    path,
                    pipeline=pipeline,
                    gallery=gallery,
                    settings=settings,
                    camera=args.camera,
                    start=None if start is None else start + offset,
                    fps=args.fps,
                    workers=args.workers,
                    on_sighting=print_sighting,
                    progress=progress,
                    photo=photo,
                )
            except ScanError as exc:
                failures += 1
                print(f"main.py: {path}: {exc}", file=sys.stderr)
                continue
            finally:
                progress.close()
            emit(summary.as_json())
            offset += summary.duration_s  # several files with one --start: one after the other
        return 1 if failures else 0
    finally:
        gallery.close()
