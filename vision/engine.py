"""One camera's recognition engine: frame in, what it did out.

:meth:`CameraEngine.process` takes one frame and returns a :class:`FrameOutcome`: the frame's faces with
their tracks and decisions, the tracks that ended (each becomes a sighting), and the CPU each stage took.
It owns the camera's face source (and so its detection schedule), its tracker, and the timing of the
embed and match steps it runs for the tracker. Nothing is reported through side channels: the caller
(the live service's workers, a worker process, ``main.py scan``) decides what to do with the outcome.

An engine serves one camera and is not thread-safe: its caller runs one frame at a time through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vision.decision import Confirmer, Decider
from vision.evidence import Evidence, Judge, Moment, Verdict
from vision.face_sources import FaceSource, FoundBy, LiveSettings
from vision.faces import Decision, DecisionState
from vision.frames import CameraFrame
from vision.results import FrameResult
from vision.stages import Stage, StageClock, StageTimes
from vision.tracker import Tracker, TrackerConfig, TrackRecord
from vision.types import FloatArray, ImageBGR

Embed = Callable[[Sequence[ImageBGR]], FloatArray]


class FrameLost(RuntimeError):
    """A frame lost for a reason outside it (the worker holding it died): counted, said in one line."""


@dataclass(frozen=True, slots=True)
class FrameOutcome:
    """What one frame's processing did. ``first_decisions_ms``: for each track decided for the first time in
    this frame, the time since its first frame arrived at the station."""

    result: FrameResult
    ended: tuple[TrackRecord, ...]
    times: StageTimes
    by: FoundBy
    whole: bool = False
    fell_back: bool = False
    looks: int = 0
    first_decisions_ms: tuple[float, ...] = field(default=())
    live_tracks: int = 0  # the camera's live tracks after this frame
    confirmed: int = 0  # names the photo model confirmed in this frame
    refused: int = 0  # live proposals the photo model refused (the tracks stay unknown)


class _TimedConfirmer:
    """The photo model of one frame's decisions, timed as the confirm stage on that frame's clock."""

    def __init__(self, confirmer: Confirmer, clock: StageClock) -> None:
        self._confirmer = confirmer
        self._clock = clock

    @property
    def model(self) -> str:
        return self._confirmer.model

    def embed_moments(self, moments: Sequence[Moment]) -> FloatArray | None:
        with self._clock.timing(Stage.CONFIRM, len(moments)):
            return self._confirmer.embed_moments(moments)


class _TimedJudge:
    """One frame's judge: the decider bound to this engine's photo model, its decisions timed as the match
    stage (less the photo model's own time, which is the confirm stage)."""

    def __init__(self, decider: Decider, confirmer: Confirmer | None, clock: StageClock) -> None:
        self._judge: Judge = decider.bind(None if confirmer is None else _TimedConfirmer(confirmer, clock))
        self._clock = clock
        self.seconds = 0.0
        self.confirmed = self.refused = 0

    @property
    def revision(self) -> int:
        return self._judge.revision

    def decide(self, evidence: Evidence, previous: Decision) -> Verdict:
        began = time.thread_time()
        try:
            verdict = self._judge.decide(evidence, previous)
        finally:
            self.seconds += time.thread_time() - began
        if verdict.confirmation is not None:
            self.confirmed += verdict.confirmation.passed
            self.refused += not verdict.confirmation.passed
        return verdict

    def settle(self) -> None:
        """Add this frame's matching time to the clock (what the photo model took is confirm time already)."""
        self._clock.add(Stage.MATCH, max(0.0, self.seconds - self._clock.seconds(Stage.CONFIRM)))


class CameraEngine:
    """See the module docstring. ``embed`` embeds aligned crops for the tracker (None: only faces that come
    embedded are used); ``confirmer`` is the photo model that confirms proposed names (None: not here)."""

    def __init__(
        self,
        camera: str,
        source: FaceSource,
        embed: Embed | None,
        tracker: TrackerConfig | None = None,
        confirmer: Confirmer | None = None,
    ) -> None:
        self.camera = camera
        self._source = source
        self._embed = embed
        self._confirmer = confirmer
        self._tracker = Tracker(camera, tracker)
        self._undecided: dict[str, float] = {}  # track -> when its first decisive frame arrived, until decided
        self._decided: set[str] = set()  # live tracks decided once (their first decision is counted)

    @property
    def live_tracks(self) -> int:
        return self._tracker.live

    def process(
        self, frame: CameraFrame, decider: Decider | None, settings: LiveSettings, now: float | None = None
    ) -> FrameOutcome:
        """Find, track and decide the faces of ``frame``; ``now`` is the station's monotonic clock (default: the
        time of each step), which ends tracks unseen for too long. FrameDecodeError for a frame that does not decode."""
        clock = StageClock()

        def hints() -> list[tuple[float, float, float, float]]:
            return self._tracker.recent_boxes(time.monotonic() if now is None else now, settings.hint_age_s)

        found = self._source.find(frame, hints, settings, clock)
        judge = None if decider is None else _TimedJudge(decider, self._confirmer, clock)
        began = time.thread_time()
        update = self._tracker.update(
            found.faces,
            at=frame.captured_at,
            now=time.monotonic() if now is None else now,  # after detection: when these faces were last seen
            frame=found.frame,
            embed=None if self._embed is None else self._timed_embed(clock),
            judge=judge,
        )
        took = time.thread_time() - began
        if judge is not None:
            judge.settle()
        decided = clock.seconds(Stage.MATCH) + clock.seconds(Stage.CONFIRM)
        clock.add(Stage.TRACK, max(0.0, took - clock.seconds(Stage.EMBED) - decided))
        done = time.time()
        result = FrameResult(
            camera=frame.camera,
            frame_id=frame.frame_id,
            captured_at=frame.captured_at,
            faces=tuple(f.without_pixels() for f in update.faces),
            latency_ms=(done - frame.captured_at) * 1000.0,
            recognised_at=done,
        )
        return FrameOutcome(
            result=result,
            ended=update.ended,
            times=clock.times(),
            by=found.by,
            whole=found.whole,
            fell_back=found.fell_back,
            looks=sum(1 for f in update.faces if f.look is not None),
            first_decisions_ms=self._first_decisions(result, frame.received_at, update.ended),
            live_tracks=self._tracker.live,
            confirmed=0 if judge is None else judge.confirmed,
            refused=0 if judge is None else judge.refused,
        )

    def expire(self, now: float | None = None) -> list[TrackRecord]:
        """End the tracks unseen for too long (the camera went quiet)."""
        ended = self._tracker.expire(time.monotonic() if now is None else now)
        self._forget(ended)
        return ended

    def flush(self) -> list[TrackRecord]:
        """End every live track (the engine stops)."""
        ended = self._tracker.flush()
        self._forget(ended)
        return ended

    def _timed_embed(self, clock: StageClock) -> Embed:
        assert self._embed is not None
        embed = self._embed

        def timed(crops: Sequence[ImageBGR]) -> FloatArray:
            with clock.timing(Stage.EMBED, len(crops)):
                return embed(crops)

        return timed

    def _first_decisions(self, result: FrameResult, arrived: float, ended: Sequence[TrackRecord]) -> tuple[float, ...]:
        """Per track decided in this frame for the first time, the ms since the first frame that could decide it
        (its first look within the decide limits) arrived: how long the engine took, not how long a face
        stayed turned away."""
        out: list[float] = []
        limits = self._tracker.config.decide_limits
        for face in result.faces:
            if face.track_id in self._decided:
                continue
            if limits is None or face.quality.reject_reason(limits) is None:
                self._undecided.setdefault(face.track_id, arrived)
            if face.decision.state is not DecisionState.UNDECIDED and face.track_id in self._undecided:
                out.append((result.recognised_at - self._undecided.pop(face.track_id)) * 1000.0)
                self._decided.add(face.track_id)
        self._forget(ended)
        return tuple(out)

    def _forget(self, ended: Sequence[TrackRecord]) -> None:
        for record in ended:
            self._undecided.pop(record.track_id, None)
            self._decided.discard(record.track_id)
