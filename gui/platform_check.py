"""Can Qt's X11 (xcb) platform plugin load here? Checked before the console's QApplication exists.

PySide6 bundles Qt, but its xcb plugin links the system's X11 and xcb libraries. Without one of them Qt
stops with "Could not load the Qt platform plugin "xcb"", which does not say which library is missing, and a
plain Debian desktop lacks some (``libxcb-cursor0``, ``libxcb-icccm4``, ``libxcb-keysyms1``). This module
names every library the plugin needs and, with the Debian package that ships it, every one that is missing,
in one line. No PySide6 import here: it runs before Qt is loaded.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

# What PySide6's xcb plugin (plugins/platforms/libqxcb.so and lib/libQt6XcbQpa.so.6) links from the system,
# with the Debian/Ubuntu package of each. A test checks this against the plugin's own dependencies (ldd).
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
}

Loader = Callable[[str], object]


def _load(name: str) -> object:
    return ctypes.CDLL(name)


def missing_libraries(load: Loader = _load, names: Mapping[str, str] = XCB_LIBRARIES) -> list[str]:
    """The libraries of ``names`` that the dynamic loader cannot load here, in the table's order."""
    missing = []
    for soname in names:
        try:
            load(soname)
        except OSError:
            missing.append(soname)
    return missing


def missing_line(missing: list[str], names: Mapping[str, str] = XCB_LIBRARIES) -> str:
    """One line for the operator: what is missing and the command that installs it."""
    packages = " ".join(dict.fromkeys(names.get(m, m) for m in missing))
    return (
        f"the console cannot open a window: Qt's X11 (xcb) platform plugin needs {', '.join(missing)}, "
        f"missing on this system; install them (Debian/Ubuntu: sudo apt install {packages}), "
        "or run main.py headless"
    )


def uses_xcb(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Will Qt pick its xcb plugin? On Linux with an X display, unless another platform is asked for."""
    if not platform.startswith("linux"):
        return False
    asked = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if asked:
        return asked == "xcb"
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland":
        return False  # Qt 6 opens a Wayland session's windows with its wayland plugin
    return bool(env.get("DISPLAY"))


def xcb_problem(env: Mapping[str, str] | None = None, load: Loader = _load, platform: str = sys.platform) -> str | None:
    """None when the console can start on this display; else the one line that says what is missing."""
    if not uses_xcb(os.environ if env is None else env, platform):
        return None
    missing = missing_libraries(load)
    return missing_line(missing) if missing else None
