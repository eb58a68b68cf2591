"""The local API's bearer tokens as the gallery keeps them: a name and a keyed hash of the token, never
the token itself (the API, integrations/api/auth.py, makes and checks them); and the audit of every API
call under its token's name (actor ``api:NAME``), queued so a request never waits for the writer."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage import audit, token_rows
from storage.codec import check_text
from storage.errors import GalleryError
from storage.gallery import Gallery


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    digest: str
    created: float
    last_used: float | None


def _token(row: Sequence[Any]) -> ApiToken:
    return ApiToken(int(row[0]), str(row[1]), str(row[2]), float(row[3]), None if row[4] is None else float(row[4]))


class TokenStore:
    """The tokens of one gallery (one station)."""

    def __init__(self, gallery: Gallery) -> None:
        self.gallery = gallery

    def add(self, name: str, digest: str) -> ApiToken:
        """Store a new token's hash under ``name`` (refused when the name is taken). Audited."""
        token_name = check_text(name, "token name", max_len=100)
        if not digest or len(digest) > 200:
            raise GalleryError("a token digest is 1..200 characters")

        def run(conn: sqlite3.Connection) -> ApiToken:
            if token_rows.by_name(conn, token_name) is not None:
                raise GalleryError(f"there is already an API token named {token_name!r}")
            created = time.time()
            tid = token_rows.insert(conn, token_name, digest, created)
            audit.record(conn, self.gallery.actor, "api_token_created", {"name": token_name, "token_id": tid})
            return ApiToken(tid, token_name, digest, created, None)

        token = self.gallery.write(run, "API token")
        assert token is not None
        return token

    def get(self, name: str) -> ApiToken | None:
        row = self.gallery.read(lambda conn: token_rows.by_name(conn, name))
        return None if row is None else _token(row)

    def all(self) -> list[ApiToken]:
        return [_token(r) for r in self.gallery.read(token_rows.all_tokens)]

    def revoke(self, name: str) -> bool:
        """Delete the token called ``name``; False when there was none. Audited."""

        def run(conn: sqlite3.Connection) -> bool:
            gone = token_rows.delete(conn, name) > 0
            if gone:
                audit.record(conn, self.gallery.actor, "api_token_revoked", {"name": name})
            return gone

        return bool(self.gallery.write(run, "API token revoke"))

    def record_call(self, name: str, details: dict[str, Any]) -> None:
        """Audit one API call under its token's name (queued: the caller does not wait for the commit)."""
        now = time.time()

        def run(conn: sqlite3.Connection) -> None:
            audit.record(conn, f"api:{name}", "api_call", details)
            token_rows.used(conn, [(now, name)])

        self.gallery.write(run, "API call audit", wait=False)
