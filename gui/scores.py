"""How a match score is shown: not at all where there was no one to compare the face with.

A score of None means the face was compared with no one (an empty gallery) or not decided yet: the tile,
the alerts and the history show nothing for it. Qt-free.
"""

from __future__ import annotations

NO_SCORE_TEXT = "—"


def score_text(score: float | None, digits: int = 3, none: str = NO_SCORE_TEXT) -> str:
    """``score`` with ``digits`` decimals, or ``none`` where there was no comparison."""
    return none if score is None else f"{score:.{digits}f}"
