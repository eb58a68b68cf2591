"""Webhooks: each event the endpoint's filters let through is POSTed to it as the event's JSON
(station/events.py ``to_json``), signed, through the durable outbox, by a deliverer of its own.

Headers: ``X-FaceStation-Timestamp`` (Unix seconds when sent) and ``X-FaceStation-Signature``
(``sha256=`` and the hex HMAC-SHA256, under the endpoint's secret, of the timestamp, a ".", and the
body bytes: the receiver recomputes it and refuses a stale timestamp, so a captured request cannot be
replayed later), ``X-FaceStation-Event`` (the kind) and ``X-FaceStation-Delivery`` (the outbox id: the
same on a retry, so a receiver can drop a duplicate). A 2xx answer is delivered; a timeout, a refused
connection, a 5xx, 408 or 429 is retried with exponential backoff (the entry keeps its place); any
other 4xx is the endpoint refusing that event for good: logged and not retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from integrations.delivery import Backoff, Deliverer, Outcome
from integrations.webhook_config import WebhookEndpoint
from station.event_bus import EventBus, Subscription
from station.events import Event, event_camera, event_person, is_watchlist
from storage.errors import GalleryError
from storage.outbox import Outbox, OutboxEntry, OutboxItem

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-FaceStation-Signature"
TIMESTAMP_HEADER = "X-FaceStation-Timestamp"
EVENT_HEADER = "X-FaceStation-Event"
DELIVERY_HEADER = "X-FaceStation-Delivery"
RETRIED_STATUSES = frozenset({408, 425, 429})
USER_AGENT = "FaceStation-webhooks/1"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``timestamp`` + "." + ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, header: str, *, max_age_s: float = 300.0) -> bool:
    """What a receiver does (and the tests): the signature matches and the timestamp is recent."""
    try:
        age = abs(time.time() - float(timestamp))
    except ValueError:
        return False
    return age <= max_age_s and hmac.compare_digest(signature(secret, timestamp, body), header)


def wants(endpoint: WebhookEndpoint, event: Event) -> bool:
    """Whether ``event`` passes every filter of ``endpoint`` (an empty filter passes everything)."""
    if endpoint.events and event.kind not in endpoint.events:
        return False
    if endpoint.cameras and event_camera(event) not in endpoint.cameras:
        return False
    if endpoint.persons:
        person = event_person(event)
        if person is None or person.casefold() not in endpoint.persons:
            return False
    return not endpoint.watchlist_only or is_watchlist(event)


class WebhookSender:
    """POSTs one endpoint's entries in order; stops at the first that must be retried."""

    def __init__(self, endpoint: WebhookEndpoint, secret: bytes) -> None:
        self.endpoint = endpoint
        self.secret = secret
        self.refused = 0
        # No proxies from the environment: an endpoint is reached directly, as configured.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __call__(self, entries: Sequence[OutboxEntry]) -> Outcome:
        done: list[int] = []
        for entry in entries:
            error = self._post(entry)
            if error is not None:
                return Outcome(tuple(done), error)
            done.append(entry.id)
        return Outcome(tuple(done))

    def _request(self, entry: OutboxEntry) -> urllib.request.Request:
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: stamp,
            EVENT_HEADER: entry.kind,
            DELIVERY_HEADER: str(entry.id),
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, stamp, entry.payload)
        return urllib.request.Request(self.endpoint.url, data=entry.payload, headers=headers, method="POST")

    def _post(self, entry: OutboxEntry) -> str | None:
        """None when delivered (or refused for good); else why it must be retried."""
        try:
            with self._opener.open(self._request(entry), timeout=self.endpoint.timeout_s) as response:
                response.read(64 * 1024)
            return None
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code >= 500 or exc.code in RETRIED_STATUSES:
                return f"the endpoint answered {exc.code} {exc.reason}"
            self.refused += 1
            log.warning(
                "webhook %s refused event %s (%s) with %d %s: not retried",
                self.endpoint.name,
                entry.id,
                entry.kind,
                exc.code,
                exc.reason,
            )
            return None
        except TimeoutError:
            return f"no answer within {self.endpoint.timeout_s:g} s"
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            return f"cannot reach {self.endpoint.url}: {reason}"


class Webhooks:
    """Every endpoint's queue in the outbox and its deliverer; fed by the bus on a thread of its own."""

    def __init__(self, endpoints: Sequence[WebhookEndpoint], outbox: Outbox, *, backoff_cap_s: float = 30.0) -> None:
        self.endpoints = tuple(endpoints)
        self.outbox = outbox
        self.deliverers: list[Deliverer] = []
        self._subscription: Subscription | None = None
        self._bus: EventBus | None = None
        for ep in self.endpoints:
            secret = ep.read_secret()
            if not secret:
                log.warning("webhook %s has no secret: its requests go unsigned", ep.name)
            sender = WebhookSender(ep, secret)
            self.deliverers.append(
                Deliverer(
                    outbox, ep.destination, sender, label=f"webhook {ep.name}", backoff=Backoff(cap=backoff_cap_s)
                )
            )

    def start(self, bus: EventBus) -> Webhooks:
        for d in self.deliverers:
            d.start()
        self._bus = bus
        self._subscription = bus.listen("webhooks", self.enqueue, capacity=5000)
        return self

    def enqueue(self, event: Event) -> None:
        """Put ``event`` in the outbox for every endpoint that wants it (committed before this returns)."""
        chosen = [ep for ep in self.endpoints if wants(ep, event)]
        if not chosen:
            return
        body = json.dumps(event.to_json(), separators=(",", ":")).encode("utf-8")
        person = event_person(event) or ""
        items = [
            OutboxItem(ep.destination, str(event.kind), body, camera=event_camera(event), person=person)
            for ep in chosen
        ]
        try:
            self.outbox.put(items)
        except GalleryError as exc:
            log.error("webhooks: event %s (%s) not queued: %s", event.seq, event.kind, exc)

    def stop(self, timeout: float = 5.0) -> None:
        """Queue what the bus still holds, then stop the deliverers (what is undelivered stays queued)."""
        if self._bus is not None and self._subscription is not None:
            self._bus.unsubscribe(self._subscription, timeout)
        for d in self.deliverers:
            d.stop(timeout)
