"""Sightings checked and turned into rows on the caller's thread, so the writer thread only writes.

The checks are the same as everywhere (finite numbers, printable text, JPEG crops, finite non-zero 1-D
embeddings), but run per batch: embeddings of one length are checked as one matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from storage.codec import MAX_DIM
from storage.errors import GalleryError
from storage.records import STATES, NewSighting, SnapshotFace

_NUMBERS = (int, float, np.floating, np.integer)


FaceRow = tuple[str, float, float, float, float]  # a snapshot face: track, x, y, w, h


@dataclass(frozen=True, slots=True)
class PreparedSnapshot:
    """A sighting's evidence snapshot as stored: the JPEG, the sighting's face box in it, when it was taken
    (None: not recorded) and every face in it with its track."""

    jpeg: bytes
    box: tuple[float, float, float, float]
    taken: float | None = None
    faces: tuple[FaceRow, ...] = ()


@dataclass(frozen=True, slots=True)
class PreparedSighting:
    """One sighting as the writer stores it: the row (without its id), the crop, the embedding blob and the
    evidence snapshot."""

    row: tuple[Any, ...]
    crop: bytes | None
    model: str
    embedding: bytes | None
    dim: int
    snapshot: PreparedSnapshot | None = None

    @property
    def camera(self) -> str:
        return str(self.row[0])

    @property
    def person_id(self) -> int | None:
        return None if self.row[3] is None else int(self.row[3])

    @property
    def window(self) -> tuple[float, float]:
        return float(self.row[1]), float(self.row[2])

    @property
    def track(self) -> str:
        return str(self.row[10])


MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024  # a 960 px wide JPEG is far smaller


def _text(value: object, what: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise GalleryError(f"{what} must be text, got {type(value).__name__}")
    if not value and not allow_empty:
        raise GalleryError(f"{what} is empty")
    if len(value) > 200 or (value and not value.isprintable()):
        raise GalleryError(f"{what} is longer than 200 characters or holds control characters")
    return value


def _numbers(values: Sequence[object], what: str) -> list[float]:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, _NUMBERS):
            raise GalleryError(f"{what} must be numbers, got {type(v).__name__}")
    out = [float(v) for v in values]  # type: ignore[arg-type]
    if not all(map(math.isfinite, out)):
        raise GalleryError(f"{what}: a value is not finite")
    return out


MAX_SNAPSHOT_FACES = 256


def prepare_sightings(items: Sequence[NewSighting]) -> list[PreparedSighting]:
    """Check every sighting and build its row; the first bad one raises GalleryError naming it."""
    rows: list[tuple[tuple[Any, ...], bytes | None, str]] = []
    arrays: list[npt.NDArray[np.float32] | None] = []
    snapshots: list[PreparedSnapshot | None] = []
    for i, it in enumerate(items):
        if not isinstance(it, NewSighting):
            raise GalleryError(f"sighting {i} is a {type(it).__name__}, not a NewSighting")
        rows.append(_row(it, i))
        arrays.append(_embedding(it, i))
        snapshots.append(_snapshot(it, i))
    _check_embeddings(arrays)
    return [
        PreparedSighting(
            row=row,
            crop=crop,
            model=model,
            embedding=None if a is None else a.astype("<f4", copy=False).tobytes(),
            dim=0 if a is None else int(a.shape[0]),
            snapshot=snap,
        )
        for (row, crop, model), a, snap in zip(rows, arrays, snapshots, strict=True)
    ]


def _state(it: NewSighting, person_id: int | None, i: int) -> str:
    """The sighting's decision state: as given, or named/unknown by its person; a named state needs a person."""
    state = it.state or ("named" if person_id is not None else "unknown")
    if state not in STATES:
        raise GalleryError(f"sighting {i} state must be one of {', '.join(STATES)}, got {state!r}")
    if (state == "named") != (person_id is not None):
        raise GalleryError(f"sighting {i} is {state} but has {'no ' if person_id is None else 'a '}person")
    return state


def _row(it: NewSighting, i: int) -> tuple[tuple[Any, ...], bytes | None, str]:
    """The sighting's row (camera .. state), its crop and its model, checked."""
    camera = _text(it.camera, f"sighting {i} camera")
    model = _text(it.model, f"sighting {i} model")
    track = _text(it.track, f"sighting {i} track", allow_empty=True)
    if not isinstance(it.box, tuple) or len(it.box) != 4:
        raise GalleryError(f"sighting {i} box must be (x, y, w, h)")
    start, end, x, y, w, h = _numbers((it.start, it.end, *it.box), f"sighting {i}")
    if end < start:
        raise GalleryError(f"sighting {i} ends before it starts")
    score = None if it.score is None else _numbers((it.score,), f"sighting {i} score")[0]
    quality = None if it.quality is None else _numbers((it.quality,), f"sighting {i} quality")[0]
    pid = _person_id(it.person_id, i)
    row = (camera, start, end, pid, score, x, y, w, h, model, track, quality, _state(it, pid, i))
    return row, _crop(it.crop_jpeg, i), model


