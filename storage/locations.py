"""Where the station keeps its files: the gallery, the station key and the logs.

Run from a checkout, everything stays in the checkout's ``data/`` as before. Installed (the frozen
app, or a plain ``pip install``), the binary's folder may be read-only and is replaced on upgrade,
so the files live in the user's data directory instead:

- Linux and other Unixes: ``$XDG_DATA_HOME/facestation``, else ``~/.local/share/facestation``;
- Windows: ``%LOCALAPPDATA%\\FaceStation``;
- macOS: ``~/Library/Application Support/FaceStation``.

The logs go in ``logs/`` inside that folder (one folder to find, back up or wipe), unless
``FACESTATION_LOG_DIR`` names another. No Qt and no vision here: the CLI, the console and the tests
all ask this module.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

APP_DIR_UNIX = "facestation"
APP_DIR_WINDOWS_MAC = "FaceStation"
GALLERY_FILE = "gallery.db"
KEY_FILE = "station.key"
GALLERY_KEY_FILE = "gallery.key"
SIGNING_KEY_FILE = "signing.key"
LOG_DIR_ENV = "FACESTATION_LOG_DIR"

# storage/ sits in the project root, beside main.py and pyproject.toml, in a checkout.
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def is_frozen() -> bool:
    """True inside the PyInstaller app."""
    return bool(getattr(sys, "frozen", False))


def in_checkout() -> bool:
    """True when running from a source checkout (not frozen, and main.py's pyproject.toml is beside us)."""
    return not is_frozen() and (_PROJECT_ROOT / "pyproject.toml").is_file() and (_PROJECT_ROOT / "main.py").is_file()


def user_data_dir(platform: str | None = None, environ: dict[str, str] | None = None) -> Path:
    """The per-user data folder for FaceStation on ``platform`` (default: this one). Not created here."""
    platform = sys.platform if platform is None else platform
    env = dict(os.environ) if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    if platform.startswith("win"):
        base = env.get("LOCALAPPDATA") or str(Path(env.get("USERPROFILE") or home) / "AppData" / "Local")
        return Path(base) / APP_DIR_WINDOWS_MAC
    if platform == "darwin":
        return home / "Library" / "Application Support" / APP_DIR_WINDOWS_MAC
    xdg = env.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative $XDG_DATA_HOME is invalid and must be ignored.
    base_dir = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base_dir / APP_DIR_UNIX


def data_dir() -> Path:
    """The checkout's ``data/`` when run from source, else the user's data folder. Not created here."""
    return _PROJECT_ROOT / "data" if in_checkout() else user_data_dir()


def default_gallery() -> Path:
    return data_dir() / GALLERY_FILE


def demo_gallery() -> Path:
    """The demo's own gallery (``--demo`` without ``--gallery``), so a demo never mixes into the real one."""
    return data_dir() / "demo" / GALLERY_FILE


def default_key(gallery: Path | None = None) -> Path:
    """The station key lives beside the gallery it goes with."""
    return (default_gallery() if gallery is None else Path(gallery)).parent / KEY_FILE


def default_gallery_key(gallery: Path | None = None) -> Path:
    """The gallery's encryption key (storage.gallerykey) lives beside it, and beside the station key; it is
    not the station key, which the cameras hold too."""
    return (default_gallery() if gallery is None else Path(gallery)).parent / GALLERY_KEY_FILE


def default_signing_key(gallery: Path | None = None) -> Path:
    """The station's Ed25519 evidence signing key (storage.signing), beside the gallery it signs for."""
    return (default_gallery() if gallery is None else Path(gallery)).parent / SIGNING_KEY_FILE


def log_dir() -> Path:
    """``$FACESTATION_LOG_DIR`` if set, else ``logs/`` in the data folder. Not created here."""
    override = os.environ.get(LOG_DIR_ENV, "")
    return Path(override) if override else data_dir() / "logs"


def station_folders() -> list[Path]:
    """The folders that are the station's own (the data folder, the user data folder and their log
    folders): storage.private tightens these to 0700. A folder the operator named is not among them."""
    return [d / sub for d in (data_dir(), user_data_dir()) for sub in ("", "logs")]


@dataclass(frozen=True)
class Locations:
    """The paths a running station uses, for display (console About box) and ``main.py paths``."""

    gallery: Path
    key: Path
    logs: Path
    data_dir: Path
    frozen: bool

    def as_json(self) -> dict[str, str | bool]:
        return {
            "gallery": str(self.gallery),
            "key": str(self.key),
            "logs": str(self.logs),
            "data_dir": str(self.data_dir),
            "frozen": self.frozen,
        }


def locations(gallery: Path | None = None, key_file: Path | None = None) -> Locations:
    """The paths in use: the defaults, or the gallery and key the operator named."""
    g = default_gallery() if gallery is None else Path(gallery)
    k = default_key(g) if key_file is None else Path(key_file)
    return Locations(
        gallery=g.absolute(), key=k.absolute(), logs=log_dir().absolute(), data_dir=data_dir(), frozen=is_frozen()
    )


def describe(gallery: Path | None = None, key_file: Path | None = None) -> dict[str, str]:
    """Label to path, ready to show in the console: Gallery, Station key, Logs, Data folder, Frozen app."""
    loc = locations(gallery, key_file)
    return {
        "Gallery": str(loc.gallery),
        "Station key": str(loc.key),
        "Logs": str(loc.logs),
        "Data folder": str(loc.data_dir),
        "Frozen app": "yes" if loc.frozen else "no",
    }
