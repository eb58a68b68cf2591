"""Webhook endpoints as the settings table stores them: a JSON list, one object per endpoint.

    [{"name": "pager", "url": "https://hooks.example/fs", "secret": "…" | "secret_file": "/etc/fs/pager.secret",
      "events": ["watchlist_hit"], "persons": ["Ann"], "cameras": ["door"], "watchlist_only": false,
      "timeout_s": 5}]

Only ``url`` is required. The filters are ANDed; an empty (or missing) list lets everything through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from station.events import EventKind

MAX_ENDPOINTS = 50
MAX_TIMEOUT_S = 60.0
DEFAULT_TIMEOUT_S = 5.0
_KEYS = frozenset(
    {"name", "url", "secret", "secret_file", "events", "persons", "cameras", "watchlist_only", "timeout_s"}
)


class WebhookConfigError(ValueError):
    """The webhooks setting (or a secret file) cannot be used; the message says which endpoint and why."""


@dataclass(frozen=True)
class WebhookEndpoint:
    name: str
    url: str
    secret: str = ""
    secret_file: str = ""
    events: frozenset[EventKind] = frozenset()
    persons: frozenset[str] = frozenset()  # casefolded
    cameras: frozenset[str] = frozenset()
    watchlist_only: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def destination(self) -> str:
        """The endpoint's key in the outbox."""
        return f"webhook:{self.name}"

    def read_secret(self) -> bytes:
        """The signing secret: given inline, or the first line of ``secret_file``; b"" when none."""
        if self.secret:
            return self.secret.encode("utf-8")
        if not self.secret_file:
            return b""
        try:
            text = Path(self.secret_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            message = f"webhook {self.name}: cannot read its secret file {self.secret_file}: {exc}"
            raise WebhookConfigError(message) from None
        if not text:
            raise WebhookConfigError(f"webhook {self.name}: its secret file {self.secret_file} is empty")
        return text.splitlines()[0].encode("utf-8")


def _strings(value: object, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise WebhookConfigError(f"{what} must be a list of names")
    return [v.strip() for v in value]


def _kinds(value: object, where: str) -> frozenset[EventKind]:
    names = _strings(value, f"{where}: events")
    known = {k.value for k in EventKind}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise WebhookConfigError(f"{where}: unknown event {unknown[0]!r} (events are {', '.join(sorted(known))})")
    return frozenset(EventKind(n) for n in names)


def _url(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WebhookConfigError(f"{where} needs a url")
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookConfigError(f"{where}: the url must be http:// or https:// with a host (it is {url!r})")
    return url


def _timeout(value: object, where: str) -> float:
    if value is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT_S:
        raise WebhookConfigError(f"{where}: timeout_s must be a number of seconds, more than 0 and at most 60")
    return float(value)


def endpoint(raw: object, index: int) -> WebhookEndpoint:
    """One endpoint object, checked; the message names it by its position (and url)."""
    where = f"webhook {index + 1}"
    if not isinstance(raw, dict):
        raise WebhookConfigError(f"{where} must be an object with a url")
    extra = sorted(set(raw) - _KEYS)
    if extra:
        raise WebhookConfigError(f"{where}: unknown field {extra[0]!r} (fields are {', '.join(sorted(_KEYS))})")
    url = _url(raw.get("url"), where)
    name = raw.get("name", url)
    if not isinstance(name, str) or not name.strip() or not name.isprintable() or len(name) > 200:
        raise WebhookConfigError(f"{where}: name must be printable text")
    secret, secret_file = raw.get("secret", ""), raw.get("secret_file", "")
    if not isinstance(secret, str) or not isinstance(secret_file, str):
        raise WebhookConfigError(f"{where}: secret and secret_file must be text")
    if not isinstance(raw.get("watchlist_only", False), bool):
        raise WebhookConfigError(f"{where}: watchlist_only must be true or false")
    return WebhookEndpoint(
        name=name.strip(),
        url=url,
        secret=secret,
        secret_file=secret_file,
        events=_kinds(raw.get("events"), where),
        persons=frozenset(p.casefold() for p in _strings(raw.get("persons"), f"{where}: persons")),
        cameras=frozenset(_strings(raw.get("cameras"), f"{where}: cameras")),
        watchlist_only=bool(raw.get("watchlist_only", False)),
        timeout_s=_timeout(raw.get("timeout_s"), where),
    )


def parse_webhooks(text: str) -> tuple[WebhookEndpoint, ...]:
    """The endpoints of the setting's JSON text ("" or "[]": none); WebhookConfigError says what is wrong."""
    if not text.strip():
        return ()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise WebhookConfigError(f"not JSON ({exc})") from None
    if not isinstance(raw, list):
        raise WebhookConfigError("must be a JSON list of endpoints")
    if len(raw) > MAX_ENDPOINTS:
        raise WebhookConfigError(f"at most {MAX_ENDPOINTS} endpoints")
    endpoints = tuple(endpoint(r, i) for i, r in enumerate(raw))
    names = [e.name.casefold() for e in endpoints]
    if len(set(names)) != len(names):
        raise WebhookConfigError("two endpoints have the same name (or url): give each a name of its own")
    return endpoints


def to_text(endpoints: tuple[WebhookEndpoint, ...]) -> str:
    """The setting's JSON text for ``endpoints`` (what --webhook on the command line amounts to)."""
    out = []
    for e in endpoints:
        item: dict[str, object] = {"name": e.name, "url": e.url}
        if e.secret:
            item["secret"] = e.secret
        if e.secret_file:
            item["secret_file"] = e.secret_file
        if e.events:
            item["events"] = sorted(str(k) for k in e.events)
        if e.persons:
            item["persons"] = sorted(e.persons)
        if e.cameras:
            item["cameras"] = sorted(e.cameras)
        if e.watchlist_only:
            item["watchlist_only"] = True
        if e.timeout_s != DEFAULT_TIMEOUT_S:
            item["timeout_s"] = e.timeout_s
        out.append(item)
    return json.dumps(out)
