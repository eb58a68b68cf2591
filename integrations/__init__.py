"""The station in its ecosystem: MQTT (with Home Assistant discovery), signed webhooks, the durable
outbox's deliverers, and the local HTTP API. Fed by the station's event bus (station/events.py); no Qt."""
