"""The live engine's one face record, from detection through tracking to the decision and the sighting.

A :class:`Face` is made by a face source (station detection, the camera's own crops, a remote worker)
with its detection, quality and aligned crop; the tracker hands the same record back with its track id,
why it was looked at (embedded) this frame, and the track's :class:`Decision`. What leaves the engine
(:class:`vision.results.FrameResult`) carries these records without their pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from vision.quality import Quality
from vision.types import Box, Detection, FloatArray, ImageBGR, Landmarks


class DecisionState(StrEnum):
    """What a track is taken for.

    ``undecided``: no look at its face was good enough to decide yet (turned away, blurred, too small);
    ``unknown``: looked at well, and nobody enrolled is close enough; ``named``: someone enrolled.
    """

    NAMED = "named"
    UNKNOWN = "unknown"
    UNDECIDED = "undecided"


class Look(StrEnum):
    """Why a face was embedded this frame (the tracker embeds only what adds information)."""

    NEW = "new"  # the first face of a new track
    VERIFY = "verify"  # linked on weak evidence (little overlap, a changed look)
    RETURN = "return"  # seen again after a gap: at a doorway, the next person appears where the last one was
    BETTER = "better"  # better quality than the track's best so far
    RECHECK = "recheck"  # the periodic check that the track still holds the same face
    GIVEN = "given"  # it arrived embedded (a remote worker embeds every face)


@dataclass(frozen=True, slots=True)
class Decision:
    """A track's identity so far. ``score`` is the best enrolled person's (also when unknown); None when
    undecided or when nobody is enrolled (compared with no one)."""

    state: DecisionState = DecisionState.UNDECIDED
    person_id: int | None = None
    person: str | None = None
    score: float | None = None
    watchlist: bool = False

    @property
    def named(self) -> bool:
        return self.state is DecisionState.NAMED


UNDECIDED = Decision()


@dataclass(frozen=True, slots=True)
class Face:
    """One face of one frame; see the module docstring.

    ``crop`` is the face aligned for the live embedder (None once the frame is done with);
    ``embedding`` is set when the face came embedded or was looked at this frame.
    """

    detection: Detection
    quality: Quality
    model: str
    crop: ImageBGR | None = field(default=None, repr=False, compare=False)
    embedding: FloatArray | None = field(default=None, repr=False, compare=False)
    track_id: str = ""
    decision: Decision = UNDECIDED
    look: Look | None = None
    new_track: bool = False

    @property
    def box(self) -> Box:
        return self.detection.box

    @property
    def landmarks(self) -> Landmarks:
        return self.detection.landmarks

    @property
    def person(self) -> str | None:
        return self.decision.person

    @property
    def score(self) -> float | None:
        return self.decision.score

    def without_pixels(self) -> Face:
        """This face without its crop and embedding: what results keep for the console and the stats."""
        return replace(self, crop=None, embedding=None)
