"""Unknown faces: the newest unknown sightings grouped into clusters of one face (storage.clusters does the
numpy), and a cluster made into a person in one step (its sightings become theirs, a few become samples)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np

from storage import clusters, people
from storage.codec import blobs_to_matrix, normalise_rows
from storage.errors import GalleryError
from storage.records import Cluster
from storage.timeutil import iso

NEAR_DUPLICATE = 0.97  # cosine over which two faces of one cluster are the same picture for enrolment


def newest_unknown(
    conn: sqlite3.Connection, model: str, since: float | None, max_faces: int
) -> tuple[list[tuple[Any, ...]], int]:
    """(id, started, camera, embedding) of the newest ``max_faces`` unknown sightings of ``model`` that carry
    an embedding, and the model's dimension (no rows when the model is unknown)."""
    dim = people.model_dim(conn, model)
    if dim is None:
        return [], 0
    rows = conn.execute(
        "SELECT s.id, s.started, s.camera, e.embedding FROM sightings s "
        "JOIN sighting_embeddings e ON e.sighting_id = s.id "
        "WHERE s.person_id IS NULL AND s.state = 'unknown' AND e.model = ? AND s.started >= ? "
        "ORDER BY s.started DESC LIMIT ?",
        (model, -math.inf if since is None else since, int(max_faces)),
    ).fetchall()
    return rows, dim


def group(rows: Sequence[tuple[Any, ...]], dim: int, threshold: float, min_size: int) -> list[Cluster]:
    """Rows from :func:`newest_unknown` as clusters (single linkage at cosine >= ``threshold``), largest first."""
    if not rows:
        return []
    unit = normalise_rows(blobs_to_matrix([r[3] for r in rows], dim))
    out = []
    for members in clusters.cluster_rows(unit, threshold, max(1, int(min_size))):
        rep, cohesion = clusters.representative(unit, members)
        starts = [float(rows[m][1]) for m in members]
        out.append(
            Cluster(
                sighting_ids=tuple(sorted(int(rows[m][0]) for m in members)),
                representative=int(rows[rep][0]),
                cohesion=cohesion,
                first_seen=min(starts),
                last_seen=max(starts),
                cameras=tuple(sorted({str(rows[m][2]) for m in members})),
            )
        )
    return out


def promote(conn: sqlite3.Connection, ids: Sequence[int], name: str, samples: int) -> tuple[int, int]:
    """Make person ``name`` from unknown sightings ``ids``: they become theirs, and up to ``samples`` of them
    (with an embedding; the best measured quality first, then the newest, skipping near-duplicates of a face
    already taken) become samples with their crops and that quality. The sightings keep the score they were
    recorded with. Returns (person id, samples made)."""
    if people.find(conn, name) is not None:
        raise GalleryError(f"a person named {name!r} already exists")
    found = {}
    for sid in ids:
        r = conn.execute(
            "SELECT s.person_id, s.camera, s.started, s.quality, e.model, e.embedding, c.jpeg FROM sightings s "
            "LEFT JOIN sighting_embeddings e ON e.sighting_id = s.id "
            "LEFT JOIN sighting_crops c ON c.sighting_id = s.id WHERE s.id = ?",
            (sid,),
        ).fetchone()
        if r is None:
            raise GalleryError(f"sighting {sid} no longer exists")
        if r[0] is not None:
            raise GalleryError(f"sighting {sid} is no longer unknown")
        found[sid] = r
    pid = people.create(conn, name)
    conn.executemany("UPDATE sightings SET person_id = ? WHERE id = ?", [(pid, sid) for sid in ids])
    enrolled = 0
    taken: list[np.ndarray] = []
    # Best quality first (sightings recorded before it was stored have none: they come last), then newest.
    for sid in sorted(found, key=lambda i: (found[i][3] is not None, found[i][3] or 0.0, i), reverse=True):
        _, camera, started, quality, model, emb, crop = found[sid]
        if enrolled >= samples or emb is None:
            continue
        unit = normalise_rows(np.frombuffer(emb, dtype="<f4").reshape(1, -1))[0]
        if any(len(t) == len(unit) and float(t @ unit) >= NEAR_DUPLICATE for t in taken):
            continue  # the same face again (a still camera, a looped clip): it adds nothing to the matcher
        taken.append(unit)
        source = f"sighting {sid} ({camera}, {iso(float(started))})"
        people.add_sample(conn, pid, model, emb, crop, source, 0.0 if quality is None else float(quality))
        enrolled += 1
    return pid, enrolled