def _person_id(pid: object, i: int) -> int | None:
    if pid is None:
        return None
    if isinstance(pid, bool) or not isinstance(pid, (int, np.integer)):
        raise GalleryError(f"sighting {i} person_id must be an int or None")
    return int(pid)


def _crop(crop: object, i: int) -> bytes | None:
    if not isinstance(crop, (bytes, bytearray, memoryview)):
        raise GalleryError(f"sighting {i} crop must be JPEG bytes, got {type(crop).__name__}")
    crop_bytes = bytes(crop) or None
    if crop_bytes is not None and not crop_bytes.startswith(b"\xff\xd8"):
        raise GalleryError(f"sighting {i} crop is not a JPEG (it does not start with FF D8)")
    return crop_bytes


def _embedding(it: NewSighting, i: int) -> npt.NDArray[np.float32] | None:
    if it.embedding is None:
        return None
    try:
        emb = np.asarray(it.embedding, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise GalleryError(f"sighting {i} embedding is not numeric: {exc}") from None
    if emb.ndim != 1 or not 0 < emb.shape[0] <= MAX_DIM:
        raise GalleryError(f"sighting {i} embedding must be 1-D with 1..{MAX_DIM} values, got {emb.shape}")
    return emb


def _snapshot(it: NewSighting, i: int) -> PreparedSnapshot | None:
    data = it.snapshot_jpeg
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise GalleryError(f"sighting {i} snapshot must be JPEG bytes, got {type(data).__name__}")
    jpeg = bytes(data)
    if not jpeg:
        return None
    if not jpeg.startswith(b"\xff\xd8"):
        raise GalleryError(f"sighting {i} snapshot is not a JPEG (it does not start with FF D8)")
    if len(jpeg) > MAX_SNAPSHOT_BYTES:
        raise GalleryError(f"sighting {i} snapshot is {len(jpeg)} bytes, over {MAX_SNAPSHOT_BYTES}")
    box = it.snapshot_box
    if not isinstance(box, tuple) or len(box) != 4:
        raise GalleryError(f"sighting {i} snapshot needs the face's box (x, y, w, h) in its pixels")
    x, y, w, h = _numbers(box, f"sighting {i} snapshot box")
    taken = None if it.snapshot_at is None else _numbers((it.snapshot_at,), f"sighting {i} snapshot time")[0]
    return PreparedSnapshot(jpeg, (x, y, w, h), taken, _faces(it.snapshot_faces, i))


def _faces(faces: object, i: int) -> tuple[FaceRow, ...]:
    """The snapshot's faces as (track, x, y, w, h) rows, checked."""
    if not isinstance(faces, tuple) or len(faces) > MAX_SNAPSHOT_FACES:
        raise GalleryError(f"sighting {i} snapshot faces must be a tuple of at most {MAX_SNAPSHOT_FACES}")
    out: list[FaceRow] = []
    for face in faces:
        if not isinstance(face, SnapshotFace) or not isinstance(face.box, tuple) or len(face.box) != 4:
            raise GalleryError(f"sighting {i} snapshot faces must be SnapshotFace(track, (x, y, w, h))")
        track = _text(face.track, f"sighting {i} snapshot face track", allow_empty=True)
        x, y, w, h = _numbers(face.box, f"sighting {i} snapshot face box")
        out.append((track, x, y, w, h))
    return tuple(out)


def _check_embeddings(arrays: list[npt.NDArray[np.float32] | None]) -> None:
    by_dim: dict[int, list[int]] = {}
    for i, a in enumerate(arrays):
        if a is not None:
            by_dim.setdefault(a.shape[0], []).append(i)
    for idx in by_dim.values():
        m = np.stack([arrays[i] for i in idx])  # type: ignore[misc]
        finite = np.asarray(np.isfinite(m).all(axis=1), dtype=np.bool_)
        nonzero = np.abs(np.where(np.isfinite(m), m, 0)).max(axis=1) > 0
        bad = np.flatnonzero(~(finite & nonzero))
        if bad.size:
            i = idx[int(bad[0])]
            why = "holds NaN or infinite values" if not finite[bad[0]] else "is all zeros"
            raise GalleryError(f"sighting {i} embedding {why}")
