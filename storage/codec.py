"""Embeddings as float32 blobs, and the checks every value passes before it is stored (embeddings, text,
numbers, JPEG crops), so a bad argument is refused with one line naming it before any SQL runs."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from storage.errors import GalleryError

MAX_DIM = 8192


def as_embedding(value: object, what: str = "embedding") -> npt.NDArray[np.float32]:
    """A finite, non-zero 1-D float32 array, or a GalleryError saying what is wrong with ``value``."""
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise GalleryError(f"{what} is not numeric: {exc}") from None
    if arr.ndim != 1:
        raise GalleryError(f"{what} must be 1-D, got shape {arr.shape}")
    if not 0 < arr.shape[0] <= MAX_DIM:
        raise GalleryError(f"{what} has {arr.shape[0]} values; expected 1..{MAX_DIM}")
    if not np.all(np.isfinite(arr)):
        raise GalleryError(f"{what} holds NaN or infinite values")
    if not float(np.abs(arr).max()) > 0.0:
        raise GalleryError(f"{what} is all zeros")
    return np.ascontiguousarray(arr)


def to_blob(arr: npt.NDArray[np.float32]) -> bytes:
    """Little-endian float32 bytes: the stored form, the same on every host."""
    return arr.astype("<f4", copy=False).tobytes()


def blobs_to_matrix(blobs: list[bytes], dim: int) -> npt.NDArray[np.float32]:
    """Decode many blobs of one dimension at once (one join, one frombuffer: no per-row numpy call)."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype="<f4")
    if flat.size != len(blobs) * dim:
        raise GalleryError(f"stored embeddings do not all have {dim} values: the gallery is damaged")
    return flat.reshape(len(blobs), dim).astype(np.float32, copy=False)


def normalise_rows(m: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Unit-length rows, so a dot product is the cosine similarity."""
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: npt.NDArray[np.float32] = (m / norms).astype(np.float32, copy=False)
    return out


def check_text(value: object, what: str, *, max_len: int = 200, allow_empty: bool = False) -> str:
    """A stripped, bounded, printable string, or a GalleryError naming ``what``."""
    if not isinstance(value, str):
        raise GalleryError(f"{what} must be text, got {type(value).__name__}")
    text = value.strip()
    if not text and not allow_empty:
        raise GalleryError(f"{what} is empty")
    if len(text) > max_len:
        raise GalleryError(f"{what} is longer than {max_len} characters")
    if any(ord(c) < 32 for c in text):
        raise GalleryError(f"{what} contains control characters")
    return text


def check_time(value: object, what: str) -> float:
    """Epoch seconds as a finite float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GalleryError(f"{what} must be epoch seconds, got {type(value).__name__}")
    t = float(value)
    if not math.isfinite(t):
        raise GalleryError(f"{what} is not finite")
    return t


def is_int(value: object) -> bool:
    """An int (numpy's too), but not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_number(value: object, what: str) -> float:
    """A finite number (numpy's too, not a bool) as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise GalleryError(f"{what} must be a number, got {type(value).__name__}")
    f = float(value)
    if not math.isfinite(f):
        raise GalleryError(f"{what} is not finite")
    return f


def check_jpeg(value: object, what: str) -> bytes | None:
    """JPEG bytes, or None for empty bytes (no crop)."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise GalleryError(f"{what} must be JPEG bytes, got {type(value).__name__}")
    data = bytes(value)
    if not data:
        return None
    if not data.startswith(b"\xff\xd8"):
        raise GalleryError(f"{what} is not a JPEG (it does not start with FF D8)")
    return data
