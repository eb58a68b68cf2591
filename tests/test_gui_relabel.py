"""The relabelling offer in the console: naming an unknown cluster offers the person's other past sightings that
now match them (real FaceNet embeddings of LFW photos, a real gallery), best first with their crops; relabelled
one by one or in one step, and undone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from gui.main_window import MainWindow
from gui.services import ConsoleServices
from network import protocol
from network.udp_receiver import ReceiverConfig, UdpReceiver
from station.enrolment import crop_jpeg
from storage.gallery import Gallery
from storage.records import NewSighting
from tests.conftest import FACES, need
from vision.pipeline import FaceObservation, FacePipeline, read_image

pytestmark = pytest.mark.slow
WAIT_MS = 60_000
COLIN = [("Colin_Powell", i) for i in range(1, 9)]
OTHERS = [("Tony_Blair", i) for i in (2, 3)] + [("Hugo_Chavez", i) for i in (1, 2)]


@pytest.fixture(scope="module")
def faces(pipeline: FacePipeline) -> dict[tuple[str, int], FaceObservation]:
    keys = COLIN + OTHERS
    images = []
    for name, i in keys:
        image = read_image(need(FACES / "identities" / name / f"{name}_{i:04d}.jpg"))
        assert image is not None
        images.append(image)
    return dict(zip(keys, pipeline.central_faces(images), strict=True))


@pytest.fixture
def console(qtbot: QtBot, key: bytes, key_file: Path, tmp_path: Path, pipeline: FacePipeline) -> Iterator[MainWindow]:
    gallery = Gallery.open(tmp_path / "gallery.db", actor="console")
    rx = UdpReceiver(key, "127.0.0.1", 0, config=ReceiverConfig(offline_after_s=2.0)).start()
    services = ConsoleServices(
        rx, list, protocol.encode_key(key), key_file, rx.address, gallery=gallery, faces=pipeline
    )
    window = MainWindow(services)
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    qtbot.waitExposed(window)
    try:
        yield window
    finally:
        window.close()
        window.jobs.wait(10_000)
        rx.stop()
        gallery.close()


def unknown_sightings(gallery: Gallery, faces: dict[tuple[str, int], FaceObservation]) -> dict[int, str]:
    """Colin Powell's first photo seen twice by a still camera (a tight cluster), his other photos once each,
    and other people: all unknown. Returns sighting id -> whose face."""
    rng = np.random.default_rng(1)
    items = [COLIN[0], COLIN[0], *COLIN[1:], *OTHERS]
    for n, key in enumerate(items):
        obs = faces[key]
        emb = obs.embedding + rng.normal(0, 0.002, obs.embedding.shape).astype(np.float32)
        gallery.record_sightings(
            [
                NewSighting(
                    "lobby",
                    1000.0 + n,
                    1001.0 + n,
                    None,
                    0.2,
                    (1, 1, 60, 60),
                    crop_jpeg(obs),
                    emb,
                    obs.model,
                    f"lobby-{n}",
                )
            ]
        )
    assert gallery.flush()
    return {s.id: items[int(s.track.split("-")[1])][0] for s in gallery.history(limit=100, audit=False)}


def test_naming_a_cluster_offers_the_persons_other_past_sightings(
    qtbot: QtBot, console: MainWindow, faces: dict[tuple[str, int], FaceObservation]
) -> None:
    gallery = console.services.gallery
    assert gallery is not None
    whose = unknown_sightings(gallery, faces)
    view = console.unknown_view
    assert view is not None
    view.threshold = 0.95  # only the twice-seen photo clusters: the rest stay for the offer
    console.tabs.setCurrentWidget(view)
    view.refresh()
    qtbot.waitUntil(lambda: view.busy == 0 and len(view.clusters) == 1, timeout=WAIT_MS)
    (row,) = view.clusters
    assert {whose[i] for i in row.cluster.sighting_ids} == {"Colin_Powell"} and row.cluster.size == 2
    view.name_cluster(0, "Colin Powell")

    qtbot.waitUntil(lambda: console.relabel_dialog is not None, timeout=WAIT_MS)
    dialog = console.relabel_dialog
    assert dialog is not None
    offered = [c.sighting.id for c in dialog.offer.candidates]
    assert len(offered) >= 3 and {whose[i] for i in offered} == {"Colin_Powell"}, "only his, none of the others'"
    assert set(offered).isdisjoint(row.cluster.sighting_ids), "the named ones are not offered again"
    scores = [c.score for c in dialog.offer.candidates]
    assert scores == sorted(scores, reverse=True) and all(c is not None for c in dialog.offer.crops)
    assert dialog.list.count() == len(offered) and "named from 2 unknown sightings" in dialog.heading.text()

    # One by one: the best is ticked and relabelled; then the rest in one step; then undone.
    dialog.list.item(0).setCheckState(Qt.CheckState.Checked)
    qtbot.mouseClick(dialog.ticked_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.busy == 0 and len(dialog.batches) == 1, timeout=WAIT_MS)
    assert [s.id for s in gallery.history(person="Colin Powell", limit=100, audit=False) if s.id == offered[0]]
    qtbot.mouseClick(dialog.all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.busy == 0 and len(dialog.batches) == 2, timeout=WAIT_MS)
    named = {s.id for s in gallery.history(person="Colin Powell", limit=100, audit=False)}
    assert named == set(offered) | set(row.cluster.sighting_ids)
    assert not dialog.all_button.isEnabled(), "nothing left to offer"
    qtbot.mouseClick(dialog.undo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.busy == 0 and "Undone" in dialog.status.text(), timeout=WAIT_MS)
    still = {s.id for s in gallery.history(person="Colin Powell", limit=100, audit=False)}
    assert (
        still == (set(row.cluster.sighting_ids) | {offered[0]}) if len(offered) > 1 else set(row.cluster.sighting_ids)
    )
    assert [e.action for e in gallery.audit_log(limit=5)][:1] == ["relabel_undone"]
