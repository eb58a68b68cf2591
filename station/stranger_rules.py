"""Stranger alarms an operator can live with: an unknown face raises one only on the chosen cameras, in the
chosen hours, and once the same face has come back as often as asked within the window; then one alarm per
face and window (its later returns are counted on that alarm), never one per frame or per track.

"The same face" is the same unknown cluster as the Unknown faces page forms them (``Gallery.unknown_clusters``:
single linkage at ``SAME_FACE`` over the stored embeddings), here over the window's unknown sightings: the
sighting's cluster must hold as many sightings as asked, and an alarm raised in the window for any sighting
of that cluster takes this one as another hit. The settings (station/settings.py) are read on each
sighting, so a change in the Settings dialog holds from the next one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from station import settings as table
from station.settings import camera_names, parse_hours
from storage.alarm_records import AlarmKind
from storage.gallery import Gallery

log = logging.getLogger(__name__)

SAME_FACE = 0.7  # cosine over which two unknown sightings are one face (the Unknown faces page's default)
MAX_FACES = 3000  # the window's newest unknown sightings clustered (the Unknown faces page's bound)
NAMES = ("alerts_unknown", "strangers_cameras", "strangers_hours", "strangers_returns", "strangers_window_min")


@dataclass(frozen=True)
class StrangerPolicy:
    """What the stranger settings ask for."""

    on: bool
    cameras: tuple[str, ...]  # empty: every camera
    hours: tuple[int, int] | None  # minutes after midnight, local time; None: at any hour
    returns: int
    window_s: float

    def applies(self, camera: str, at: float) -> bool:
        if not self.on or (self.cameras and camera not in self.cameras):
            return False
        if self.hours is None:
            return True
        local = time.localtime(at)
        minute = local.tm_hour * 60 + local.tm_min
        start, end = self.hours
        return start <= minute < end if start < end else (minute >= start or minute < end)

    @classmethod
    def from_gallery(cls, gallery: Gallery, model: str) -> StrangerPolicy:
        v = table.load(gallery.get_setting, model, NAMES, strict=False)
        return cls(
            on=bool(v["alerts_unknown"]),
            cameras=camera_names(str(v["strangers_cameras"])),
            hours=parse_hours(str(v["strangers_hours"])),
            returns=int(v.number("strangers_returns")),
            window_s=v.number("strangers_window_min") * 60.0,
        )


class StrangerRules:
    """Called by the alarm rules with each recorded unknown sighting; see the module docstring."""

    def __init__(self, gallery: Gallery, policy: Callable[[], StrangerPolicy]) -> None:
        self.gallery = gallery
        self._policy = policy

    def consider(self, camera: str, track: str, sighting_id: int, at: float) -> None:
        policy = self._policy()
        if not policy.applies(camera, at):
            return
        stored = self.gallery.sighting_embedding(sighting_id)
        if stored is None:
            return  # no embedding (a face never embedded): it cannot be counted as anyone's return
        since = at - policy.window_s
        clusters = self.gallery.unknown_clusters(
            stored[0], threshold=SAME_FACE, since=since, min_size=1, max_faces=MAX_FACES
        )
        same = next((set(c.sighting_ids) for c in clusters if sighting_id in c.sighting_ids), {sighting_id})
        if len(same) < policy.returns:
            return
        detail = f"seen {len(same)} times in {policy.window_s / 60:.0f} min"
        earlier = [
            a
            for a in self.gallery.alarms.query(kind=AlarmKind.STRANGER, limit=200)
            if a.raised >= since and a.sighting_id in same
        ]
        if earlier:
            self.gallery.alarms.hit(earlier[0].id, at=at, detail=detail)
            return
        self.gallery.alarms.raise_stranger(camera=camera, track=track, at=at, detail=detail, sighting_id=sighting_id)
