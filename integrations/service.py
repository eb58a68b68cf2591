"""The integrations of one running station, started and stopped together: the outbox, the MQTT bridge,
the webhooks and the local API, each only where its settings turn it on (all off by default).

The station (station/station.py) starts them once its gallery is open and stops them after
recognition (so the last sightings' events are queued) and before the gallery closes. A setting that
cannot be used stops the start with one line (IntegrationError); a destination that is down does not:
its events wait in the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integrations.api.app import ApiContext, Enrol, Identify, Throttle, build_app
from integrations.api.auth import ApiAuthError, TokenAuth, station_id, token_name_for
from integrations.api.server import ApiServer, ApiServerError
from integrations.config import IntegrationConfig, IntegrationError
from integrations.mqtt import MqttBridge
from integrations.webhooks import Webhooks
from station.event_bus import EventBus, Subscription
from station.events import Event, EventKind, GalleryEvent
from storage.gallery import Gallery
from storage.outbox import Outbox
from storage.tokens import TokenStore

log = logging.getLogger(__name__)

DEFAULT_TOKEN_FILE = "api.token"


@dataclass(frozen=True)
class StationServices:
    """What the integrations use of the station."""

    gallery: Gallery
    bus: EventBus
    key: bytes
    identify: Identify | None = None
    enrol: Enrol | None = None
    cameras: Callable[[], list[dict[str, Any]]] = list


class Integrations:
    def __init__(self, config: IntegrationConfig, services: StationServices) -> None:
        self.config = config
        self.services = services
        self.station = station_id(services.key)
        self.outbox = Outbox(services.gallery, max_per_destination=config.outbox_max)
        self.webhooks: Webhooks | None = None
        self.mqtt: MqttBridge | None = None
        self.api: ApiServer | None = None
        self.token_file: Path | None = None
        self._erasure: Subscription | None = None

    def start(self) -> Integrations:
        """Start what the settings turn on; IntegrationError (with everything stopped again) if one cannot."""
        try:
            self._erasure = self.services.bus.listen("outbox-erasure", self._erase, kinds=[EventKind.PERSON_DELETED])
            if self.config.webhooks:
                self.webhooks = Webhooks(self.config.webhooks, self.outbox).start(self.services.bus)
            if self.config.mqtt is not None:
                bridge = MqttBridge(self.config.mqtt, self.outbox, self.services.gallery, self.station)
                self.mqtt = bridge.start(self.services.bus)
            if self.config.api is not None:
                self.api = self._start_api()
        except (ApiAuthError, ApiServerError) as exc:
            self.stop()
            raise IntegrationError(str(exc)) from None
        except BaseException:
            self.stop()
            raise
        return self

    def _start_api(self) -> ApiServer:
        api = self.config.api
        assert api is not None
        gallery = self.services.gallery
        tokens = TokenStore(gallery)
        auth = TokenAuth(tokens, self.services.key)
        self.token_file = api.token_file or gallery.path.parent / DEFAULT_TOKEN_FILE
        auth.ensure_file(self.token_file, token_name_for(self.token_file))
        context = ApiContext(
            gallery=gallery,
            bus=self.services.bus,
            auth=auth,
            tokens=tokens,
            identify=self.services.identify,
            enrol=self.services.enrol,
            cameras=self.services.cameras,
            health=self.health,
            throttle=Throttle(api.max_rate),
        )
        return ApiServer(build_app(context), api.host, api.port, cert=api.cert, key=api.key).start()

    def _erase(self, event: Event) -> None:
        """A person deleted: what the outbox still owes about them goes too (the news of the deletion stays)."""
        if isinstance(event, GalleryEvent) and event.person:
            gone = self.outbox.forget_person(event.person)
            if gone:
                log.info("the outbox erased %d undelivered entries about a deleted person", gone)

    def health(self) -> dict[str, Any]:
        """The station's integrations at a glance (``GET /api/health``)."""
        counts = self.outbox.counts()
        out: dict[str, Any] = {
            "station": self.station,
            "recognition": self.services.identify is not None,
            "outbox": {d: {"pending": c.pending, "dropped": c.dropped} for d, c in counts.items()},
        }
        if self.mqtt is not None:
            out["mqtt"] = "connected" if self.mqtt.link.connected.is_set() else "reconnecting"
        if self.webhooks is not None:
            out["webhooks"] = {d.label: "failing" if d.failing else "ok" for d in self.webhooks.deliverers}
        return out

    def stop(self) -> None:
        """Stop the API, then queue what the bus still holds and stop the deliverers (undelivered stays queued)."""
        for what, part in (("API", self.api), ("MQTT", self.mqtt), ("webhooks", self.webhooks)):
            if part is None:
                continue
            try:
                part.stop()
            except Exception:
                log.exception("stopping the %s failed", what)
        self.api = self.mqtt = self.webhooks = None
        if self._erasure is not None:
            self.services.bus.unsubscribe(self._erasure)
            self._erasure = None


# ---------------------------------------------------------------- from a running station


def camera_rows(gallery: Gallery, stats: Callable[[], list[Any]] | None) -> list[dict[str, Any]]:
    """Every camera the gallery remembers, with whether it is online now and its frame rate (from the receiver)."""
    from station.events import iso

    live = {s.camera: s for s in stats()} if stats is not None else {}
    rows = []
    for cam in gallery.cameras():
        now = live.get(cam.name)
        rows.append(
            {
                "name": cam.name,
                "address": cam.address,
                "first_seen": iso(cam.first_seen),
                "last_seen": iso(max(cam.last_seen, now.last_seen if now is not None else 0.0)),
                "online": bool(now is not None and now.online),
                "fps": None if now is None else round(now.fps, 2),
            }
        )
    return rows


def enroller(gallery: Gallery, pipeline: Any, companions: tuple[Any, ...]) -> Enrol:
    """``POST /api/persons/{name}/samples``: the same enrolment as ``main.py enrol`` (station/roster.py)."""
    from station.roster import enrol_image, person_samples
    from vision.quality import QualityLimits

    def enrol(name: str, image: Any, source: str) -> dict[str, Any]:
        sample = enrol_image(gallery, pipeline, name, image, source, limits=QualityLimits(), companions=companions)
        models = [pipeline.model, *(c.model for c in companions if c.model != pipeline.model)]
        return {"sample_id": sample, "samples": person_samples(gallery, name, pipeline.model), "models": models}

    return enrol
