"""The one place a live track's identity is decided: from its evidence to a :class:`~vision.faces.Decision`.

:class:`TemplateJudge` matches the track's template (the quality-weighted mean of its decisive looks)
against the gallery like any photo: the threshold, the margin over the runner-up and the negative samples
of :class:`vision.matcher.Matcher`. A track with no look good enough to decide on stays undecided.
"""

from __future__ import annotations

import itertools

from vision.evidence import Evidence
from vision.faces import UNDECIDED, Decision, DecisionState
from vision.matcher import Match, Matcher

_revisions = itertools.count(1)


def next_revision() -> int:
    """A revision number no judge of this process had before (a judge's revision names its rules and gallery)."""
    return next(_revisions)


def decision_of(match: Match, matcher: Matcher) -> Decision:
    """A matcher's answer as a decision (named when it names someone, else unknown, with its score)."""
    if match.person_id is None:
        return Decision(DecisionState.UNKNOWN, score=match.score)
    return Decision(
        DecisionState.NAMED, match.person_id, match.person, match.score, watchlist=matcher.on_watchlist(match.person_id)
    )


class TemplateJudge:
    """Decides a track by matching its template; ``revision`` names the matcher it was made with."""

    def __init__(self, matcher: Matcher | None, revision: int) -> None:
        self.matcher = matcher
        self._revision = revision

    @property
    def revision(self) -> int:
        return self._revision

    def decide(self, evidence: Evidence, previous: Decision) -> Decision:
        if evidence.template is None:
            return UNDECIDED
        if self.matcher is None:  # nothing loaded yet: looked at, compared with no one
            return Decision(DecisionState.UNKNOWN)
        return decision_of(self.matcher.match_one(evidence.template, model=self.matcher.model), self.matcher)
