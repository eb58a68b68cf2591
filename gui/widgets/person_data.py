"""What the Gallery page shows, loaded in a background job: the persons (with their lists), and a person's page:
when and where they were last seen, their sightings (which open in History), their lists, and their enrolled
photos with their quality."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gui.widgets.thumbnails import decode_thumbnail
from storage.gallery import Gallery
from storage.records import EnrolledImage, Person, Sighting
from storage.watchlist_records import Watchlist

SAMPLE_PX = 112
RECENT_SIGHTINGS = 50


@dataclass(frozen=True)
class PersonRow:
    person: Person
    thumbnail: np.ndarray | None  # the first photo's crop, decoded
    lists: tuple[str, ...] = ()  # the lists they are on, by priority


@dataclass(frozen=True)
class ImageTile:
    """One enrolled photo (its samples of every model behind it) and its crop, decoded."""

    image: EnrolledImage
    picture: np.ndarray | None


@dataclass(frozen=True)
class PersonPage:
    person: Person
    images: tuple[ImageTile, ...]
    lists: tuple[Watchlist, ...] = ()  # every list (the person's are ticked)
    on: frozenset[int] = frozenset()  # the ids of the lists they are on
    sightings: tuple[Sighting, ...] = ()  # the newest first; [0] is when and where they were last seen

    @property
    def last_seen(self) -> Sighting | None:
        return self.sightings[0] if self.sightings else None


def load_rows(gallery: Gallery) -> list[PersonRow]:
    lists = {w.id: w.name for w in gallery.watchlists.all()}
    memberships = gallery.watchlists.memberships()
    rows = []
    for p in gallery.persons():
        samples = gallery.samples(p.id) if p.samples else []
        jpeg = gallery.sample_crop(samples[0].id) if samples else None
        names = tuple(lists[i] for i in memberships.get(p.id, ()) if i in lists)
        rows.append(PersonRow(p, decode_thumbnail(jpeg), names))
    return rows


def load_page(gallery: Gallery, person_id: int) -> PersonPage:
    person = gallery.person(person_id)
    tiles = tuple(
        ImageTile(i, decode_thumbnail(gallery.sample_crop(i.sample_ids[0]), SAMPLE_PX))
        for i in gallery.images(person_id)
    )
    on = frozenset(w.id for w in gallery.watchlists.lists_of(person_id))
    seen = gallery.history(person=person_id, limit=RECENT_SIGHTINGS, audit=False)
    return PersonPage(person, tiles, tuple(gallery.watchlists.all()), on, tuple(seen))
