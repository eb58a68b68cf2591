"""``main.py keygen FILE``: a new random station key, owner-only."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import CliError, emit


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("keygen", parents=[common], help="write a new random station key (mode 0600)")
    p.add_argument("file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from network import keys

    try:
        keys.write_new_key(Path(args.file))
    except keys.KeyFileError as exc:
        raise CliError(str(exc)) from None
    emit({"event": "keygen", "file": str(args.file), "mode": "0600"})
    return 0
