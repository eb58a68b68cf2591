"""Watchlists, plural, on a real gallery file: named lists with their own strictness, cameras, priority, sound
and actions; a person on several; today's boolean moved onto a default list; bad names refused in one line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.schema import MIGRATIONS
from storage.watchlist_records import DEFAULT_LIST, ListAction, Priority

MODEL = "m4"
JPEG = b"\xff\xd8\xff\xd9"


def enrol(gallery: Gallery, name: str, seed: int) -> int:
    emb = np.random.default_rng(seed).standard_normal(4).astype(np.float32)
    gallery.enrol_sample(name, model=MODEL, embedding=emb, crop_jpeg=JPEG, source="t", quality=0.9)
    return gallery.person(name).id


def flags(gallery: Gallery) -> dict[str, bool]:
    """Each person's "on any list" flag as the matcher is built from it."""
    m = gallery.sample_matrix(MODEL)
    return dict(zip(m.names, (bool(x) for x in m.watchlist), strict=True))


def test_lists_with_their_own_rules_and_a_person_on_several(gallery: Gallery) -> None:
    ada, bo = enrol(gallery, "Ada", 1), enrol(gallery, "Bo", 2)
    barred = gallery.watchlists.create(
        "Barred",
        threshold=0.7,
        cameras=["door", "gate"],
        priority=Priority.CRITICAL,
        sound="bell x3",
        actions=[ListAction.QUEUE, ListAction.FOCUS],
        escalate_after_s=60,
    )
    vip = gallery.watchlists.create("VIP", priority=Priority.LOW, actions=[ListAction.TRAY])
    assert (barred.threshold, barred.cameras, barred.priority, barred.sound) == (0.7, ("door", "gate"), 1, "bell x3")
    assert barred.applies_to("door") and not barred.applies_to("lobby") and vip.applies_to("lobby")
    assert barred.strictness(0.644) == 0.7 and vip.strictness(0.644) == 0.644
    assert gallery.watchlists.create("Lenient", threshold=0.5).strictness(0.644) == 0.644, "never under the station's"

    before = gallery.revision()
    assert gallery.watchlists.add("Ada", "barred") and gallery.watchlists.add(ada, vip.id)
    assert not gallery.watchlists.add("ada", "Barred"), "already on it"
    assert gallery.revision() > before, "the matcher and the alarm rules reload"
    assert [w.name for w in gallery.watchlists.lists_of("Ada")] == ["Barred", "VIP"]
    assert flags(gallery) == {"Ada": True, "Bo": False} and gallery.person("Ada").watchlist
    assert gallery.watchlists.memberships() == {ada: (barred.id, vip.id)}

    gallery.watchlists.remove("Ada", "Barred")
    assert flags(gallery)["Ada"], "still on VIP: still on a list"
    gallery.watchlists.set_lists("Bo", ["Barred", "VIP"])
    gallery.watchlists.set_lists("Ada", [])
    assert flags(gallery) == {"Ada": False, "Bo": True}
    assert [p for p, _ in gallery.watchlists.members("VIP")] == [bo]

    changed = gallery.watchlists.update("VIP", cameras=["lobby"], priority=Priority.HIGH, name="Guests")
    assert (changed.name, changed.cameras, changed.priority, changed.members) == ("Guests", ("lobby",), 2, 1)
    entries = [json.loads(e.details) for e in gallery.audit_log(action="watchlist")]
    assert {"person": "Ada", "list": "Barred", "added": False, "on": True}.items() <= entries[-3].items()
    assert entries[0]["person"] == "Ada" and entries[0]["on"] is False
    (update,) = gallery.audit_log(action="watchlist_updated")
    assert json.loads(update.details)["from"]["list"] == "VIP"


