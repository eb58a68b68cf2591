"""The API's bearer tokens: made here, stored hashed in the gallery (storage/tokens.py), checked per call.

A token is ``fst_<station>_<secret>``: ``station`` is this station's id (from its key), so a token
made by another station is refused with a clear 401 rather than a bare "unknown token". The gallery
keeps an HMAC-SHA256 of the token under a key derived from the station key, never the token: a copy
of the gallery alone yields no token, and a token is worthless to a station with another key. The
plain token is shown once: written to a new file of mode 0600 (``--api-token-file``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from storage import private
from storage.errors import GalleryError
from storage.tokens import TokenStore

log = logging.getLogger(__name__)

PREFIX = "fst"
REFRESH_EVERY_S = 1.0  # the stored tokens are re-read at most this often (a revocation counts within it)


class ApiAuthError(Exception):
    """A token (file) that cannot be used: one line saying why."""


def station_id(key: bytes) -> str:
    """A short public id of the station with this key (not a secret: it names the station in tokens and MQTT)."""
    return hashlib.sha256(b"facestation station id\x00" + key).hexdigest()[:12]


def _hash_key(key: bytes) -> bytes:
    return hmac.new(key, b"facestation api tokens", hashlib.sha256).digest()


@dataclass(frozen=True)
class Caller:
    """Who made a call: the token's name (the audit log's actor is ``api:NAME``)."""

    name: str


class TokenAuth:
    """Checks ``Authorization: Bearer …`` against the station's stored tokens (cached in memory)."""

    def __init__(self, store: TokenStore, key: bytes) -> None:
        self.store = store
        self.station = station_id(key)
        self._key = _hash_key(key)
        self._lock = threading.Lock()
        self._known: dict[str, str] = {}  # digest -> name
        self._loaded_at = 0.0

    def digest(self, token: str) -> str:
        return hmac.new(self._key, token.encode("utf-8"), hashlib.sha256).hexdigest()

    def create(self, name: str) -> str:
        """A new token called ``name``: its hash is stored, the token returned (shown once)."""
        token = f"{PREFIX}_{self.station}_{secrets.token_urlsafe(32)}"
        try:
            self.store.add(name, self.digest(token))
        except GalleryError as exc:
            raise ApiAuthError(str(exc)) from None
        self._reload()
        return token

    def _reload(self) -> None:
        tokens = self.store.all()
        with self._lock:
            self._known = {t.digest: t.name for t in tokens}
            self._loaded_at = time.monotonic()

    def check(self, authorization: str | None) -> Caller | str:
        """The caller, or why the header is refused (for a 401)."""
        if not authorization:
            return "an Authorization: Bearer token is required"
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return "the Authorization header must be: Bearer <token>"
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return "not a FaceStation API token"
        if not hmac.compare_digest(parts[1], self.station):
            return "this token belongs to another station"
        digest = self.digest(token)
        with self._lock:
            stale = time.monotonic() - self._loaded_at > REFRESH_EVERY_S
        if stale:  # tokens made or revoked elsewhere (the console, another process) count within a second
            self._reload()
        with self._lock:
            name = self._known.get(digest)
        return "unknown or revoked token" if name is None else Caller(name)

    def ensure_file(self, path: Path, name: str) -> bool:
        """Make sure ``path`` holds one of this station's tokens: a missing file gets a new token (called
        ``name``), written owner-only; True when it was created. A file holding another station's or a
        revoked token is refused (ApiAuthError), and left as it is."""
        if path.exists():
            try:
                token = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ApiAuthError(f"cannot read the API token file {path}: {exc}") from None
            verdict = self.check(f"Bearer {token}")
            if not isinstance(verdict, Caller):
                raise ApiAuthError(f"the API token file {path} does not hold a token of this station ({verdict})")
            return False
        if path.parent and not path.parent.exists():
            private.make_dirs(path.parent)
        if self.store.get(name) is not None:  # its file is gone, and the token with it: replace it
            self.store.revoke(name)
            log.warning("the API token %r had no file any more (%s): it is revoked and replaced", name, path)
        token = self.create(name)
        try:
            with private.open_new(path, "w", encoding="utf-8") as fh:
                fh.write(token + "\n")
        except OSError as exc:
            self.store.revoke(name)
            raise ApiAuthError(f"cannot write the API token file {path}: {exc.strerror}") from None
        log.info("a new API token %r was written to %s (mode 0600)", name, path)
        return True


def token_name_for(path: Path) -> str:
    """The name a token file's token is stored under: the file's name, unique enough per station."""
    return path.name or f"token-{os.getpid()}"
