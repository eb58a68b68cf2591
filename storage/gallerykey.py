"""Where a gallery's encryption key comes from: the one place that turns what the operator gave (a key file,
a passphrase, or nothing: the default key file beside the gallery) into the raw key SQLCipher is keyed with.

- **Key file** (the default): 32 random bytes as 64 hex digits, mode 0600, ``gallery.key`` beside the
  gallery (storage.locations.default_gallery_key), or the file ``--gallery-key`` names. Made when a new
  gallery is created (or ``main.py encrypt`` runs) and none is there yet; refused when others may read it.
- **Passphrase** (typed at the console, or a file for headless): stretched once with scrypt and the
  gallery's own salt (the first 16 bytes of an encrypted file; a new file gets a random one), so the
  derivation is paid once per process, never per connection.

The result, a :class:`GalleryKey`, is frozen and picklable: a worker process that opens the gallery is handed
it (``Gallery.key``) and derives nothing. Lose the key (or the passphrase) and the gallery cannot be read.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from storage import locations, secretfiles
from storage.errors import GalleryError

KEY_BYTES = 32
SALT_BYTES = 16
KEY_FILE_WHAT = "gallery key file"
PASSPHRASE_WHAT = "passphrase file"
# scrypt at N=2^15, r=8: 32 MiB and about 0.15 s here, once per process.
_SCRYPT = {"n": 2**15, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024}


@dataclass(frozen=True)
class GalleryKey:
    """The raw SQLCipher key of one gallery. ``salt`` is set for a passphrase key (the salt it was derived
    with, which a new file must be created with); ``source`` names where it came from, for messages."""

    raw: bytes = field(repr=False)
    salt: bytes | None = field(default=None, repr=False)
    source: str = "key"

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_BYTES or (self.salt is not None and len(self.salt) != SALT_BYTES):
            raise GalleryError(f"a gallery key is {KEY_BYTES} bytes (and a salt {SALT_BYTES})")

    def hex(self) -> str:
        """The key as SQLCipher's raw-key hex (with the salt appended when there is one)."""
        return self.raw.hex() + (self.salt.hex() if self.salt is not None else "")


@dataclass(frozen=True)
class KeySpec:
    """How the operator said to unlock the gallery. Nothing set: the default key file beside it.
    ``plain``: a gallery created now is left unencrypted (benchmarks, tests of the file itself)."""

    key_file: Path | None = None
    passphrase: str | None = field(default=None, repr=False)
    passphrase_file: Path | None = None
    plain: bool = False

    def key_path(self, gallery: Path) -> Path:
        return self.key_file if self.key_file is not None else locations.default_gallery_key(gallery)

    @property
    def uses_passphrase(self) -> bool:
        return self.passphrase is not None or self.passphrase_file is not None


KeyLike = KeySpec | GalleryKey | None


def derive(passphrase: str, salt: bytes) -> GalleryKey:
    """The raw key for ``passphrase`` with ``salt`` (scrypt, once)."""
    if not passphrase:
        raise GalleryError("the passphrase is empty")
    raw = hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, dklen=KEY_BYTES, **_SCRYPT)
    return GalleryKey(raw, salt, "passphrase")


def read_passphrase(path: Path) -> str:
    """A passphrase from a file (owner-only; its trailing newline dropped)."""
    data = secretfiles.read(path, PASSPHRASE_WHAT)
    try:
        text = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise GalleryError(f"the {PASSPHRASE_WHAT} {path} is not UTF-8 text") from None
    if not text:
        raise GalleryError(f"the {PASSPHRASE_WHAT} {path} is empty")
    return text


def _passphrase(spec: KeySpec) -> str:
    if spec.passphrase is not None:
        return spec.passphrase
    assert spec.passphrase_file is not None
    return read_passphrase(spec.passphrase_file)


def read_key_file(path: Path) -> GalleryKey:
    return GalleryKey(secretfiles.read_hex(path, KEY_FILE_WHAT, KEY_BYTES), None, f"key file {path}")


def create_key_file(path: Path) -> GalleryKey:
    """A new random key written to ``path`` (owner-only, fsynced, never over an existing file)."""
    raw = os.urandom(KEY_BYTES)
    secretfiles.write_new(path, (raw.hex() + "\n").encode("ascii"), KEY_FILE_WHAT)
    return GalleryKey(raw, None, f"key file {path}")


def key_for_new(spec: KeyLike, gallery: Path) -> GalleryKey | None:
    """The key a gallery created now at ``gallery`` is encrypted with (None: plain). The default key file
    is made when missing (and reused when another gallery in the folder made it)."""
    if isinstance(spec, GalleryKey):
        return spec
    spec = spec or KeySpec()
    if spec.plain:
        return None
    if spec.uses_passphrase:
        return derive(_passphrase(spec), os.urandom(SALT_BYTES))
    path = spec.key_path(gallery)
    if path.exists() or path.is_symlink():
        return read_key_file(path)
    return create_key_file(path)


def key_for_existing(spec: KeyLike, gallery: Path, salt: bytes) -> GalleryKey:
    """The key that should open the existing encrypted gallery at ``gallery`` whose salt is ``salt``.
    A missing key file is one line saying what it means: without the key the gallery cannot be read."""
    if isinstance(spec, GalleryKey):
        return spec if spec.salt is None else GalleryKey(spec.raw, salt, spec.source)
    spec = spec or KeySpec()
    if spec.uses_passphrase:
        return derive(_passphrase(spec), salt)
    path = spec.key_path(gallery)
    try:
        return read_key_file(path)
    except secretfiles.MissingSecretError:
        raise secretfiles.MissingSecretError(
            f"{gallery} is encrypted and its {KEY_FILE_WHAT} {path} is missing: restore the key from your "
            "backup (or name it with --gallery-key, or give the passphrase); without it the gallery cannot be read"
        ) from None


def needs_passphrase(gallery: Path, spec: KeySpec) -> bool:
    """True when the gallery is encrypted, no passphrase was given, and there is no key file to open it
    with: the console then asks for the passphrase."""
    from storage import cipher

    if spec.uses_passphrase or (spec.plain and not gallery.exists()):
        return False
    return cipher.read_state(gallery) is cipher.FileState.ENCRYPTED and not spec.key_path(gallery).exists()
