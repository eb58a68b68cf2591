"""Owner-only files. The gallery holds biometric data about real people, so what the station writes that
carries faces or names (the gallery with its WAL and SHM, backups, exports, log files) is created mode
0600, and every folder the station creates 0700, whatever the umask.

An existing file is tightened (group and other bits cleared) when the station opens it. An existing folder
is tightened only when it is the station's own (:func:`storage.locations.station_folders`: the checkout's
``data/``, the user data folder, the default log folder in it). A folder the operator named (``/tmp``, a
home folder, a share) may hold other things, and who else may list it is the operator's choice: it is left
as it is.

On Windows a new file takes the access list of its folder and chmod only sets the read-only flag, so
nothing here changes modes there.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700
_POSIX = os.name == "posix"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and any missing parents, each 0700; returns those it created, outermost first."""
    missing: list[Path] = []
    p = Path(folder)
    while not p.exists() and not p.is_symlink() and p != p.parent:
        missing.append(p)
        p = p.parent
    created = []
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs, not ours to chmod
        if _POSIX:
            d.chmod(DIR_MODE)  # mkdir's mode passes through the umask
        created.append(d)
    return created


def create_file(path: Path) -> bool:
    """Create an empty owner-only file at ``path`` unless one exists; True when it was created here."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, FILE_MODE)
    except FileExistsError:
        return False
    try:
        if _POSIX:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def open_new(path: Path, mode: str = "wb", **kwargs: Any) -> IO[Any]:
    """Open ``path`` for writing, truncated, owner-only (a file left there before is tightened first)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"open_new writes new files only, not mode {mode!r}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | _BINARY, FILE_MODE)
    try:
        if _POSIX:
            os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def tighten(paths: Iterable[Path]) -> list[Path]:
    """Clear the group and other bits of those ``paths`` that exist and have any; returns the ones changed.
    A path that cannot be changed (another user's file) is left and not returned."""
    changed: list[Path] = []
    if not _POSIX:
        return changed
    for p in paths:
        try:
            st = os.stat(p, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o077:
            continue
        try:
            os.chmod(p, stat.S_IMODE(st.st_mode) & 0o700)
        except OSError:
            continue
        changed.append(Path(p))
    return changed


def is_private(path: Path) -> bool:
    """No group or other permission bits (always True where modes do not apply)."""
    return not _POSIX or not os.stat(path).st_mode & 0o077
