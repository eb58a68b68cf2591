"""The demo people: enrolled from the project's demo photos into a gallery that lacks them.

``--demo`` streams the public-domain Hamilton clip (demo/README.md) and, so that the grid names
someone at once, enrols the two people of its reference photos. It only adds what is missing: a
person who already has a sample of the running model is left as the operator made them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from network.demo_senders import demo_media_dir
from station.enrolment import Companion, Observer, enrol_observation
from storage.gallery import Gallery
from vision.pipeline import read_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoPerson:
    name: str
    photo: str  # file name in demo/reference_faces/
    watchlist: bool


DEMO_PEOPLE = (
    DemoPerson("Lin-Manuel Miranda", "lin-manuel-miranda.png", watchlist=False),
    DemoPerson("Alex Lacamoire", "alex-lacamoire.png", watchlist=False),
)


def reference_dir() -> Path:
    return demo_media_dir() / "reference_faces"


def missing_demo_people(gallery: Gallery, model: str) -> list[DemoPerson]:
    """The demo people with no sample of ``model`` in the gallery."""
    have = {name.casefold() for name in gallery.sample_matrix(model).names}
    return [p for p in DEMO_PEOPLE if p.name.casefold() not in have]


def enrol_demo_people(gallery: Gallery, pipeline: Observer, companions: Sequence[Companion] = ()) -> list[str]:
    """Enrol each missing demo person from their reference photo (largest face); returns who was added.

    A photo that is gone or shows no face is logged and skipped: the demo still runs.
    """
    added: list[str] = []
    for person in missing_demo_people(gallery, pipeline.model):
        path = reference_dir() / person.photo
        image = read_image(path)
        if image is None:
            log.warning("demo photo %s is missing or unreadable: %s is not enrolled", path, person.name)
            continue
        faces = pipeline.observe(image)
        if not faces:
            log.warning("no face found in demo photo %s: %s is not enrolled", path, person.name)
            continue
        face = max(faces, key=lambda o: o.detection.box[2] * o.detection.box[3])
        enrol_observation(gallery, person.name, face, f"demo:{person.photo}", image=image, companions=companions)
        if person.watchlist:
            gallery.set_watchlist(person.name, True)
        added.append(person.name)
    if added:
        log.info("demo: enrolled %s from demo/reference_faces", ", ".join(added))
    return added
