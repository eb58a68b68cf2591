"""How a match score is shown: not at all where there was no one to compare the face with.

vision's matcher scores a face against an empty gallery (or a lone person's runner-up) with
``NO_SCORE`` (-1, the lowest cosine possible). That is "no comparison", not a score: the tile, the
alerts and the history show nothing for it rather than "-1.00". Qt-free.
"""

from __future__ import annotations

from vision.matcher import NO_SCORE

NO_SCORE_TEXT = "—"


def compared(score: float | None) -> float | None:
    """``score``, or None where the face was compared with no one (``score <= NO_SCORE``)."""
    if score is None or score <= NO_SCORE:
        return None
    return float(score)


def score_text(score: float | None, digits: int = 3, none: str = NO_SCORE_TEXT) -> str:
    """``score`` with ``digits`` decimals, or ``none`` where there was no comparison."""
    value = compared(score)
    return none if value is None else f"{value:.{digits}f}"
