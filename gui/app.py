"""Starts the console: assembles the station (station/station.py), hands its parts to the main window, stops it.

The console and ``main.py headless`` are two faces of one Qt-free :class:`station.station.Station`:
the same key, receiver, gallery, recogniser, discovery, demo cameras, schedules and shutdown
order. Here the models load on a background thread, so the window opens at once.
``--demo`` listens on 127.0.0.1 only, starts two local demo senders that push to it, browses for
senders on the loopback interface only (a demo sends nothing off the machine), and enrols the demo
people into the gallery where it lacks them.
"""

from __future__ import annotations

import getpass
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit, QMessageBox

from gui.main_window import MainWindow
from gui.platform_check import xcb_problem
from gui.services import ConsoleServices
from network import protocol
from network.discovery import local_ipv4_addresses
from station.station import Station, StationError, StationOptions
from storage.gallerykey import KeySpec, needs_passphrase

log = logging.getLogger(__name__)


class ConsoleError(Exception):
    """The console cannot start (bad key file, port in use): one line for the operator."""


@dataclass(frozen=True)
class ConsoleOptions:
    gallery: Path
    listen: tuple[str, int]
    key_file: Path | None = None
    gallery_key: KeySpec = field(default_factory=KeySpec)  # the gallery's encryption key (storage.gallerykey)
    ask_passphrase: bool = False  # ask for the gallery's passphrase even where a key file could serve
    demo_cameras: int = 0
    demo_people: bool = False  # enrol the demo people into the gallery where it lacks them
    mdns_interfaces: tuple[str, ...] | None = None  # None: all interfaces
    offscreen_quit_after_s: float | None = None  # for smoke tests
    ray_address: str | None = None  # None: the gallery's setting; "" or unset there: local threads
    ray_workers: int = 2
    extra_cleanup: list[Callable[[], None]] = field(default_factory=list)


def _advertised(listen: tuple[str, int], port: int) -> tuple[str, int]:
    host = listen[0]
    if host in ("0.0.0.0", ""):
        addresses = [a for a in local_ipv4_addresses() if not a.startswith("127.")]
        host = addresses[0] if addresses else "127.0.0.1"
    return host, port


def build_services(options: ConsoleOptions) -> tuple[ConsoleServices, list[Callable[[], None]]]:
    """Start the station; returns the services the window needs and what stops them."""
    station = Station(
        StationOptions(
            gallery=options.gallery,
            listen=options.listen,
            key_file=options.key_file,
            gallery_key=options.gallery_key,
            actor="console",
            ray_address=options.ray_address,
            ray_workers=options.ray_workers,
            discover=True,
            mdns_interfaces=options.mdns_interfaces,
            demo_cameras=options.demo_cameras,
            demo_people=options.demo_people,
            lazy_models=True,
        )
    )
    try:
        station.start()
    except StationError as exc:
        raise ConsoleError(str(exc)) from None
    receiver, gallery = station.receiver, station.gallery
    assert receiver is not None and gallery is not None
    services = ConsoleServices(
        receiver=receiver,
        discovered=station.discovered,
        key_hex=protocol.encode_key(station.key),
        key_file=station.key_file,
        advertised_address=_advertised(options.listen, receiver.address[1]),
        gallery=gallery,
        faces=station.pipeline,
        cameras=lambda: [c.name for c in gallery.cameras()],
        recogniser=station.recogniser,
        retention=station.apply_retention,
        companions=station.companions,
        events=station.events,
        storage=None if station.storage is None else station.storage.status,
        operator=operator_name(),
    )
    return services, [station.stop, *options.extra_cleanup]


def operator_name() -> str:
    """Who acknowledges alarms from this console: the desktop user at this PC (two consoles tell apart)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "operator"
    return f"{user}@{socket.gethostname()}"


def _choose_platform() -> None:
    """With no display at all (a server, CI, an SSH session) run offscreen instead of aborting."""
    if sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM"):
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            log.warning("no display (DISPLAY and WAYLAND_DISPLAY are unset): the console runs offscreen")
            os.environ["QT_QPA_PLATFORM"] = "offscreen"


def ask_passphrase(options: ConsoleOptions) -> ConsoleOptions:
    """The options with the passphrase the operator types, where the gallery needs one (encrypted with a
    passphrase and no key file beside it) or ``--ask-passphrase`` asked for it. Offscreen nobody can type:
    the missing key is then reported as one line like everywhere else."""
    wanted = options.ask_passphrase or needs_passphrase(options.gallery, options.gallery_key)
    if not wanted or QGuiApplication.platformName() in ("offscreen", "minimal"):
        return options
    text, ok = QInputDialog.getText(
        None,
        "FaceStation: encrypted gallery",
        f"Passphrase for the gallery {options.gallery}:",
        QLineEdit.EchoMode.Password,
    )
    if not ok or not text:
        raise ConsoleError(f"no passphrase given: the encrypted gallery {options.gallery} was not opened")
    return replace(options, gallery_key=replace(options.gallery_key, passphrase=text, key_file=None))


def run_console(options: ConsoleOptions, argv: list[str] | None = None) -> int:
    _choose_platform()
    problem = xcb_problem()  # before Qt aborts with a line that names no library
    if problem is not None:
        raise ConsoleError(problem)
    app = QApplication.instance() or QApplication(argv or ["facestation"])
    assert isinstance(app, QApplication)
    app.setApplicationName("FaceStation")
    try:
        options = ask_passphrase(options)
        services, stops = build_services(options)
    except ConsoleError as exc:
        if QGuiApplication.platformName() not in ("offscreen", "minimal"):  # nobody could close it there
            QMessageBox.critical(None, "FaceStation cannot start", str(exc))
        raise
    window = MainWindow(services)
    window.show()
    # Ctrl-C in the terminal closes the window like the Quit action (Qt would otherwise swallow it).
    signal.signal(signal.SIGINT, lambda *_: window.close())
    signal.signal(signal.SIGTERM, lambda *_: window.close())
    wake = QTimer()
    wake.timeout.connect(lambda: None)  # lets Python run signal handlers while Qt's loop sleeps
    wake.start(200)
    if options.offscreen_quit_after_s is not None:
        QTimer.singleShot(round(options.offscreen_quit_after_s * 1000), window.close)
    try:
        return int(app.exec())
    finally:
        wake.stop()
        for stop in stops:
            try:
                stop()
            except Exception:
                log.exception("stopping a service failed")
