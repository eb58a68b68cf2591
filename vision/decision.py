"""The one place a live track's identity is decided: from its evidence to a :class:`~vision.faces.Decision`.

Three steps, each with a reason:

1. **Undecided until a good look.** A track whose looks were all poor (turned away, blurred, too small: the
   tracker's ``decide_limits``) has no template and stays undecided: no name, no score, no unknown sighting.
2. **The live model proposes.** The template of the track's good looks is matched against the live model's
   gallery (``facenet-512``) like any photo: the operator's threshold, the margin over the runner-up, the
   negative samples (:class:`vision.matcher.Matcher`). Nobody close enough: unknown, with the best score.
3. **The photo model confirms.** A proposed name is shown, recorded or alarmed only once the stronger photo
   model (``fusion-640``) agrees on the track's best moment, cut from its original frame: the same person,
   at the photo model's threshold for the same strictness. A track sees many faces and makes many
   comparisons, and any one of them can name a stranger; the confirmation costs a few photo-model embeddings
   per proposal, not one per frame. A refused proposal leaves the track unknown and is counted; it is tried
   again only when the track's best look has improved by ``retry_gain``.

A :class:`Decider` is plain data (matchers and rules, picklable for worker processes); each engine binds it to
its own photo model (a :class:`Confirmer`) as a :class:`vision.evidence.Judge`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vision.evidence import Confirmation, Evidence, Moment, Verdict
from vision.faces import UNDECIDED, Decision, DecisionState
from vision.matcher import Match, Matcher
from vision.types import FloatArray

_revisions = itertools.count(1)


def next_revision() -> int:
    """A revision number no decider of this process had before (a decider's revision names its rules and gallery)."""
    return next(_revisions)


def decision_of(match: Match, matcher: Matcher) -> Decision:
    """A matcher's answer as a decision (named when it names someone, else unknown, with its score)."""
    if match.person_id is None:
        return Decision(DecisionState.UNKNOWN, score=match.score)
    return Decision(
        DecisionState.NAMED, match.person_id, match.person, match.score, watchlist=matcher.on_watchlist(match.person_id)
    )


class Confirmer(Protocol):
    """The photo model, where an engine runs: embeddings of the faces of a track's best moments (from their
    original frames), or None when none of their frames can be read."""

    @property
    def model(self) -> str: ...

    def embed_moments(self, moments: Sequence[Moment]) -> FloatArray | None: ...


@dataclass(frozen=True, slots=True)
class ConfirmRules:
    """How the photo model confirms: its matcher (its own threshold and margin), how many best moments it looks
    at, and how much the track's best look must improve before a refused proposal is tried again."""

    matcher: Matcher
    # The track's best moment alone: on the doorway sets two moments decided exactly as one, at twice the cost.
    moments: int = 1
    retry_gain: float = 0.1


@dataclass(frozen=True)
class Decider:
    """The live matcher and, optionally, the photo model's confirmation; ``revision`` names both."""

    live: Matcher | None
    revision: int
    confirm: ConfirmRules | None = None

    def bind(self, confirmer: Confirmer | None) -> BoundJudge:
        """This decider as a tracker's judge, confirming with ``confirmer`` (None: no confirmation here)."""
        return BoundJudge(self, confirmer)

    def decide(self, evidence: Evidence, previous: Decision, confirmer: Confirmer | None) -> Verdict:
        if evidence.template is None:
            return Verdict(UNDECIDED)
        if self.live is None:  # nothing loaded yet: looked at, compared with no one
            return Verdict(Decision(DecisionState.UNKNOWN))
        proposal = decision_of(self.live.match_one(evidence.template, model=self.live.model), self.live)
        if proposal.person_id is None or self.confirm is None or confirmer is None:
            return Verdict(proposal)
        return self._confirmed(proposal, evidence, confirmer, self.confirm)

    def _confirmed(self, proposal: Decision, evidence: Evidence, confirmer: Confirmer, rules: ConfirmRules) -> Verdict:
        assert proposal.person_id is not None
        if not rules.matcher.knows(proposal.person_id):
            return Verdict(proposal)  # enrolled before the photo model was: nothing to confirm against
        earlier = [c for c in evidence.confirmations if c.person_id == proposal.person_id]
        if earlier and earlier[-1].passed:
            return Verdict(proposal)
        if earlier and evidence.best_quality < earlier[-1].quality + rules.retry_gain:
            return Verdict(_refused(proposal))  # refused on as good a look: not asked again yet
        check = _check(proposal, evidence, confirmer, rules)
        return Verdict(proposal if check.passed else _refused(proposal), check)


def _refused(proposal: Decision) -> Decision:
    """A proposal the photo model did not confirm: unknown, with the live model's score."""
    return Decision(DecisionState.UNKNOWN, score=proposal.score)


def _check(proposal: Decision, evidence: Evidence, confirmer: Confirmer, rules: ConfirmRules) -> Confirmation:
    assert proposal.person_id is not None
    rows = confirmer.embed_moments(evidence.moments[: rules.moments])
    quality = evidence.best_quality
    if rows is None or len(rows) == 0:
        return Confirmation(proposal.person_id, False, quality, None)
    template = np.asarray(rows, dtype=np.float32).mean(axis=0)
    match = rules.matcher.match_one(template / max(float(np.linalg.norm(template)), 1e-12), model=rules.matcher.model)
    return Confirmation(proposal.person_id, match.person_id == proposal.person_id, quality, match.score)


class BoundJudge:
    """A :class:`Decider` bound to one engine's photo model: what the tracker calls (vision.evidence.Judge)."""

    def __init__(self, decider: Decider, confirmer: Confirmer | None) -> None:
        self.decider = decider
        self._confirmer = confirmer

    @property
    def revision(self) -> int:
        return self.decider.revision

    def decide(self, evidence: Evidence, previous: Decision) -> Verdict:
        return self.decider.decide(evidence, previous, self._confirmer)
