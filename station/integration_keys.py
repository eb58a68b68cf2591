"""The keys and value checks of the integration settings (MQTT, webhooks, the API), for the one settings
table in station/settings.py; no imports of the integrations themselves until a value is checked."""

from __future__ import annotations

from typing import Final

INTEGRATIONS = "Integrations"  # the Settings dialog's page
MQTT_BROKER: Final = "integrations.mqtt.broker"
MQTT_PREFIX: Final = "integrations.mqtt.prefix"
MQTT_CREDENTIALS: Final = "integrations.mqtt.credentials"
MQTT_TLS: Final = "integrations.mqtt.tls"
MQTT_DISCOVERY: Final = "integrations.mqtt.discovery_prefix"
MQTT_CROPS: Final = "integrations.mqtt.crops"
WEBHOOKS: Final = "integrations.webhooks"
API_LISTEN: Final = "integrations.api.listen"
API_TLS_CERT: Final = "integrations.api.tls_cert"
API_TLS_KEY: Final = "integrations.api.tls_key"
API_MAX_RATE: Final = "integrations.api.max_requests_per_s"
OUTBOX_MAX: Final = "integrations.outbox.max_per_destination"


def path_problem(text: str) -> str | None:
    return None if text.isprintable() and len(text) <= 4096 else "must be a file's path"


def topic_problem(text: str) -> str | None:
    """An MQTT topic prefix: one or more levels, no wildcards, no empty level."""
    if not text or len(text) > 200 or any(c in text for c in "+#\0") or "" in text.split("/") or not text.isprintable():
        return "must be a topic like facestation or site/facestation (no + or #, no empty level)"
    return None


def discovery_problem(text: str) -> str | None:
    return None if not text else topic_problem(text)


def webhooks_problem(text: str) -> str | None:
    from integrations.webhook_config import WebhookConfigError, parse_webhooks

    try:
        parse_webhooks(text)
    except WebhookConfigError as exc:
        return f"are not valid: {exc}"
    return None
