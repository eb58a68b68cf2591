"""Frozen records that cross thread and module boundaries: what goes into the gallery and what comes out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Box = tuple[float, float, float, float]

# A sighting's decision state: named (someone enrolled), unknown (looked at well, nobody close enough), or
# undecided (no look was good enough to decide). The values of vision.faces.DecisionState (storage does not
# import vision; a test ties the two).
STATES = ("named", "unknown", "undecided")


@dataclass(frozen=True)
class SnapshotFace:
    """A face seen in a sighting's evidence snapshot: the track it belonged to (track ids are unique only
    within one station run, on one camera) and its box (x, y, w, h) in the snapshot's pixels. Erasing a
    person blurs their box in the other sightings' snapshots by this (storage.redaction)."""

    track: str
    box: Box


@dataclass(frozen=True)
class NewSighting:
    """One track's sighting, as the recogniser hands it to ``Gallery.record_sightings``.

    ``start``/``end`` are epoch seconds (UTC); ``person_id`` is None for an unknown or undecided face; ``box`` is
    x, y, w, h. ``score`` is the best enrolled person's, None where the face was compared with no one (an empty
    gallery, or undecided). ``state`` is one of :data:`STATES` ("" : named when it names someone, else unknown).
    """

    camera: str
    start: float
    end: float
    person_id: int | None
    score: float | None
    box: Box
    crop_jpeg: bytes
    embedding: npt.NDArray[np.float32] | None
    model: str
    track: str
    quality: float | None = None  # the best crop's quality score (vision/quality.py), None when not measured
    # The evidence snapshot: the whole frame of the track's best moment as JPEG (at most 960 px wide), and
    # the face's box in the snapshot's pixels. Empty bytes: none (a remote worker, a frame not kept).
    snapshot_jpeg: bytes = b""
    snapshot_box: Box | None = None
    # Every face in the snapshot's frame, with its track (this sighting's own face among them, or not), and
    # when the frame was taken (epoch seconds); () and None when the engine did not record them.
    snapshot_faces: tuple[SnapshotFace, ...] = ()
    snapshot_at: float | None = None
    state: str = ""


@dataclass(frozen=True)
class Snapshot:
    """A sighting's evidence snapshot: the full frame of its best moment, and where the face is in it."""

    jpeg: bytes
    box: Box


@dataclass(frozen=True)
class Sighting:
    """A stored sighting, as history queries return it (the crop itself is fetched with ``Gallery.crop``)."""

    id: int
    camera: str
    start: float
    end: float
    person_id: int | None
    person: str | None
    score: float | None  # None: compared with no one
    box: Box
    has_crop: bool
    model: str
    track: str
    has_snapshot: bool = False
    state: str = "unknown"


@dataclass(frozen=True)
class SampleMatrix:
    """Every sample of one model as one matrix, one row per sample, for a vectorised 1:N match."""

    person_ids: npt.NDArray[np.int64]
    names: tuple[str, ...]
    embeddings: npt.NDArray[np.float32]
    watchlist: npt.NDArray[np.bool_]
    revision: int


@dataclass(frozen=True)
class Person:
    """An enrolled person with the number of samples they have (over every model)."""

    id: int
    name: str
    notes: str
    watchlist: bool
    created: float
    samples: int
    negatives: int
    images: int = 0  # enrolled photos (each holds one sample per model)


@dataclass(frozen=True)
class Sample:
    """One enrolled face sample, without its embedding or crop."""

    id: int
    person_id: int
    model: str
    source: str
    quality: float
    created: float
    image_id: int = 0  # the enrolled photo it was made from (one sample per model shares it)


@dataclass(frozen=True)
class EnrolledImage:
    """One enrolled photo of a person: its samples, one per model, behind one entry. ``id`` is its image id
    (the id of its first sample); ``quality`` the photo's face quality as the first model measured it."""

    id: int
    person_id: int
    source: str
    quality: float
    created: float
    sample_ids: tuple[int, ...]
    models: tuple[str, ...]


@dataclass(frozen=True)
class Cluster:
    """Unknown sightings that look like the same face. ``representative`` is the member nearest the centroid."""

    sighting_ids: tuple[int, ...]
    representative: int
    cohesion: float
    first_seen: float
    last_seen: float
    cameras: tuple[str, ...] = field(default=())

    @property
    def size(self) -> int:
        return len(self.sighting_ids)


@dataclass(frozen=True)
class AuditEntry:
    """Who did what, when. ``details`` is the JSON text stored with it."""

    id: int
    time: float
    actor: str
    action: str
    details: str


@dataclass(frozen=True)
class RecordedSighting:
    """A sighting the writer thread handled: its row id once committed, None when it could not be recorded
    (the failure is reported as a WriterError). ``camera`` and ``track`` say which track it was."""

    camera: str
    track: str
    id: int | None
    has_crop: bool = False
    has_snapshot: bool = False


@dataclass(frozen=True)
class Inserted:
    """What one insert of sightings did: each one's new row id in the order given (None: dropped, its person
    erased while it waited), and whether stored snapshots were rewritten (the writer then checkpoints the WAL)."""

    ids: list[int | None]
    rewrote: bool


@dataclass(frozen=True)
class WriterError:
    """A sighting batch or gallery job the writer thread could not commit, and why."""

    time: float
    what: str
    message: str
    count: int


@dataclass(frozen=True)
class RetentionResult:
    """What a retention pass removed."""

    sightings_deleted: int
    watchlist_kept: int


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: ``format`` is the table's (csv or json), ``archive`` whether it is in a zip."""

    path: str
    sightings: int
    crops: int
    format: str
    archive: bool = True
