"""The integrations' settings, from the one settings table (station/settings.py: the gallery's values,
with the command line's on top), checked into frozen records; files named there (MQTT credentials,
TLS certificates, webhook secrets) are read at start, each failure one clear line."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from integrations.mqtt import MqttConfig
from integrations.webhook_config import WebhookConfigError, WebhookEndpoint, parse_webhooks
from network.addresses import parse_hostport

log = logging.getLogger(__name__)

# The settings (by name) the integrations read.
NAMES = (
    "mqtt_broker",
    "mqtt_prefix",
    "mqtt_credentials",
    "mqtt_tls",
    "mqtt_discovery",
    "mqtt_crops",
    "webhooks",
    "api_listen",
    "api_tls_cert",
    "api_tls_key",
    "api_max_rate",
    "outbox_max",
)


class IntegrationError(Exception):
    """An integration cannot start as configured: one line naming the setting or file."""


@dataclass(frozen=True)
class ApiConfig:
    host: str
    port: int
    cert: Path | None = None
    key: Path | None = None
    token_file: Path | None = None  # None: api.token beside the gallery
    max_rate: float = 50.0  # requests served per second (integrations/api/app.py Throttle)


@dataclass(frozen=True)
class IntegrationConfig:
    mqtt: MqttConfig | None = None
    webhooks: tuple[WebhookEndpoint, ...] = field(default=())
    api: ApiConfig | None = None
    outbox_max: int = 10_000

    @property
    def enabled(self) -> bool:
        return self.mqtt is not None or bool(self.webhooks) or self.api is not None


def read_credentials(path: Path) -> tuple[str, str]:
    """USERNAME:PASSWORD on the file's first line (or the username and the password on two lines)."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise IntegrationError(f"cannot read the MQTT credentials file {path}: {exc}") from None
    if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("the MQTT credentials file %s is readable by others: chmod 600 it", path)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and ":" in lines[0]:
        user, _, password = lines[0].partition(":")
    elif len(lines) == 2:
        user, password = lines
    else:
        raise IntegrationError(f"the MQTT credentials file {path} must hold USERNAME:PASSWORD on one line")
    if not user:
        raise IntegrationError(f"the MQTT credentials file {path} has an empty username")
    return user, password


def _hostport(text: str, what: str) -> tuple[str, int]:
    try:
        return parse_hostport(text, allow_zero=False)
    except ValueError as exc:
        raise IntegrationError(f"{what}: {exc}") from None


def _mqtt(values: Mapping[str, object]) -> MqttConfig | None:
    broker = str(values.get("mqtt_broker") or "")
    if not broker:
        return None
    host, port = _hostport(broker, "the MQTT broker")
    credentials = str(values.get("mqtt_credentials") or "")
    user, password = read_credentials(Path(credentials)) if credentials else ("", "")
    return MqttConfig(
        host=host,
        port=port,
        prefix=str(values.get("mqtt_prefix") or "facestation"),
        username=user,
        password=password,
        tls=bool(values.get("mqtt_tls")),
        discovery_prefix=str(values.get("mqtt_discovery") or ""),
        crops=bool(values.get("mqtt_crops")),
    )


def _api(values: Mapping[str, object], token_file: Path | None) -> ApiConfig | None:
    listen = str(values.get("api_listen") or "")
    if not listen:
        return None
    host, port = _hostport(listen, "the API address")
    cert, key = str(values.get("api_tls_cert") or ""), str(values.get("api_tls_key") or "")
    rate = values.get("api_max_rate", 50)
    max_rate = float(rate) if isinstance(rate, (int, float)) and rate > 0 else 50.0
    return ApiConfig(host, port, Path(cert) if cert else None, Path(key) if key else None, token_file, max_rate)


def config_from(values: Mapping[str, object], *, token_file: Path | None = None) -> IntegrationConfig:
    """The integrations as ``values`` (by setting name, already checked by the table) configure them."""
    try:
        webhooks = parse_webhooks(str(values.get("webhooks") or ""))
        for endpoint in webhooks:
            endpoint.read_secret()  # a missing secret file is said now, not at the first event
    except WebhookConfigError as exc:
        raise IntegrationError(f"webhooks: {exc}") from None
    outbox_max = values.get("outbox_max", 10_000)
    return IntegrationConfig(
        mqtt=_mqtt(values),
        webhooks=webhooks,
        api=_api(values, token_file),
        outbox_max=int(outbox_max) if isinstance(outbox_max, (int, float)) else 10_000,
    )
