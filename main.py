"""FaceStation entry point: the console by default, and the subcommands of DESIGN.md's CLI contract.

Each subcommand lives in its own module of cli/ with its arguments and its run; this file builds
the parser from them and dispatches. JSON output goes to stdout, one object per line; logs go to
stderr (and, for the console and ``headless``, to rotating files in the log folder).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from cli import console, encryption, enrol, evaluate, evidence, files, headless, history, identify, keygen, scan
from cli.common import VERSION, CliError, common_options, resolve_gallery

log = logging.getLogger("facestation")


def build_parser() -> argparse.ArgumentParser:
    common = common_options(top_level=False)
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="FaceStation face-recognition control station",
        parents=[common_options(top_level=True)],
    )
    parser.add_argument("--version", action="version", version=f"FaceStation {VERSION}")
    console.add_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    keygen.add_parser(sub, common)
    headless.add_parser(sub, common)
    enrol.add_parser(sub, common)
    identify.add_parser(sub, common)
    history.add_parser(sub, common)
    evaluate.add_parser(sub, common)
    scan.add_parser(sub, common)
    files.add_parsers(sub, common)
    encryption.add_parsers(sub, common)
    evidence.add_parsers(sub, common)
    return parser


def _sender_passthrough(argv: list[str]) -> int | None:
    """``main.py sender ARGS`` (hidden) runs network/udp_sender.py's main: the frozen app has no
    interpreter to run the script with, so its demo cameras start their own binary this way."""
    from network.demo_senders import FROZEN_SENDER_COMMAND

    if argv[:1] != [FROZEN_SENDER_COMMAND]:
        return None
    from network.udp_sender import main as sender_main

    return sender_main(argv[1:])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    sender_status = _sender_passthrough(argv)
    if sender_status is not None:
        return sender_status
    args = build_parser().parse_args(argv)
    from vision.native_logs import quiet_native_logs

    quiet_native_logs(verbose=args.verbose)  # before anything can import TensorFlow
    if not args.verbose:  # FFmpeg's own lines (a corrupt video, an RTSP hiccup) would bury the one clear line
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    resolve_gallery(args)
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from storage.logfiles import file_only, start_file_logging

    log_file = None
    if args.command in (None, "headless"):  # the long-running ones: rotating files in the log folder too
        log_file = start_file_logging(args.command or "console", level=level)
        file_only(
            log_file,
            logging.INFO,
            f"FaceStation {VERSION} {args.command or 'console'} starting, gallery {args.gallery}",
        )
    try:
        if args.command is None:
            return console.run(args)
        return int(args.func(args))
    except CliError as exc:
        print(f"main.py: error: {exc}", file=sys.stderr)
        file_only(log_file, logging.ERROR, f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
