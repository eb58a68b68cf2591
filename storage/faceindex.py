"""An in-memory matrix of sighting embeddings per model, for search by face without decoding blobs per query.

The matrix grows by appending rows newer than the last id it holds. Anything that deletes or rewrites
sightings bumps ``meta.sightings_epoch``, and a changed epoch makes the next query reload the whole model.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from storage.codec import as_embedding, blobs_to_matrix, check_text, normalise_rows
from storage.errors import GalleryError
from storage.sightings import check_page

_LOAD_CHUNK = 20_000


@dataclass
class _ModelRows:
    epoch: int
    max_id: int
    dim: int
    count: int
    ids: npt.NDArray[np.int64]
    mat: npt.NDArray[np.float32]

    def append(self, ids: npt.NDArray[np.int64], rows: npt.NDArray[np.float32]) -> None:
        need = self.count + len(ids)
        if need > len(self.ids):
            cap = max(need, 2 * len(self.ids), 1024)
            new_ids = np.empty(cap, dtype=np.int64)
            new_mat = np.empty((cap, self.dim), dtype=np.float32)
            new_ids[: self.count] = self.ids[: self.count]
            new_mat[: self.count] = self.mat[: self.count]
            self.ids, self.mat = new_ids, new_mat
        self.ids[self.count : need] = ids
        self.mat[self.count : need] = rows
        self.count = need
        self.max_id = int(ids[-1])


class FaceIndex:
    """Thread-safe cache: ``top(conn, model, query, k)`` gives the k most similar sighting ids and scores."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, _ModelRows] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._models.clear()

    def _refresh(self, conn: sqlite3.Connection, model: str, dim: int) -> _ModelRows:
        epoch = int(conn.execute("SELECT value FROM meta WHERE key = 'sightings_epoch'").fetchone()[0])
        rows = self._models.get(model)
        if rows is None or rows.epoch != epoch or rows.dim != dim:
            rows = _ModelRows(epoch, 0, dim, 0, np.empty(0, np.int64), np.empty((0, dim), np.float32))
            self._models[model] = rows
        while True:
            chunk = conn.execute(
                "SELECT sighting_id, embedding FROM sighting_embeddings WHERE model = ? AND sighting_id > ? "
                "ORDER BY sighting_id LIMIT ?",
                (model, rows.max_id, _LOAD_CHUNK),
            ).fetchall()
            if not chunk:
                return rows
            ids = np.fromiter((r[0] for r in chunk), dtype=np.int64, count=len(chunk))
            mat = normalise_rows(blobs_to_matrix([r[1] for r in chunk], dim))
            rows.append(ids, mat)
            if len(chunk) < _LOAD_CHUNK:
                return rows

    def search(
        self, conn: sqlite3.Connection, dims: dict[str, int], embedding: object, model: object, limit: int
    ) -> tuple[str, list[tuple[int, float]]]:
        """Check a search by face (the embedding, the model name, the page size against the model's stored
        dimension ``dims``) and run it: (the model name, the ``limit`` best (sighting id, cosine))."""
        emb = as_embedding(embedding)
        model_name = check_text(model, "model name", max_len=100)
        check_page(limit, 0)
        if model_name not in dims:
            return model_name, []
        if dims[model_name] != emb.shape[0]:
            raise GalleryError(
                f"model {model_name!r} embeddings have {dims[model_name]} values; this one has {emb.shape[0]}"
            )
        return model_name, self.top(conn, model_name, dims[model_name], emb, int(limit))

    def top(
        self, conn: sqlite3.Connection, model: str, dim: int, query: npt.NDArray[np.float32], k: int
    ) -> list[tuple[int, float]]:
        """The ``k`` stored sightings most similar to ``query`` (cosine), best first. Reads in one snapshot."""
        q = query / np.float32(np.linalg.norm(query))
        with self._lock:
            conn.execute("BEGIN")
            try:
                rows = self._refresh(conn, model, dim)
            finally:
                conn.execute("COMMIT")
            n = rows.count
            if n == 0 or k <= 0:
                return []
            sims = rows.mat[:n] @ q.astype(np.float32)
            k = min(k, n)
            idx = np.argpartition(-sims, k - 1)[:k] if k < n else np.arange(n)
            idx = idx[np.argsort(-sims[idx], kind="stable")]
            return [(int(rows.ids[i]), float(sims[i])) for i in idx]

    def size(self, model: str) -> int:
        with self._lock:
            rows = self._models.get(model)
            return 0 if rows is None else rows.count
