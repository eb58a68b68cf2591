"""Rotating log files for the long-running station processes (the console and headless).

It lives in storage/ beside locations.py because both answer "which files does the station keep on
disk, and where": the gallery, the key, and these logs. Stderr logging stays as it is; this adds a
file, so an operator who never saw the terminal can still read when a camera went offline and why.
The receiver logs one INFO line per camera state change ("camera X online at ...", "camera X
offline (reason)") and every failing step at ERROR, so the file holds those without extra calls.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from storage.locations import log_dir

MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 5
FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


def start_file_logging(
    name: str,
    directory: Path | None = None,
    *,
    level: int = logging.INFO,
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
) -> logging.Handler | None:
    """Add ``<directory>/<name>.log`` (rotated at ``max_bytes``, ``backups`` old files kept) to the root logger.

    ``directory`` defaults to :func:`storage.locations.log_dir`. A folder that cannot be made or a file
    that cannot be opened is reported as one line on stderr and the process goes on without a file:
    logging must never be the reason a station does not start. Returns the handler, or None.
    """
    folder = log_dir() if directory is None else Path(directory)
    path = folder / f"{name}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=False
        )
    except OSError as exc:
        print(f"warning: no log file: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return None
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    return handler


def file_only(handler: logging.Handler | None, level: int, message: str, logger: str = "facestation") -> None:
    """Write one record to the log file only: for lines the CLI already printed on stderr its own way."""
    if handler is None:
        return
    record = logging.getLogger(logger).makeRecord(logger, level, "(cli)", 0, message, (), None)
    if record.levelno >= handler.level:
        handler.handle(record)


def stop_file_logging(handler: logging.Handler | None) -> None:
    """Detach and close the handler (tests and in-process callers; a process exit does this anyway)."""
    if handler is None:
        return
    logging.getLogger().removeHandler(handler)
    handler.close()
