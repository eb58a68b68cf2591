"""The gallery: who is enrolled, and who was seen where and when, in one SQLite file.

``Gallery`` is the facade: on top of its core (storage/core.py: the connections, the one writer thread, the
revision counter) it checks arguments, and wraps each change with its revision bump and audit entry. The SQL
lives in plain functions, one module per concern: people, sightings (and the history query), unknowns,
erasure (and retention), cameras, settings, audit, counters, maintenance (backup); connection.py opens the
writer's connection and readers.py keeps the per-thread readers. Callers outside storage/ use this class
(and the facades it hands out), never those modules.

Every change goes through one writer thread (``storage.writer``), which batches sighting inserts;
reads run on a connection per calling thread, so a GUI thread never waits for the writer (WAL mode).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from storage import audit as audit_log
from storage import cameras as camera_list
from storage import counters, erasure, maintenance, people, sql, unknowns, watchlist_sql
from storage import settings as setting_store
from storage import sightings as history_rows
from storage.alarms import Alarms
from storage.cameras import Camera
from storage.codec import as_embedding, blobs_to_matrix, check_jpeg, check_number, check_text, to_blob
from storage.core import GalleryCore
from storage.errors import GalleryError
from storage.gallerykey import GalleryKey
from storage.people import PersonRef
from storage.prepare import prepare_sightings
from storage.records import (
    AuditEntry,
    Cluster,
    EnrolledImage,
    NewSighting,
    Person,
    RetentionResult,
    Sample,
    SampleMatrix,
    Sighting,
    Snapshot,
)
from storage.relabel import Relabels
from storage.sightings import MAX_PAGE, SightingFilter
from storage.timeutil import TimeLike, iso, to_epoch
from storage.watchlists import Watchlists

__all__ = ["MAX_PAGE", "Camera", "Gallery", "PersonRef", "SightingFilter"]

log = logging.getLogger(__name__)


class Gallery(GalleryCore):
    """The gallery database. Open with ``Gallery.open(path)``; use as a context manager or call ``close()``.
    ``watchlists`` (storage/watchlists.py) is the facade of the lists and who is on them, ``alarms``
    (storage/alarms.py) of the alarm queue, ``relabels`` (storage/relabel.py) of past sightings named anew."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        *,
        actor: str,
        busy_timeout_s: float,
        queue_capacity: int = 20_000,
        queue_wait_s: float = 2.0,
        key: GalleryKey | None = None,
    ) -> None:
        super().__init__(
            path,
            conn,
            actor=actor,
            busy_timeout_s=busy_timeout_s,
            queue_capacity=queue_capacity,
            queue_wait_s=queue_wait_s,
            key=key,
        )
        self.watchlists = Watchlists(self)
        self.alarms = Alarms(self)
        self.relabels = Relabels(self)

    # -------------------------------------------------------------- persons

    def enrol_sample(
        self,
        person: str,
        *,
        model: str,
        embedding: npt.NDArray[np.float32],
        crop_jpeg: bytes,
        source: str,
        quality: float,
        audit: Mapping[str, Any] | None = None,
        image_id: int | None = None,
    ) -> int:
        """Store one face sample of ``person`` (created if new); returns the sample id. Audited, with ``audit``'s
        entries added to the enrol entry (e.g. why a weak sample was enrolled below the quality bar).
        ``image_id``: the photo this is another model's sample of (its first sample's id); None: a new photo."""
        name = check_text(person, "person name")
        model_name = check_text(model, "model name", max_len=100)
        emb = as_embedding(embedding)
        crop = check_jpeg(crop_jpeg, "the crop")
        src = check_text(source, "source", max_len=1000, allow_empty=True)
        q = check_number(quality, "quality")
        extra = {str(k): v for k, v in (audit or {}).items() if k not in ("person", "person_id", "sample_id")}

        def run(conn: sqlite3.Connection) -> int:
            found = people.find(conn, name)
            pid = people.create(conn, name) if found is None else found
            if image_id is not None and people.image_person(conn, image_id) != pid:
                raise GalleryError(f"image {int(image_id)} is not an enrolled photo of {name}")
            people.ensure_model(conn, model_name, emb.shape[0])
            sample_id = people.add_sample(conn, pid, model_name, to_blob(emb), crop, src, q, image_id)
            details = {"person": name, "person_id": pid, "new_person": found is None, "sample_id": sample_id}
            self._changed(conn, "enrol", {**details, "model": model_name, "source": src, "quality": q, **extra})
            return sample_id

        return self._write(run, "enrolment")

    def add_negative(
        self,
        person: PersonRef,
        *,
        model: str,
        embedding: npt.NDArray[np.float32],
        crop_jpeg: bytes = b"",
        source: str = "",
    ) -> int:
        """Record that this face is NOT ``person`` (an existing person); returns the negative sample id."""
        model_name = check_text(model, "model name", max_len=100)
        emb = as_embedding(embedding)
        crop = check_jpeg(crop_jpeg, "the crop")
        src = check_text(source, "source", max_len=1000, allow_empty=True)

        def run(conn: sqlite3.Connection) -> int:
            pid = people.person_id(conn, person)
            people.ensure_model(conn, model_name, emb.shape[0])
            nid = people.add_negative(conn, pid, model_name, to_blob(emb), crop, src)
            self._changed(conn, "negative", {"person": people.name_of(conn, pid), "person_id": pid, "negative_id": nid})
            return nid

        return self._write(run, "negative sample")

    def persons(self) -> list[Person]:
        """Every person with their sample and negative counts, by name."""
        return self.read(people.all_persons)

    def person(self, person: PersonRef) -> Person:
        """One person by name (case-insensitive) or id."""
        return self.read(lambda conn: people.by_id(conn, people.person_id(conn, person)))

    def samples(self, person: PersonRef) -> list[Sample]:
        """The samples of one person, oldest first (without embeddings or crops)."""
        return self.read(lambda conn: people.samples_of(conn, people.person_id(conn, person)))

    def rename(self, person: PersonRef, new_name: str) -> None:
        """Rename a person; refuses a name another person already has. Audited."""
        name = check_text(new_name, "new name")

        def run(conn: sqlite3.Connection) -> None:
            pid = people.person_id(conn, person)
            old = people.name_of(conn, pid)
            people.rename(conn, pid, name)
            self._changed(conn, "rename", {"person_id": pid, "from": old, "to": name})

        self._write(run, "rename")

    def set_notes(self, person: PersonRef, notes: str) -> None:
        text = check_text(notes, "notes", max_len=10_000, allow_empty=True)

        def run(conn: sqlite3.Connection) -> None:
            people.set_notes(conn, people.person_id(conn, person), text)
            self._changed(conn)

        self._write(run, "notes")

    def set_watchlist(self, person: PersonRef, on: bool) -> None:
        """On: put the person on the default list; off: take them off every list (``watchlists`` has the lists).
        Audited."""
        self.watchlists.set_default(person, bool(on))

    def merge(self, source: PersonRef, into: PersonRef) -> int:
        """Move every sample, negative and sighting of ``source`` to ``into`` and delete ``source``, in one
        transaction; ``into`` is on every list either was on. Returns the surviving id. Audited."""

        def run(conn: sqlite3.Connection) -> int:
            src = people.person_id(conn, source)
            dst = people.person_id(conn, into)
            if src == dst:
                raise GalleryError("cannot merge a person into themself")
            names = {"from": people.name_of(conn, src), "from_id": src, "into": people.name_of(conn, dst)}
            watchlist_sql.move_members(conn, src, dst)
            moved = people.merge(conn, src, dst)
            self._changed(conn, "merge", {**names, "into_id": dst, **moved})
            return dst

        return self._write(run, "merge")

    # -------------------------------------------------------------- erasure

    def delete_person(self, person: PersonRef, *, erase_sightings: bool = True, vacuum: bool = False) -> None:
        """Delete a person with their samples, negatives, and their sightings' crops and embeddings, in one
        transaction. Their sightings are erased (``erase_sightings``) or kept as unknown without crop or
        embedding. Deleted bytes are zeroed and the WAL truncated (storage.erasure); ``vacuum`` also rebuilds
        the file. Audited."""

        def run(conn: sqlite3.Connection) -> None:
            pid = people.person_id(conn, person)
            name = people.name_of(conn, pid)
            counts = erasure.erase_person(conn, pid, erase_sightings=erase_sightings)
            counters.bump(conn, counters.SIGHTINGS_EPOCH)
            action = "erased" if erase_sightings else "unlinked"
            details = {"person": name, "person_id": pid, **counts, "sightings_action": action, "vacuum": vacuum}
            self._changed(conn, "delete", details)

        self._write(run, "delete person")
        self._faces.invalidate()  # drop the in-memory copy of their sighting embeddings now
        if vacuum:
            self.vacuum()
        else:
            self._truncate_wal("delete person")

    def images(self, person: PersonRef) -> list[EnrolledImage]:
        """The photos enrolled for a person, oldest first, each with its samples (one per model)."""
        return self.read(lambda conn: people.images_of(conn, people.person_id(conn, person)))

    def delete_image(self, image_id: int) -> None:
        """Remove one enrolled photo: its sample of every model. Audited."""

        def run(conn: sqlite3.Connection) -> None:
            pid, samples = erasure.delete_image(conn, image_id)
            self._changed(conn, "delete_image", {"image_id": int(image_id), "person_id": pid, "samples": samples})

        self._write(run, "remove enrolled image")
        self._truncate_wal("remove enrolled image")

    def delete_sample(self, sample_id: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            pid = erasure.delete_sample(conn, sample_id)
            self._changed(conn, "delete_sample", {"sample_id": int(sample_id), "person_id": pid})

        self._write(run, "delete sample")
        self._truncate_wal("delete sample")

    def vacuum(self) -> None:
        """Rebuild the file (so freed pages keep no old bytes) and truncate the WAL."""
        self._write(erasure.vacuum, "vacuum", transaction=False)

    def _truncate_wal(self, what: str) -> None:
        if not self._write(erasure.truncate_wal, "WAL checkpoint", transaction=False):
            log.warning("%s: a reader kept the WAL from being truncated; old pages stay in it until the next one", what)

    def apply_retention(self, days: float, *, keep_watchlist: bool = True, now: float | None = None) -> RetentionResult:
        """Delete sightings that started more than ``days`` ago (with their crops and embeddings), in chunks so
        live inserts interleave, then truncate the WAL. With ``keep_watchlist`` the sightings of watchlist
        persons, crops included, are kept. Enrolments are never touched. Audited."""
        d = check_number(days, "days")
        if d < 0:
            raise GalleryError("days must be zero or more")
        cutoff = (time.time() if now is None else float(now)) - d * 86400.0
        deleted = erasure.delete_expired_in_chunks(
            lambda fn: self._write(fn, "retention"), cutoff, keep_watchlist=keep_watchlist
        )

        def finish(conn: sqlite3.Connection) -> int:
            kept = erasure.watchlist_kept(conn, cutoff) if keep_watchlist else 0
            details = {"days": d, "cutoff": iso(cutoff), "deleted": deleted, "watchlist_kept": kept}
            self._audit(conn, "retention", details)
            return kept

        kept = self._write(finish, "retention")
        if deleted:
            self._faces.invalidate()
            self._truncate_wal("retention")
        return RetentionResult(sightings_deleted=deleted, watchlist_kept=kept)

    # -------------------------------------------------------------- matrices

    def _matrix(self, model: str, table: people.FaceTable) -> SampleMatrix:
        model_name = check_text(model, "model name", max_len=100)
        return self.read(lambda conn: people.matrix(conn, model_name, table, counters.value(conn, counters.REVISION)))

    def sample_matrix(self, model: str) -> SampleMatrix:
        """Every sample of ``model``, one row each (raw, not normalised), with the revision it was read at."""
        return self._matrix(model, "samples")

    def negative_matrix(self, model: str) -> SampleMatrix:
        """Every negative sample of ``model``: ``person_ids`` says which person each face is NOT."""
        return self._matrix(model, "negatives")

    def models(self) -> dict[str, int]:
        """Model name to embedding dimension, for every model the gallery has seen."""
        return self.read(people.model_dims)

    def person_of_sample(self, sample_id: int) -> int | None:
        """The person a sample belongs to (None when it no longer exists)."""
        return self.read(lambda conn: people.person_of_sample(conn, sample_id))

    def sample_crop(self, sample_id: int) -> bytes | None:
        """The aligned crop (JPEG) of an enrolled sample, or None."""
        return self.read(lambda conn: people.sample_crop(conn, sample_id))

    # ------------------------------------------------------------- sightings

    def record_sightings(self, items: Sequence[NewSighting]) -> None:
        """Queue sightings for the writer thread. Checks them here, so a bad one is refused at once
        (GalleryError naming it, nothing of the call queued); a full queue blocks briefly and then raises
        QueueFullError."""
        if self._closed:
            raise GalleryError("the gallery is closed")
        prepared = self._lighten(prepare_sightings(items))
        if prepared:
            self._writer.put_sightings(prepared)

    def history(
        self,
        *,
        person: PersonRef | None = None,
        camera: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        unknown_only: bool = False,
        min_score: float | None = None,
        limit: int = 100,
        offset: int = 0,
        audit: bool = True,
        state: str | None = None,
    ) -> list[Sighting]:
        """Sightings matching every filter given, newest first, one page; audited (queued: no wait for a commit)."""
        history_rows.check_page(limit, offset)
        f = SightingFilter(person, camera, since, until, unknown_only, min_score, state)

        def run(conn: sqlite3.Connection) -> tuple[list[Sighting], dict[str, Any]]:
            q = history_rows.build_query(conn, f)
            return list(history_rows.select(conn, q, newest_first=True, limit=limit, offset=offset)), q.details

        rows, details = self.read(run)
        if audit:
            self._post_audit(
                "history_search", {**details, "limit": int(limit), "offset": int(offset), "results": len(rows)}
            )
        return rows

    def sightings_by_id(self, ids: Sequence[int]) -> list[Sighting]:
        """The sightings with these ids that still exist, in the order given."""
        wanted = [int(i) for i in ids]
        return self.read(lambda conn: history_rows.by_ids(conn, wanted)) if wanted else []

    def sighting_of_track(self, camera: str, track: str, *, since: TimeLike | None = None) -> Sighting | None:
        """The sighting of ``camera``'s track ``track`` (e.g. an alert's), once the track has ended and been
        recorded; ``since`` (default: a day ago) bounds the search to the camera's recent sightings."""
        cam = check_text(camera, "camera")
        tid = check_text(track, "track")
        t0 = time.time() - 86_400 if since is None else to_epoch(since, "since")
        return self.read(lambda conn: history_rows.of_track(conn, cam, tid, t0))

    def count_sightings(self) -> int:
        return self.read(history_rows.count)

    def crop(self, sighting_id: int) -> bytes | None:
        """The best crop (JPEG) of a sighting, or None."""
        return self.read(lambda conn: history_rows.crop(conn, sighting_id))

    def snapshot(self, sighting_id: int) -> Snapshot | None:
        """The evidence snapshot of a sighting: the full frame (JPEG) of its best moment and the face's box in it."""
        return self.read(lambda conn: history_rows.snapshot(conn, sighting_id))

    def sighting_embedding(self, sighting_id: int) -> tuple[str, npt.NDArray[np.float32]] | None:
        """The stored (model, embedding) of a sighting, or None when it has none (or no longer exists),
        for a search by face or a negative sample from a sighting."""
        found = self.read(lambda conn: history_rows.embedding(conn, sighting_id))
        if found is None:
            return None
        model, blob = found
        return model, blobs_to_matrix([blob], len(blob) // 4)[0].copy()

    def search_by_face(
        self, embedding: npt.NDArray[np.float32], model: str, limit: int = 20, *, audit: bool = True
    ) -> list[tuple[Sighting, float]]:
        """The stored sightings (known or unknown) most similar to ``embedding``, best first, with their cosine
        similarity. Served from an in-memory matrix that only loads rows it has not seen. Audited."""
        try:
            model_name, hits = self._faces.search(self._reader(), self.models(), embedding, model, limit)
        except sql.Error as exc:
            raise self._translate(exc) from None
        by_id = {s.id: s for s in self.sightings_by_id([h[0] for h in hits])}
        if audit:
            self._post_audit("face_search", {"model": model_name, "limit": int(limit), "results": len(hits)})
        return [(by_id[i], score) for i, score in hits if i in by_id]

    # --------------------------------------------------------- unknown faces

    def unknown_clusters(
        self,
        model: str,
        *,
        threshold: float = 0.7,
        since: TimeLike | None = None,
        min_size: int = 2,
        max_faces: int = 3000,
    ) -> list[Cluster]:
        """Group the newest ``max_faces`` unknown sightings of ``model`` that carry an embedding into clusters of
        the same face (single linkage at cosine >= ``threshold``), largest first."""
        model_name = check_text(model, "model name", max_len=100)
        thr = check_number(threshold, "threshold")
        if not 1 <= max_faces <= 20_000:
            raise GalleryError("max_faces must be 1..20000")
        t0 = None if since is None else to_epoch(since, "since")
        rows, dim = self.read(lambda conn: unknowns.newest_unknown(conn, model_name, t0, max_faces))
        return unknowns.group(rows, dim, thr, min_size)

    def promote_cluster(self, cluster: Cluster | Sequence[int], name: str, *, samples: int = 5) -> int:
        """Make a new person ``name`` from unknown sightings in one step: the sightings become theirs, and up to
        ``samples`` of them (those with an embedding, newest first) are enrolled. Returns the person id. Audited."""
        ids = list(cluster.sighting_ids) if isinstance(cluster, Cluster) else [int(i) for i in cluster]
        if not ids:
            raise GalleryError("the cluster is empty")
        person_name = check_text(name, "person name")

        def run(conn: sqlite3.Connection) -> int:
            pid, enrolled = unknowns.promote(conn, ids, person_name, samples)
            details = {"person": person_name, "person_id": pid, "sightings": len(ids), "samples": enrolled}
            self._changed(conn, "promote", details)
            return pid

        return self._write(run, "promotion")

    # ------------------------------------------------------ cameras, settings

    def note_camera(self, name: str, address: str, *, at: float | None = None) -> None:
        """Remember a camera seen ``at`` (default now; upsert: the first time seen is kept, the last only grows).
        Queued; does not wait for the commit."""
        cam = check_text(name, "camera name")
        addr = check_text(address, "camera address", allow_empty=True)
        now = time.time() if at is None else check_number(at, "time seen")
        if self._closed:
            raise GalleryError("the gallery is closed")
        self._writer.post(lambda conn: camera_list.note(conn, cam, addr, now), "camera note")

    def cameras(self) -> list[Camera]:
        return self.read(camera_list.all_cameras)

    def get_setting(self, key: str, default: Any = None) -> Any:
        """A JSON setting, or ``default`` when unset."""
        k = check_text(key, "setting key")
        text = self.read(lambda conn: setting_store.get(conn, k))
        return default if text is None else json.loads(text)

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable setting."""
        k = check_text(key, "setting key")
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise GalleryError(f"setting {k!r} is not JSON: {exc}") from None
        self._write(lambda conn: setting_store.put(conn, k, text), "setting")

    # ------------------------------------------------------------- audit, backup

    def audit_log(self, *, action: str | None = None, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
        """Audit entries, newest first."""
        return self.read(lambda conn: audit_log.entries(conn, action=action, limit=limit, offset=offset))

    def audit(self, action: str, details: dict[str, Any]) -> None:
        """Record an operator action the gallery does not perform itself (e.g. an export made elsewhere)."""
        act = check_text(action, "action", max_len=100)
        self._write(lambda conn: self._audit(conn, act, details), "audit")

    def backup(self, dest: str | Path, *, overwrite: bool = False, pages: int = 1024) -> Path:
        """Copy the live gallery to ``dest`` with SQLite's online backup API, a few pages at a time so the
        writer keeps going. The copy is owner-only, and checked before it is put in place. Audited."""
        target = maintenance.backup(self._reader(), Path(dest), overwrite=overwrite, pages=pages, key=self.key)
        self._post_audit("backup", {"to": str(target)})
        return target

    def integrity_check(self) -> str:
        """``ok``, or SQLite's description of what is damaged."""
        return self.read(maintenance.integrity)

    def stats(self) -> dict[str, int]:
        """Row counts per table and the file size, for status displays."""
        return self.read(lambda conn: {**maintenance.table_counts(conn), "bytes": self.path.stat().st_size})
