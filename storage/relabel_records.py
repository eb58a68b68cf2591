"""A relabelling as the gallery hands it out: past sightings named as a person in one batch, reversible."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RelabelBatch:
    """One relabelling: who did it when, for whom and why, the sightings it named, and whether it was undone."""

    id: int
    time: float
    actor: str
    person_id: int | None
    reason: str
    undone: float | None
    undone_by: str | None
    sighting_ids: tuple[int, ...]
