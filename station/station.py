"""The station, assembled in one place: key, receiver, gallery, recognition, discovery, demo, schedules.

The console and ``main.py headless`` are two faces of this one object (no Qt here). It starts its
parts cheap-first, so an operator's mistake fails in a second with one line (:class:`StationError`)
before any model loads: the station key, the socket, the gallery. Then the slow part, recognition
(the models, or the Ray pool), either now or, for the console, on a background thread while the
window opens. It owns the schedules too (retention runs when the station starts, then every hour,
whichever face it has) and the shutdown order: demo cameras, discovery, recognition (open tracks
become sightings), the Ray pool, the schedules, the receiver, and last the gallery.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from network import keys
from network.addresses import Address
from network.discovery import Browser, DiscoveredSender
from network.udp_receiver import ReceiverConfig, UdpReceiver
from station.alarm_rules import KINDS as ALARM_EVENT_KINDS
from station.alarm_rules import AlarmRules
from station.camera_log import CameraLog
from station.event_bus import EventBus, Subscription
from station.event_feed import EventFeed
from station.lazy_pipeline import LazyPipeline
from station.models import LIVE_MODEL, photo_model
from station.runtime import (
    RAY_ADDRESS,
    FaceFinding,
    LocalFaces,
    PhotoModel,
    Recogniser,
    RecognitionSettings,
    RemoteFaces,
    calibrated_threshold,
)
from station.schedule import Schedule
from station.storage_watch import MB, StorageWatch
from station.stranger_rules import StrangerPolicy, StrangerRules
from storage import locations
from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.gallerykey import KeySpec
from vision.service import default_workers

if TYPE_CHECKING:
    from integrations.service import Integrations
    from vision.pipeline import FacePipeline
    from vision.ray_workers import RayRecognitionPool

log = logging.getLogger(__name__)

DEFAULT_MODEL = LIVE_MODEL
RETENTION_EVERY_S = 3600.0
STORAGE_EVERY_S = 5.0
ESCALATE_EVERY_S = 5.0


class StationError(Exception):
    """The station cannot start (bad key, port in use, unusable gallery, missing model): one line."""


@dataclass(frozen=True)
class StationOptions:
    """How to assemble a station; the CLI and the console each fill one in."""

    gallery: Path
    listen: Address
    key_file: Path | None = None  # None: station.key beside the gallery, created on first run
    gallery_key: KeySpec = field(default_factory=KeySpec)  # the gallery's encryption key (storage.gallerykey)
    actor: str = "station"  # who the audit log names
    recognition: bool = True
    threshold: float | None = None  # None: the gallery's setting, else the model's calibrated one
    max_rate_hz: float | None = None
    min_face_px: float | None = None
    workers: int | None = None
    worker_processes: bool = False  # a process per worker: more frames at many cameras, ~550 MiB each
    ray_address: str | None = None  # None: the gallery's setting; "": local threads
    ray_workers: int = 2
    offline_after_s: float = 3.0
    connect: tuple[Address, ...] = ()
    discover: bool = False  # browse for senders over mDNS
    auto_subscribe: bool = False  # subscribe to every sender discovery finds (headless)
    mdns_interfaces: tuple[str, ...] | None = None
    demo_cameras: int = 0
    demo_people: bool = False  # enrol the demo people into this gallery where it lacks them
    lazy_models: bool = False  # load the models on a background thread (the console)
    retention_every_s: float = RETENTION_EVERY_S
    # The integrations (MQTT, webhooks, the API): the gallery's settings, with these (by setting name) on top.
    integrations: Mapping[str, object] = field(default_factory=dict)
    api_token_file: Path | None = None  # None: api.token beside the gallery
    storage_every_s: float = STORAGE_EVERY_S  # how often the free-space watch measures the disk


DiscoveryListener = Callable[[DiscoveredSender, bool], None]


class Station:
    """The running station; see the module docstring. Use :meth:`start`, then :meth:`stop` (or ``with``)."""

    def __init__(self, options: StationOptions) -> None:
        self.options = options
        self.key_file = options.key_file or locations.default_key(options.gallery)
        self.key = b""
        self.key_created = False
        self.receiver: UdpReceiver | None = None
        self.gallery: Gallery | None = None
        self.pipeline: LazyPipeline | None = None
        self.photo_pipeline: LazyPipeline | None = None  # the photo model (station/models.py), loaded on first use
        self.recogniser: Recogniser | None = None
        self.ray_pool: RayRecognitionPool | None = None
        self.browser: Browser | None = None
        self.schedule = Schedule()
        self.camera_log: CameraLog | None = None
        self.storage: StorageWatch | None = None  # lost writes and free space (station/storage_watch.py)
        self.events = EventBus()  # every event of station/events.py: the console, headless, the integrations
        self.feed = EventFeed(self.events)
        self.alarm_rules: AlarmRules | None = None  # watchlist hits and strangers become alarms
        self._alarm_subscription: Subscription | None = None
        self._demo: list[subprocess.Popen[bytes]] = []
        self._discovery_listeners: list[DiscoveryListener] = []
        self._sighting_listeners: list[Callable[[Any], None]] = []
        self.integrations: Integrations | None = None
        self._started = False

    # ------------------------------------------------------------------ start

    def start(self) -> Station:
        """Start every part, cheap checks first; on a failure stop what started and raise StationError."""
        if self._started:
            raise RuntimeError("the station is already running")
        self._started = True
        try:
            self._open_key()
            self._open_receiver()
            if self.options.recognition:
                self._open_gallery()
                self._log_cameras()
            if self.key_created:  # said once the station is up, so a failing start prints one line
                log.info("created a new station key at %s (mode 0600); give it to your cameras", self.key_file)
            if self.gallery is not None:
                self._watch_storage()
                self._start_alarms()
                self._schedule_retention()
                self._start_recognition()
                self._start_integrations()
            self._start_cameras()
        except BaseException:
            self.stop()
            raise
        return self

    def _open_key(self) -> None:
        try:
            if self.options.key_file is not None:
                self.key = keys.read_key(self.options.key_file)
            else:
                self.key, self.key_created = keys.load_or_create(self.key_file)
        except keys.KeyFileError as exc:
            raise StationError(str(exc)) from None

    def _open_receiver(self) -> None:
        host, port = self.options.listen
        receiver = UdpReceiver(
            self.key, host, port, config=ReceiverConfig(offline_after_s=self.options.offline_after_s)
        )
        self.feed.attach_receiver(receiver)
        try:
            receiver.start()
        except OSError as exc:
            raise StationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self.receiver = receiver

    def _open_gallery(self) -> None:
        path = self.options.gallery
        try:
            self.gallery = Gallery.open(path, actor=self.options.actor, key=self.options.gallery_key)
        except (GalleryError, OSError) as exc:
            raise StationError(str(exc)) from None
        self.feed.attach_gallery(self.gallery)

    def _log_cameras(self) -> None:
        """Every camera that sends a frame goes into the gallery's cameras table (first and last seen)."""
        receiver, gallery = self.receiver, self.gallery
        assert receiver is not None and gallery is not None

        def address_of(camera: str) -> str:
            return next((s.address for s in receiver.stats() if s.camera == camera), "")

        self.camera_log = CameraLog(lambda name, address, at: gallery.note_camera(name, address, at=at), address_of)
        receiver.add_listener(self.camera_log)

    def _watch_storage(self) -> None:
        gallery = self.gallery
        assert gallery is not None
        from station import settings as table

        def margin() -> int:
            values = table.load(gallery.get_setting, DEFAULT_MODEL, ["storage_margin_mb"], strict=False)
            return int(values.number("storage_margin_mb") * MB)

        def alarm(subject: str, text: str) -> None:
            gallery.alarms.raise_system(subject, text)

        self.storage = StorageWatch(gallery, margin, on_alarm=alarm)
        self.schedule.every(self.options.storage_every_s, self.storage.check, name="free space", now=True)

    def _start_alarms(self) -> None:
        """Watchlist hits and strangers become alarms (station/alarm_rules.py), fed by the event bus on a thread
        of their own; unacknowledged alarms escalate on the schedule."""
        gallery = self.gallery
        assert gallery is not None
        strangers = StrangerRules(gallery, lambda: StrangerPolicy.from_gallery(gallery, self._model()))
        self.alarm_rules = AlarmRules(gallery, self._threshold, strangers=strangers)
        self._alarm_subscription = self.events.listen("alarms", self.alarm_rules.on_event, kinds=ALARM_EVENT_KINDS)
        self.schedule.every(ESCALATE_EVERY_S, gallery.alarms.escalate_due, name="alarm escalation", now=True)

    def _model(self) -> str:
        return self.recogniser.model if self.recogniser is not None else DEFAULT_MODEL

    def _threshold(self) -> float:
        """The station's recognition threshold now (the running recogniser's, else the stored setting)."""
        if self.recogniser is not None:
            return self.recogniser.settings.threshold
        assert self.gallery is not None
        from station import settings as table

        return table.load(self.gallery.get_setting, self._model(), ["threshold"], strict=False).number("threshold")

    def _schedule_retention(self) -> None:
        self.schedule.every(self.options.retention_every_s, self.apply_retention, name="retention", now=True)
        self.schedule.start()

    def _ray_address(self) -> str:
        if self.options.ray_address is not None:
            return self.options.ray_address
        assert self.gallery is not None
        return str(self.gallery.get_setting(RAY_ADDRESS, "") or "")

    def _start_recognition(self) -> None:
        assert self.gallery is not None and self.receiver is not None
        from vision.types import VisionError

        address = self._ray_address()
        if address:
            self.ray_pool = self._start_ray(address)
        photo = photo_model()
        if photo != LIVE_MODEL:
            self.photo_pipeline = LazyPipeline(lambda: _load_pipeline(photo), photo)
        self.pipeline = LazyPipeline(_load_pipeline, LIVE_MODEL, on_loaded=self._models_loaded)
        if self.options.lazy_models:
            self.pipeline.preload()
        elif self.ray_pool is None:
            try:
                self.pipeline.get()
            except VisionError as exc:
                raise StationError(str(exc)) from None
        model = self.ray_pool.model if self.ray_pool is not None else self.pipeline.model
        settings = self._settings(model)
        workers = self.options.workers
        if self.ray_pool is not None and workers is None:
            workers = self.ray_pool.config.station_workers  # actors × batch: every actor fed, nothing queued
        finding: FaceFinding = LocalFaces(self.pipeline) if self.ray_pool is None else RemoteFaces(self.ray_pool)
        processes = (workers or default_workers()) if self.options.worker_processes else 0
        confirm = (
            None if self.photo_pipeline is None else PhotoModel(self.photo_pipeline.model, self.photo_pipeline.get)
        )
        self.recogniser = Recogniser(
            self.receiver, self.gallery, finding, settings, workers=workers, processes=processes, photo=confirm
        )
        self.feed.attach_results(self.recogniser.service.add_listener)
        self.recogniser.add_sighting_listener(self.feed.track_listener())
        for listener in self._sighting_listeners:
            self.recogniser.add_sighting_listener(listener)
        self.recogniser.start()

    def _start_integrations(self) -> None:
        """MQTT, webhooks and the API, where the settings (the gallery's, the options' on top) turn them on."""
        assert self.gallery is not None
        from integrations import config as integration_config
        from integrations.service import Integrations, StationServices, camera_rows, enroller
        from station import settings as table
        from station.photos import PhotoIdentifier

        stored = table.load(self.gallery.get_setting, DEFAULT_MODEL, integration_config.NAMES, strict=False)
        for problem in stored.problems:
            log.warning("%s", problem)
        values = {**stored.as_dict(), **{k: v for k, v in self.options.integrations.items() if v is not None}}
        try:
            config = integration_config.config_from(values, token_file=self.options.api_token_file)
            if not config.enabled:
                return
            gallery, receiver, pipeline = self.gallery, self.receiver, self.pipeline
            services = StationServices(
                gallery=gallery,
                bus=self.events,
                key=self.key,
                identify=None if pipeline is None else PhotoIdentifier(gallery, pipeline, self.photo_pipeline).identify,
                enrol=None if pipeline is None else enroller(gallery, pipeline, self.companions),
                cameras=lambda: camera_rows(gallery, None if receiver is None else receiver.stats),
            )
            self.integrations = Integrations(config, services).start()
        except integration_config.IntegrationError as exc:
            raise StationError(str(exc)) from None

    def _start_ray(self, address: str) -> RayRecognitionPool:
        try:
            from vision.ray_workers import RayPoolConfig, RayRecognitionPool, RayUnavailable
        except ImportError as exc:
            raise StationError(f"the Ray back-end needs the ray extra (pip install '.[ray]'): {exc}") from None
        if self.options.ray_workers < 1:
            raise StationError("--ray-workers must be at least 1")
        try:
            pool = RayRecognitionPool(RayPoolConfig(address=address, actors=self.options.ray_workers)).start()
        except RayUnavailable as exc:  # its message names the address where the address matters
            raise StationError(str(exc)) from None
        except ValueError as exc:
            raise StationError(f"Ray cluster {address}: {exc}") from None
        log.info("recognition runs on the Ray cluster at %s (%d actors)", address, self.options.ray_workers)
        return pool

    def _settings(self, model: str) -> RecognitionSettings:
        assert self.gallery is not None
        overrides = {
            "threshold": self.options.threshold,
            "max_rate_hz": self.options.max_rate_hz,
            "min_face_px": self.options.min_face_px,
        }
        try:
            return RecognitionSettings.from_gallery(self.gallery, model, **overrides)
        except GalleryError as exc:
            raise StationError(str(exc)) from None
        except ValueError as exc:
            if any(v is not None for v in overrides.values()):
                raise StationError(str(exc)) from None  # the operator's own value: say so
            log.warning("stored recognition settings are unusable (%s); using the defaults", exc)
            return RecognitionSettings(threshold=calibrated_threshold(model))

    def _models_loaded(self, pipeline: FacePipeline) -> None:
        """Runs once the models are loaded (on the loading thread for the console)."""
        if self.options.demo_people and self.gallery is not None:
            from station.demo import enrol_demo_people

            try:
                enrol_demo_people(self.gallery, pipeline, self.companions)
            except (GalleryError, ValueError) as exc:
                log.warning("demo people not enrolled: %s", exc)

    def _start_cameras(self) -> None:
        assert self.receiver is not None
        for host, port in self.options.connect:
            try:
                self.receiver.subscribe(host, port)
            except ValueError as exc:
                raise StationError(f"--connect {host}:{port}: {exc}") from None
        if self.options.discover:
            try:
                interfaces = list(self.options.mdns_interfaces) if self.options.mdns_interfaces else None
                self.browser = Browser(interfaces=interfaces, on_change=self._discovered)
            except Exception as exc:  # no multicast on this host: manual add still works
                log.warning("LAN discovery is off: %s", exc)
        if self.options.demo_cameras:
            from network.demo_senders import start_demo_senders

            self._demo = start_demo_senders(self.receiver.address, self.key_file, self.options.demo_cameras)

    # --------------------------------------------------------------- running

    @property
    def companions(self) -> tuple[LazyPipeline, ...]:
        """The pipelines whose samples an enrolment stores beside the live model's (the photo model)."""
        return () if self.photo_pipeline is None else (self.photo_pipeline,)

    def add_sighting_listener(self, listener: Callable[[Any], None]) -> None:
        """Call ``listener(track_record)`` for every sighting recorded (also those before this call's recogniser)."""
        self._sighting_listeners = [*self._sighting_listeners, listener]
        if self.recogniser is not None:
            self.recogniser.add_sighting_listener(listener)

    def add_discovery_listener(self, listener: DiscoveryListener) -> None:
        self._discovery_listeners = [*self._discovery_listeners, listener]

    def discovered(self) -> list[DiscoveredSender]:
        return self.browser.senders() if self.browser is not None else []

    def _discovered(self, sender: DiscoveredSender, present: bool) -> None:
        for listener in self._discovery_listeners:
            try:
                listener(sender, present)
            except Exception:
                log.exception("discovery listener failed")
        if present and self.options.auto_subscribe and self.receiver is not None:
            try:
                self.receiver.subscribe(sender.host, sender.port)
            except ValueError as exc:
                log.warning("cannot subscribe to %s at %s: %s", sender.name, sender.address, exc)

    def apply_retention(self) -> object:
        """Delete sightings older than the ``retention.days`` setting (0 or less keeps everything)."""
        gallery = self.gallery
        if gallery is None:
            return None
        from station import settings as table

        days = table.load(gallery.get_setting, DEFAULT_MODEL, ["retention_days"], strict=False).number("retention_days")
        if days <= 0:
            return None
        result = gallery.apply_retention(days)
        log.info("retention (%g days): %s", days, result)
        return result

    # ------------------------------------------------------------------ stop

    def _stop_steps(self) -> list[tuple[str, Callable[[], object]]]:
        """What :meth:`stop` stops, in order: demo cameras, discovery, recognition (open tracks become
        sightings), the Ray pool, the schedules, the receiver, the camera log, the alarm rules, the gallery."""
        steps: list[tuple[str, Callable[[], object]]] = []
        if self._demo:
            from network.demo_senders import stop_demo_senders

            demo, self._demo = self._demo, []
            steps.append(("demo cameras", lambda: stop_demo_senders(demo)))
        if self.browser is not None:
            steps.append(("discovery", self.browser.close))
        if self.recogniser is not None:
            steps.append(("recognition", self.recogniser.stop))  # open tracks become sightings
        if self.integrations is not None:  # after recognition: the last sightings' events are queued first
            steps.append(("integrations", self.integrations.stop))
        if self.ray_pool is not None:
            steps.append(("Ray pool", self.ray_pool.stop))
        steps.append(("schedules", self.schedule.stop))
        if self.receiver is not None:
            steps.append(("receiver", self.receiver.stop))
        if self.camera_log is not None:
            steps.append(("camera log", self.camera_log.close))  # each camera's last frame, exactly
        if self._alarm_subscription is not None:
            sub, self._alarm_subscription = self._alarm_subscription, None
            steps.append(("alarm rules", lambda: self.events.unsubscribe(sub)))  # the last tracks' alarms first
        if self.gallery is not None:
            steps.append(("gallery", self.gallery.close))
        return steps

    def stop(self) -> None:
        """Stop everything that started, in order; each failure is logged and the rest still stop."""
        steps = self._stop_steps()
        self.browser = self.recogniser = self.ray_pool = self.integrations = None
        receiver, gallery = self.receiver, self.gallery
        for what, step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping the %s failed", what)
        self.receiver, self.gallery = receiver, gallery  # still readable (events, stats) after stop

    def __enter__(self) -> Station:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _load_pipeline(model: str = LIVE_MODEL) -> FacePipeline:
    """A local face pipeline for ``model``, warmed up (seconds: the models load)."""
    from vision.embedders import load_embedder
    from vision.pipeline import FacePipeline

    pipeline = FacePipeline(embedder=load_embedder(model))
    pipeline.warm_up()
    return pipeline


def wait_for_models(station: Station, timeout: float | None = None) -> bool:
    """Block until the station's models are loaded (True) or failed/timed out (False); for tests and tools."""
    if station.pipeline is None:
        return False
    return station.pipeline.wait(timeout)
