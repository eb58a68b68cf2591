"""What a track has seen: the evidence its decision rests on, and its best moments.

The tracker (vision/tracker.py) gathers it; a :class:`Judge` (vision/decision.py) turns it into a
:class:`vision.faces.Decision`. A :class:`Moment` is one frame of the track kept whole (its JPEG, or the
pixels of recorded footage): the best one becomes the sighting's evidence snapshot, and the best few let
a stronger model confirm a name from the original pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from vision.faces import Decision
from vision.frames import FrameRef
from vision.types import Box, Detection, FloatArray


@dataclass(frozen=True, slots=True)
class Moment:
    """One frame of a track: the whole frame, where the face was in it and how good it was, when, and where
    every other tracked face of that frame was (``faces``: (track id, box); for erasure in snapshots)."""

    frame: FrameRef | None = field(repr=False)
    detection: Detection
    quality: float
    at: float
    faces: tuple[tuple[str, Box], ...] = ()


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The photo model's answer on a proposed name: whether it agreed, on a best look of what quality, and
    its score for that person (None: nothing to look at)."""

    person_id: int
    passed: bool
    quality: float
    score: float | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's answer: the decision, and the confirmation it made for it (None: none was needed or made)."""

    decision: Decision
    confirmation: Confirmation | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """A track's looks so far: the template of its decisive looks (a quality-weighted mean of unit
    embeddings), how many looks it had and how many were good enough to decide on, and its best moments
    (best first). ``template`` is None while no look was good enough."""

    track_id: str
    template: FloatArray | None = field(repr=False)
    looks: int
    good_looks: int
    best_quality: float
    moments: tuple[Moment, ...] = field(default=(), repr=False)
    confirmations: tuple[Confirmation, ...] = ()  # the photo model's answers so far, oldest first


class Judge(Protocol):
    """Decides a track from its evidence. ``revision`` changes whenever the outcome of the same evidence may
    (a new gallery, new settings): the tracker decides a track again when its evidence or the revision changed."""

    @property
    def revision(self) -> int: ...

    def decide(self, evidence: Evidence, previous: Decision) -> Verdict: ...
