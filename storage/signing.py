"""The station's Ed25519 evidence signing key: made once (``signing.key`` beside the gallery by default,
owner-only, 64 hex digits of the private key), used to sign every evidence manifest. Its public half is
printed by ``main.py keygen --show-public`` so that a court or a colleague can verify an export without
the station; its fingerprint (the first 16 bytes of the public key's SHA-256) names it in manifests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from storage import secretfiles
from storage.errors import GalleryError

WHAT = "evidence signing key"
PUBLIC_BYTES = 32


def fingerprint(public: bytes) -> str:
    """``SHA256:`` and the first 16 bytes of the public key's SHA-256, in groups of four hex digits."""
    digest = hashlib.sha256(public).hexdigest()[:32]
    return "SHA256:" + ":".join(digest[i : i + 4] for i in range(0, 32, 4))


@dataclass(frozen=True)
class SigningKey:
    """The station's signing key, loaded."""

    path: Path
    private: Ed25519PrivateKey = field(repr=False)

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def load(path: Path) -> SigningKey:
    """The signing key at ``path`` (refused when missing, malformed or readable by others)."""
    raw = secretfiles.read_hex(path, WHAT, 32)
    return SigningKey(path, Ed25519PrivateKey.from_private_bytes(raw))


def load_or_create(path: Path) -> tuple[SigningKey, bool]:
    """The signing key at ``path``, made (owner-only, once) when there is none yet; and whether it was made."""
    if path.exists() or path.is_symlink():
        return load(path), False
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    secretfiles.write_new(path, (raw.hex() + "\n").encode("ascii"), WHAT)
    return SigningKey(path, key), True


def parse_public(text: str) -> bytes:
    """A public key given as 64 hex digits (as ``keygen --show-public`` prints it)."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise GalleryError("a public key is 64 hex digits (as main.py keygen --show-public prints it)") from None
    if len(raw) != PUBLIC_BYTES:
        raise GalleryError(f"a public key is {PUBLIC_BYTES * 2} hex digits, not {len(raw) * 2}")
    return raw


def verify(public: bytes, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is ``public``'s Ed25519 signature of ``data``."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True
