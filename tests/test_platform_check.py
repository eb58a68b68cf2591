"""The console's start-up check names every X11 library Qt's xcb plugin needs and is missing, in one line
(it used to stop with Qt's "Could not load the Qt platform plugin "xcb"", naming no library)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import PySide6
import pytest

from cli.common import CliError
from cli.console import run as console_run
from gui.platform_check import XCB_LIBRARIES, missing_libraries, uses_xcb, xcb_problem
from main import build_parser

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_LIBS = (
    Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so",
    Path(PySide6.__file__).parent / "Qt" / "lib" / "libQt6XcbQpa.so.6",
)
PLAIN_DEBIAN = ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1")


def refusing(*absent: str) -> Callable[[str], object]:
    """The real loader, except that ``absent`` are not installed."""
    import ctypes

    def load(name: str) -> object:
        if name in absent:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return ctypes.CDLL(name)

    return load


def test_every_missing_library_is_named_in_one_line_with_its_package() -> None:
    problem = xcb_problem({"DISPLAY": ":0"}, load=refusing(*PLAIN_DEBIAN), platform="linux")
    assert problem is not None and "\n" not in problem
    for soname in PLAIN_DEBIAN:
        assert soname in problem
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in problem
    assert "libxcb-image" not in problem, "only what is missing is named"


def test_the_console_stops_with_that_line_before_qt_aborts(monkeypatch: pytest.MonkeyPatch) -> None:
    import gui.app

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(gui.app, "xcb_problem", lambda: xcb_problem(load=refusing("libxcb-icccm.so.4")))
    args = build_parser().parse_args(["--gallery", "unused.db"])
    with pytest.raises(CliError, match=r"needs libxcb-icccm\.so\.4, missing .*sudo apt install libxcb-icccm4"):
        console_run(args)


def test_nothing_is_missing_here_and_other_platforms_are_not_checked() -> None:
    assert missing_libraries() == [], "this machine runs the console under Xvfb"
    assert xcb_problem({"DISPLAY": ":0"}, platform="linux") is None
    assert not uses_xcb({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, "linux")
    assert not uses_xcb({}, "linux"), "no display: the console runs offscreen"
    assert not uses_xcb({"DISPLAY": ":0"}, "darwin")
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")


@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd")
def test_the_table_holds_every_x11_library_the_plugin_links() -> None:
    linked: set[str] = set()
    for lib in PLUGIN_LIBS:
        out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, check=True).stdout
        linked |= set(re.findall(r"^\s*(lib(?:xcb|xkb|X11)[^\s]*)", out, re.MULTILINE))
    assert linked and linked <= set(XCB_LIBRARIES), sorted(linked - set(XCB_LIBRARIES))


def test_the_readme_and_the_install_guide_name_them_all() -> None:
    needed = set(XCB_LIBRARIES.values()) - {"libgl1", "libegl1", "libfontconfig1", "libfreetype6", "libx11-6"}
    for doc in (ROOT / "README.md", ROOT / "docs" / "install.md"):
        text = doc.read_text()
        assert {p for p in needed if p not in text} == set(), doc.name
