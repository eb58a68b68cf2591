"""A threshold in the operator's words, from the model's calibrated operating points
(vision/embedders/calibrated.py): the Settings dialog explains the station's threshold with it, and a
watchlist's strictness is chosen from the same points. Qt-free."""

from __future__ import annotations

from dataclasses import dataclass

from vision.embedders.calibrated import calibration, expected_at, in_words


def meaning(model: str, threshold: float) -> str:
    """ "At 0.644: about 1 stranger in 100 named; …" ("" for an uncalibrated model)."""
    point = expected_at(model, threshold)
    return "" if point is None else f"At {threshold:.3f}: {in_words(point)}."


@dataclass(frozen=True)
class StrictnessChoice:
    """One choice of a list's strictness: a threshold (None: the station's own), its words, and whether a list
    may have it (a list may be stricter than the station's threshold, never more lenient)."""

    threshold: float | None
    label: str
    allowed: bool


LENIENT = "more lenient than the station's threshold: the engine names nobody below it"


def strictness_choices(model: str, station_threshold: float) -> list[StrictnessChoice]:
    """The station's threshold first, then each calibrated operating point, most lenient first."""
    said = meaning(model, station_threshold)
    words = said.split(": ", 1)[1].rstrip(".") if said else "uncalibrated model"
    out = [StrictnessChoice(None, f"The station's threshold ({station_threshold:.3f}): {words}", True)]
    found = calibration(model)
    for point in sorted(found.operating_points if found else (), key=lambda p: p.threshold):
        allowed = point.threshold >= station_threshold - 1e-9
        label = f"{point.threshold:.3f}: {in_words(point)}" + ("" if allowed else f" ({LENIENT})")
        out.append(StrictnessChoice(point.threshold, label, allowed))
    return out