def test_bad_list_names_are_refused_with_one_line(gallery: Gallery) -> None:
    gallery.watchlists.create("Staff")
    for name, message in (
        ("", "watchlist name is empty"),
        ("   ", "watchlist name is empty"),
        ("x" * 61, "watchlist name is longer than 60 characters"),
        ("bad\nname", "watchlist name contains control characters"),
        ("STAFF", "a watchlist named 'STAFF' already exists"),
    ):
        with pytest.raises(GalleryError, match=message):
            gallery.watchlists.create(name)
    gallery.watchlists.create("Cleaners")
    with pytest.raises(GalleryError, match="a watchlist named 'staff' already exists"):
        gallery.watchlists.update("Cleaners", name="staff")
    with pytest.raises(GalleryError, match="strictness of 'X' must be a threshold between 0 and 1"):
        gallery.watchlists.create("X", threshold=1.5)
    with pytest.raises(GalleryError, match="sound of 'X' must be one of"):
        gallery.watchlists.create("X", sound="siren.wav")
    with pytest.raises(GalleryError, match="no watchlist named 'Nope'"):
        gallery.watchlists.get("Nope")
    assert [w.name for w in gallery.watchlists.all()] == ["Cleaners", "Staff", DEFAULT_LIST]


def test_deleting_a_list_or_a_person_on_one_keeps_everything_else_consistent(gallery: Gallery) -> None:
    enrol(gallery, "Ada", 1)
    enrol(gallery, "Bo", 2)
    gallery.watchlists.create("Barred")
    gallery.watchlists.create("Staff")
    gallery.watchlists.set_lists("Ada", ["Barred"])
    gallery.watchlists.set_lists("Bo", ["Barred", "Staff"])
    assert gallery.watchlists.delete("Barred") == 2
    assert [p.name for p in gallery.persons()] == ["Ada", "Bo"], "the persons stay"
    assert flags(gallery) == {"Ada": False, "Bo": True}, "Ada was on no other list"
    gallery.delete_person("Bo")
    assert gallery.watchlists.get("Staff").members == 0
    (entry,) = gallery.audit_log(action="watchlist_deleted")
    assert json.loads(entry.details)["members"] == 2


def test_a_merge_keeps_both_persons_lists(gallery: Gallery) -> None:
    enrol(gallery, "Ada", 1)
    enrol(gallery, "Ada L", 2)
    gallery.watchlists.create("VIP")
    gallery.watchlists.set_lists("Ada L", ["VIP"])
    gallery.set_watchlist("Ada", True)
    gallery.merge("Ada L", "Ada")
    assert [w.name for w in gallery.watchlists.lists_of("Ada")] == ["VIP", DEFAULT_LIST]
    gallery.set_watchlist("Ada", False)
    assert gallery.watchlists.lists_of("Ada") == [] and not gallery.person("Ada").watchlist


def test_todays_watchlist_flag_becomes_the_default_list(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    (mine,) = [i for i, m in enumerate(MIGRATIONS) if m.name == "watchlists"]
    for step in MIGRATIONS[:mine]:
        for sql in step.statements:
            conn.execute(sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (step.version, step.name))
    conn.execute(f"PRAGMA user_version = {MIGRATIONS[mine - 1].version}")
    conn.execute("INSERT INTO persons (name, watchlist, created) VALUES ('Ada', 1, 0), ('Bo', 0, 0)")
    conn.close()
    with Gallery.open(path) as g:
        (default,) = g.watchlists.all()
        assert (default.name, default.members, default.threshold, default.cameras) == (DEFAULT_LIST, 1, None, ())
        assert [name for _, name in g.watchlists.members(DEFAULT_LIST)] == ["Ada"]
        assert [(p.name, p.watchlist) for p in g.persons()] == [("Ada", True), ("Bo", False)]
        g.watchlists.delete(DEFAULT_LIST)
        assert not g.person("Ada").watchlist
        g.set_watchlist("Bo", True)  # the default list comes back when it is needed
        assert [w.name for w in g.watchlists.lists_of("Bo")] == [DEFAULT_LIST]
