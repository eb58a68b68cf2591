"""Converted models (OpenVINO IR) cached in the user's data folder, so a start after the first converts nothing.

An entry is a folder ``<cache>/<name>-<key>/`` holding ``model.xml``, ``model.bin`` and
``manifest.json``. The key is a sha256 over the model's name, the source package and its version,
the sha256 of each source file (FaceNet's ``.pb``, MTCNN's ``.onnx`` files), how it was converted (the
recipe) and OpenVINO's version: any change to one of them is a new entry, never a stale one.
The manifest records the key and the size and sha256 of the two IR files, so a truncated or
altered entry is noticed, logged in one line and rebuilt.

Entries are written to a temporary folder beside the final one and renamed into place, so a
reader never sees half an entry; files are owner-only (0600, folders 0700). The cache is
``storage.locations.user_data_dir() / "models"``, or ``$FACESTATION_MODEL_CACHE``. Nothing is
ever downloaded: a missing source file is the caller's VisionError.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vision import ov_runtime
from vision.types import VisionError

log = logging.getLogger(__name__)

CACHE_ENV = "FACESTATION_MODEL_CACHE"
MODEL_XML = "model.xml"
MODEL_BIN = "model.bin"
MANIFEST = "manifest.json"
FORMAT = 1
_CHUNK = 1 << 20

_lock = threading.Lock()
# Per-process memo of source-file hashes: (path, size, mtime_ns) -> sha256.
_file_hashes: dict[tuple[str, int, int], str] = {}
# Converters (and so their sources) of models used uncached, kept for the process's lifetime.
_kept_sources: list[Callable[[], Any]] = []


def cache_dir() -> Path:
    """Where converted models live: ``$FACESTATION_MODEL_CACHE``, else ``<user data>/models``. Not created here."""
    override = os.environ.get(CACHE_ENV, "")
    if override:
        return Path(override)
    from storage.locations import user_data_dir

    return user_data_dir() / "models"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (memoised per process by path, size and mtime)."""
    stat = path.stat()
    memo = (str(path), stat.st_size, stat.st_mtime_ns)
    with _lock:
        known = _file_hashes.get(memo)
    if known is not None:
        return known
    digest = _digest(path)
    with _lock:
        _file_hashes[memo] = digest
    return digest


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class ModelSource:
    """What a converted model is made from: the package, its version, its files and how it is converted."""

    name: str
    package: str
    package_version: str
    files: tuple[Path, ...]
    recipe: str

    def key(self, openvino_version: str) -> str:
        """The cache key (hex sha256); reads and hashes every source file."""
        parts = {
            "format": FORMAT,
            "name": self.name,
            "package": self.package,
            "package_version": self.package_version,
            "files": [[p.name, sha256_file(p)] for p in self.files],
            "recipe": self.recipe,
            "openvino": openvino_version,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheResult:
    """A loaded model and where it came from: ``converted`` is False when the cache held it."""

    model: Any
    path: Path
    converted: bool


def entry_dir(source: ModelSource, key: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / f"{source.name}-{key[:24]}"


def load_or_convert(source: ModelSource, convert: Callable[[], Any]) -> CacheResult:
    """The cached IR of ``source`` if it is there and intact, else ``convert()``'s model, saved for next time.

    A corrupt or unreadable entry is logged in one line and rebuilt; a cache that cannot be
    written (read-only disk) is logged in one line and the converted model used as is.
    """
    try:
        key = source.key(ov_runtime.version())
    except OSError as exc:
        raise VisionError(f"cannot read the {source.package} model files: {exc}") from exc
    folder = entry_dir(source, key)
    if folder.exists():
        try:
            return CacheResult(_read_entry(folder, key), folder, converted=False)
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("model cache entry %s is unusable (%s); rebuilding it", folder, exc)
    model = convert()
    try:
        _write_entry(folder, key, source, model)
        # The converted model's constants may point into its source's buffers (a Keras model's
        # weights, for one, are not copied), which can be freed once ``convert`` returns: use the IR just
        # written, which owns its weights.
        model = ov_runtime.read_model(str(folder / MODEL_XML), str(folder / MODEL_BIN))
    except (OSError, RuntimeError) as exc:
        log.warning("cannot write the model cache entry %s (%s); the converted model is used uncached", folder, exc)
        with _lock:
            _kept_sources.append(convert)  # keeps whatever the model's constants point into alive
    return CacheResult(model, folder, converted=True)


def _read_entry(folder: Path, key: str) -> Any:
    manifest = json.loads((folder / MANIFEST).read_text())
    if not isinstance(manifest, dict) or manifest.get("key") != key:
        raise ValueError("its manifest does not match the source files")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ValueError("its manifest lists no files")
    for name in (MODEL_XML, MODEL_BIN):
        expected = files.get(name)
        path = folder / name
        if not isinstance(expected, dict):
            raise ValueError(f"its manifest does not list {name}")
        size = path.stat().st_size
        if size != expected.get("size"):
            raise ValueError(f"{name} is {size} bytes, expected {expected.get('size')}")
        if _digest(path) != expected.get("sha256"):
            raise ValueError(f"{name} does not match its checksum")
    return ov_runtime.read_model(str(folder / MODEL_XML), str(folder / MODEL_BIN))


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write_entry(folder: Path, key: str, source: ModelSource, model: Any) -> None:
    root = folder.parent
    _private_dir(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=root))  # mode 0700
    try:
        ov_runtime.save_model(model, str(tmp / MODEL_XML))
        files = {}
        for name in (MODEL_XML, MODEL_BIN):
            path = tmp / name
            os.chmod(path, 0o600)
            files[name] = {"size": path.stat().st_size, "sha256": _digest(path)}
        manifest = {
            "key": key,
            "name": source.name,
            "package": source.package,
            "package_version": source.package_version,
            "recipe": source.recipe,
            "openvino": ov_runtime.version(),
            "files": files,
        }
        fd = os.open(tmp / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _replace_dir(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _replace_dir(tmp: Path, folder: Path) -> None:
    """Rename ``tmp`` to ``folder``; an old (corrupt) ``folder`` is moved aside first and removed."""
    old: Path | None = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
        os.replace(folder, old / "entry")
    try:
        os.replace(tmp, folder)
    except OSError:
        if not folder.exists():  # else another process wrote the same entry first: keep theirs
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
