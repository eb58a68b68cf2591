"""Rotating log files for the long-running station processes (the console and headless).

It lives in storage/ beside locations.py because both answer "which files does the station keep on
disk, and where": the gallery, the key, and these logs. Stderr logging stays as it is; this adds a
file, so an operator who never saw the terminal can still read when a camera went offline and why.
The receiver logs one INFO line per camera state change ("camera X online at ...", "camera X
offline (reason)") and every failing step at ERROR, so the file holds those without extra calls.

The lines carry people's names, so the files are owner-only (storage.private): each log file, the rotated
ones included, is 0600 and a log folder the station creates 0700, whatever the umask.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import sys
from pathlib import Path

from storage import locations, private

MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 5
FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files are created (and, when they exist, tightened to) 0600."""

    def _open(self) -> io.TextIOWrapper:
        path = Path(self.baseFilename)
        private.create_file(path)
        private.tighten([path])
        stream = open(path, self.mode, encoding=self.encoding, errors=self.errors)  # noqa: SIM115
        assert isinstance(stream, io.TextIOWrapper)  # a text mode, as the base class opens it
        return stream


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
    folder = locations.log_dir() if directory is None else Path(directory)
    path = folder / f"{name}.log"
    try:
        private.make_dirs(folder)
        own = folder.resolve() in {f.resolve() for f in locations.station_folders()}
        older = [path.with_name(f"{path.name}.{i}") for i in range(1, backups + 1)]
        tightened = private.tighten([path, *older, *([folder] if own else [])])
        handler = PrivateRotatingFileHandler(
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
    if tightened:
        logging.getLogger(__name__).info("log files made owner-only: %s", ", ".join(map(str, tightened)))
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
