"""Starts the console: builds the real services, hands them to the main window, and stops them.

``--demo`` listens on 127.0.0.1 only, starts two local demo senders that push to it, and browses
for senders on the loopback interface only, so a demo sends nothing off the machine.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from gui.main_window import MainWindow
from gui.services import ConsoleServices, FaceAnalyser, LazyFaceAnalyser
from network import keys, protocol
from network.demo_senders import start_demo_senders, stop_demo_senders
from network.discovery import Browser, DiscoveredSender, local_ipv4_addresses
from network.udp_receiver import ReceiverConfig, UdpReceiver
from station.runtime import RAY_ADDRESS, Recogniser, RecognitionSettings, calibrated_threshold
from storage.errors import GalleryError
from storage.gallery import Gallery
from vision.embedders import DEFAULT_MODEL

log = logging.getLogger(__name__)


class ConsoleError(Exception):
    """The console cannot start (bad key file, port in use): one line for the operator."""


@dataclass(frozen=True)
class ConsoleOptions:
    gallery: Path
    listen: tuple[str, int]
    key_file: Path | None = None
    demo_cameras: int = 0
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


def _load_pipeline() -> FaceAnalyser:
    from vision.pipeline import FacePipeline

    pipeline = FacePipeline()
    pipeline.warm_up()
    return pipeline


def build_services(options: ConsoleOptions) -> tuple[ConsoleServices, list[Callable[[], None]]]:
    """Start the receiver and discovery; returns the services and what stops them, in order."""
    key_file = options.key_file or options.gallery.parent / "station.key"
    try:
        if options.key_file is not None:
            key = keys.read_key(key_file)
        else:
            key, created = keys.load_or_create(key_file)
            if created:
                log.info("created a new station key at %s (mode 0600); give it to your cameras", key_file)
    except keys.KeyFileError as exc:
        raise ConsoleError(str(exc)) from None
    options.gallery.parent.mkdir(parents=True, exist_ok=True)
    try:
        gallery = Gallery.open(options.gallery, actor="console")
    except GalleryError as exc:
        raise ConsoleError(str(exc)) from None
    receiver = UdpReceiver(key, options.listen[0], options.listen[1], config=ReceiverConfig())
    try:
        receiver.start()
    except OSError as exc:
        gallery.close()
        raise ConsoleError(f"cannot listen on {options.listen[0]}:{options.listen[1]}: {exc.strerror}") from None
    faces = LazyFaceAnalyser(_load_pipeline, DEFAULT_MODEL)
    faces.preload()
    try:
        settings = RecognitionSettings.from_gallery(gallery, DEFAULT_MODEL)
    except (ValueError, GalleryError) as exc:
        log.warning("stored recognition settings are unusable (%s); using the defaults", exc)
        settings = RecognitionSettings(threshold=calibrated_threshold(DEFAULT_MODEL))
    ray_address = options.ray_address
    if ray_address is None:
        ray_address = str(gallery.get_setting(RAY_ADDRESS, "") or "")
    pool = None
    if ray_address:
        try:
            from vision.ray_workers import RayPoolConfig, RayRecognitionPool, RayUnavailable
        except ImportError as exc:
            receiver.stop()
            gallery.close()
            raise ConsoleError(f"the Ray back-end needs the ray extra (pip install '.[ray]'): {exc}") from None
        try:
            pool = RayRecognitionPool(RayPoolConfig(address=ray_address, actors=options.ray_workers)).start()
        except (RayUnavailable, ValueError) as exc:
            receiver.stop()
            gallery.close()
            raise ConsoleError(f"Ray cluster {ray_address}: {exc}") from None
        log.info("recognition runs on the Ray cluster at %s (%d actors)", ray_address, options.ray_workers)
    recogniser = Recogniser(
        receiver,
        gallery,
        faces,
        settings,
        workers=pool.config.station_workers if pool is not None else None,
        frame_analyser=pool,
    ).start()
    # Stopped in this order: recognition flushes open tracks into the gallery before it closes.
    stops: list[Callable[[], None]] = [recogniser.stop, receiver.stop, gallery.close]
    if pool is not None:
        stops.insert(1, pool.stop)
    discovered: Callable[[], list[DiscoveredSender]] = list
    try:
        browser = Browser(interfaces=list(options.mdns_interfaces) if options.mdns_interfaces else None)
    except Exception as exc:  # no multicast on this host: manual add still works
        log.warning("LAN discovery is off: %s", exc)
    else:
        stops.insert(0, browser.close)
        discovered = browser.senders
    host, port = receiver.address
    services = ConsoleServices(
        receiver=receiver,
        discovered=discovered,
        key_hex=protocol.encode_key(key),
        key_file=key_file,
        advertised_address=_advertised(options.listen, port),
        gallery=gallery,
        faces=faces,
        cameras=lambda: [c.name for c in gallery.cameras()],
        recogniser=recogniser,
    )
    if options.demo_cameras:
        procs = start_demo_senders((host, port), key_file, options.demo_cameras)
        stops.insert(0, lambda: stop_demo_senders(procs))
    return services, stops


def _choose_platform() -> None:
    """With no display at all (a server, CI, an SSH session) run offscreen instead of aborting."""
    if sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM"):
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            log.warning("no display (DISPLAY and WAYLAND_DISPLAY are unset): the console runs offscreen")
            os.environ["QT_QPA_PLATFORM"] = "offscreen"


def run_console(options: ConsoleOptions, argv: list[str] | None = None) -> int:
    _choose_platform()
    app = QApplication.instance() or QApplication(argv or ["facestation"])
    assert isinstance(app, QApplication)
    app.setApplicationName("FaceStation")
    try:
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
