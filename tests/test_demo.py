"""The demo as a newcomer gets it: real faces named and unknown within a minute, from the project's own media.

Nothing here reads ../shared: the demo cameras stream demo/short_hamilton_clip.mp4 and the demo
people are enrolled from demo/reference_faces/, both shipped in the project (demo/README.md).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from cli.common import resolve_gallery
from gui.app import ConsoleOptions, build_services
from gui.main_window import MainWindow
from gui.overlay import FaceState
from network.demo_senders import DEMO_CLIP, demo_media_dir, demo_source_args
from station.demo import DEMO_PEOPLE, enrol_demo_people, missing_demo_people, reference_dir
from storage import locations
from storage.gallery import Gallery
from vision.pipeline import FacePipeline

pytestmark = pytest.mark.slow


def test_the_demo_media_ships_in_the_project_and_is_small() -> None:
    media = demo_media_dir()
    assert (media / DEMO_CLIP).is_file() and (media / "README.md").is_file()
    for person in DEMO_PEOPLE:
        assert (reference_dir() / person.photo).is_file()
    total = sum(p.stat().st_size for p in media.rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024, f"demo media is {total} bytes"
    readme = (media / "README.md").read_text()
    assert "public domain" in readme and all(p.photo in readme for p in DEMO_PEOPLE)


def test_the_two_demo_cameras_show_the_clip_from_different_starting_points() -> None:
    first, second = demo_source_args(0), demo_source_args(1)
    assert first[:2] == second[:2] == ["--source", str(demo_media_dir() / DEMO_CLIP)]
    assert first[first.index("--start") + 1] != second[second.index("--start") + 1]
    assert "--loop" in first and "--loop" in second


def test_a_demo_without_gallery_uses_its_own_gallery() -> None:
    demo = argparse.Namespace(gallery=None, demo=True)
    resolve_gallery(demo)
    assert Path(demo.gallery) == locations.demo_gallery() != locations.default_gallery()
    real = argparse.Namespace(gallery=None, demo=False)
    resolve_gallery(real)
    assert Path(real.gallery) == locations.default_gallery()
    named = argparse.Namespace(gallery="/tmp/somewhere/g.db", demo=True)
    resolve_gallery(named)
    assert named.gallery == "/tmp/somewhere/g.db", "--demo --gallery G uses G"


def test_demo_people_are_enrolled_only_where_the_gallery_lacks_them(tmp_path: Path, pipeline: FacePipeline) -> None:
    with Gallery.open(tmp_path / "g.db") as gallery:
        assert sorted(enrol_demo_people(gallery, pipeline)) == sorted(p.name for p in DEMO_PEOPLE)
        assert missing_demo_people(gallery, pipeline.model) == []
        assert enrol_demo_people(gallery, pipeline) == [], "a second start adds nothing"
        assert sum(p.samples for p in gallery.persons()) == len(DEMO_PEOPLE)
    with Gallery.open(tmp_path / "mine.db") as gallery:  # the operator enrolled Miranda their own way
        from vision.pipeline import read_image

        image = read_image(reference_dir() / "lin-manuel-miranda.png")
        assert image is not None
        face = pipeline.observe(image)[0]
        from station.enrolment import enrol_observation

        enrol_observation(gallery, "lin-manuel miranda", face, "operator")
        assert enrol_demo_people(gallery, pipeline) == ["Alex Lacamoire"]
        names = sorted(p.name for p in gallery.persons())
        assert names == ["Alex Lacamoire", "lin-manuel miranda"], "the operator's own entry is left as it was"


@pytest.fixture
def demo_console(qtbot: QtBot, tmp_path: Path) -> Iterator[MainWindow]:
    options = ConsoleOptions(
        gallery=tmp_path / "demo" / "gallery.db",
        listen=("127.0.0.1", 0),
        demo_cameras=2,
        demo_people=True,
        mdns_interfaces=("127.0.0.1",),
    )
    services, stops = build_services(options)
    window = MainWindow(services)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    try:
        yield window
    finally:
        window.close()
        for stop in stops:
            stop()


def test_the_demo_names_a_face_and_shows_unknowns_within_a_minute(qtbot: QtBot, demo_console: MainWindow) -> None:
    """Done for the demo: a green named box and amber unknowns on the grid, History and Unknown faces filled."""
    began = time.monotonic()
    window = demo_console
    gallery = window.services.gallery
    assert gallery is not None
    seen: dict[str, set[FaceState]] = {}

    def look() -> bool:
        for tile in window.grid.tiles.values():
            for face in tile.overlays:
                seen.setdefault(face.label if face.state is not FaceState.UNKNOWN else "?", set()).add(face.state)
        named = FaceState.KNOWN in seen.get("Lin-Manuel Miranda", set())
        return named and "?" in seen

    qtbot.waitUntil(look, timeout=60_000)
    assert set(window.grid.tiles) == {"demo-1", "demo-2"}
    assert FaceState.UNKNOWN in seen["?"], "the audience shows as amber unknowns"

    def pages_filled() -> bool:
        known = gallery.history(person="Lin-Manuel Miranda", limit=5, audit=False)
        unknown = gallery.history(unknown_only=True, limit=5, audit=False)
        clusters = gallery.unknown_clusters(window.services.recogniser.model) if window.services.recogniser else []
        return bool(known and unknown and clusters)

    remaining = max(1.0, 60.0 - (time.monotonic() - began))
    qtbot.waitUntil(pages_filled, timeout=int(remaining * 1000))
    history, unknown = window.history_view, window.unknown_view
    assert history is not None and unknown is not None
    window.tabs.setCurrentWidget(history)
    qtbot.waitUntil(lambda: len(history.rows()) > 0, timeout=10_000)
    window.tabs.setCurrentWidget(unknown)
    qtbot.waitUntil(lambda: len(unknown.clusters) > 0, timeout=10_000)
    assert time.monotonic() - began < 75, "named, unknown and both pages filled took too long"
