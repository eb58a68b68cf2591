"""``main.py verify-evidence ZIP``: does an evidence export still hold exactly what the station signed?

The manifest's signature is checked against a public key the verifier trusts (the station's own, or one
given, as ``main.py keygen --show-public`` printed it), never against the key the zip itself names: a
forger can sign an edited manifest with a key of their own. Then every file the manifest lists is read
(streamed, bounded by its recorded size) and hashed, and anything in the zip the manifest does not list
is reported. The zip is never extracted: a name that would escape a folder (``../``, an absolute path) is
reported as unsafe. Intact means: a valid signature by the trusted key, every listed file present with
its hash, nothing more.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from storage import signing
from storage.errors import GalleryError
from storage.evidence import FORMAT, MANIFEST, SIGNATURE

MAX_ENTRIES = 100_000
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_CHUNK = 1 << 20


class EvidenceError(GalleryError):
    """The file cannot be checked at all (not a zip, truncated, no manifest): one line."""


class FileStatus(StrEnum):
    OK = "ok"
    CHANGED = "changed"  # its bytes differ from the manifest's hash or size
    MISSING = "missing"  # listed in the manifest, not in the zip
    EXTRA = "extra"  # in the zip, not in the manifest
    UNSAFE = "unsafe"  # a name that would escape the folder it is extracted to


class SignatureStatus(StrEnum):
    VALID = "valid"
    INVALID = "invalid"  # the manifest was changed after it was signed, or the signature was
    OTHER_KEY = "other key"  # signed, but not by the trusted key
    UNREADABLE = "unreadable"  # no manifest, or one that is not the format's JSON


@dataclass(frozen=True)
class FileCheck:
    path: str
    status: FileStatus
    sha256: str = ""


@dataclass(frozen=True)
class Verification:
    """The verdict: ``intact`` only when the signature is valid and every file is as listed."""

    signature: SignatureStatus
    signer: str
    files: tuple[FileCheck, ...]
    case: str
    sightings: int

    @property
    def intact(self) -> bool:
        return self.signature is SignatureStatus.VALID and all(f.status is FileStatus.OK for f in self.files)


def unsafe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return name.startswith(("/", "\\")) or "\\" in name or ".." in p.parts or (len(name) > 1 and name[1] == ":")


def verify(path: Path, trusted: bytes) -> Verification:
    """Check the evidence zip at ``path`` against the ``trusted`` Ed25519 public key."""
    try:
        with zipfile.ZipFile(path) as zf:
            return _verify(zf, trusted)
    except FileNotFoundError:
        raise EvidenceError(f"no file at {path}") from None
    except IsADirectoryError:
        raise EvidenceError(f"{path} is a directory, not an evidence zip") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise EvidenceError(
            f"{path} is not a readable zip (truncated or damaged: {exc}): it cannot be verified"
        ) from None
    except OSError as exc:
        raise EvidenceError(f"cannot read {path}: {exc.strerror or exc}") from None


def _verify(zf: zipfile.ZipFile, trusted: bytes) -> Verification:
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise EvidenceError(f"the zip holds {len(infos)} entries, more than any evidence export")
    names = [i.filename for i in infos]
    if MANIFEST not in names or SIGNATURE not in names:
        raise EvidenceError(f"the zip holds no {MANIFEST} and {SIGNATURE}: it is not a FaceStation evidence export")
    manifest_bytes = _read_small(zf, MANIFEST, MAX_MANIFEST_BYTES)
    manifest = _parse(manifest_bytes)
    signature, signer = _signature(zf, manifest, manifest_bytes, trusted)
    listed = _listed(manifest)
    checks: list[FileCheck] = []
    seen: set[str] = set()
    for name in names:
        if unsafe_name(name):
            checks.append(FileCheck(name, FileStatus.UNSAFE))
        elif name in seen:
            checks.append(FileCheck(name, FileStatus.EXTRA))  # a second entry of the same name
        elif name not in (MANIFEST, SIGNATURE) and name not in listed:
            checks.append(FileCheck(name, FileStatus.EXTRA))
        seen.add(name)
    for name, (sha, size) in listed.items():
        checks.append(_check_file(zf, name, sha, size) if name in seen else FileCheck(name, FileStatus.MISSING))
    checks.sort(key=lambda c: c.path)
    return Verification(
        signature, signer, tuple(checks), str(manifest.get("case", "")), len(manifest.get("sightings", []))
    )


def _read_small(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    with zf.open(name) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise EvidenceError(f"{name} is larger than {limit} bytes: not a FaceStation manifest")
    return data


def _parse(data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT else {}


def _signature(
    zf: zipfile.ZipFile, manifest: dict[str, Any], data: bytes, trusted: bytes
) -> tuple[SignatureStatus, str]:
    station = manifest.get("station")
    named = station.get("signing_key", "") if isinstance(station, dict) else ""
    if not manifest or not isinstance(named, str):
        return SignatureStatus.UNREADABLE, ""
    try:
        signed_by = bytes.fromhex(named)
        sig = bytes.fromhex(_read_small(zf, SIGNATURE, 1024).decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return SignatureStatus.INVALID, ""
    signer = signing.fingerprint(signed_by)
    if signed_by != trusted:
        return SignatureStatus.OTHER_KEY, signer
    return (SignatureStatus.VALID if signing.verify(trusted, sig, data) else SignatureStatus.INVALID), signer


def _listed(manifest: dict[str, Any]) -> dict[str, tuple[str, int]]:
    files = manifest.get("files", [])
    out: dict[str, tuple[str, int]] = {}
    for f in files if isinstance(files, list) else []:
        if isinstance(f, dict) and isinstance(f.get("path"), str):
            out[f["path"]] = (
                str(f.get("sha256", "")),
                int(f.get("bytes", -1)) if isinstance(f.get("bytes"), int) else -1,
            )
    return out


def _check_file(zf: zipfile.ZipFile, name: str, sha: str, size: int) -> FileCheck:
    """Hash a listed file, reading at most one byte more than its recorded size (a zip bomb stops there)."""
    digest = hashlib.sha256()
    read = 0
    try:
        with zf.open(name) as fh:
            while read <= size:
                chunk = fh.read(min(_CHUNK, size + 1 - read))
                if not chunk:
                    break
                digest.update(chunk)
                read += len(chunk)
    except (zipfile.BadZipFile, EOFError, OSError):  # a CRC that fails, a member cut short
        return FileCheck(name, FileStatus.CHANGED)
    got = digest.hexdigest()
    return FileCheck(name, FileStatus.OK if read == size and got == sha else FileStatus.CHANGED, got)
