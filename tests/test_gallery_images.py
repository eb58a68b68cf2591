"""One entry per enrolled photo: every enrolment stores a sample per model (facenet-512 and fusion-640) of the
same photo, grouped by an image id; the Gallery page shows the photo once and "Remove photo" removes its
samples of every model. Existing galleries are grouped by a migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from gui.jobs import Jobs
from gui.widgets.gallery_view import GalleryView
from station.models import FUSION_MODEL, LIVE_MODEL
from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.schema import MIGRATIONS
from tests.conftest import FACES, need
from vision.embedders import load_embedder
from vision.pipeline import FacePipeline

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def fusion() -> FacePipeline:
    """The photo model's pipeline, the companion every enrolment stores a sample of beside the live one."""
    p = FacePipeline(embedder=load_embedder(FUSION_MODEL))
    p.warm_up()
    return p


@pytest.mark.slow
def test_the_gallery_page_shows_one_entry_per_enrolled_photo(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, pipeline: FacePipeline, fusion: FacePipeline
) -> None:
    view = GalleryView(gallery, jobs, pipeline, companions=(fusion,))
    qtbot.addWidget(view)
    view.add_sample_from_file(need(FACES / "identities" / "Colin_Powell" / "Colin_Powell_0001.jpg"), "Colin")
    qtbot.waitUntil(lambda: view.busy == 0 and view.page is not None, timeout=WAIT_MS)
    assert view.samples.count() == 1, "one photo enrolled: one entry, not one per model"
    assert sorted(s.model for s in gallery.samples("Colin")) == sorted([LIVE_MODEL, FUSION_MODEL])
    assert "Colin\n1 photo" in view.list.item(0).text()
    assert view.page is not None
    (tile,) = view.page.images
    assert tile.picture is not None and tile.image.models == (LIVE_MODEL, FUSION_MODEL)
    assert view.samples.item(0).text().startswith("photo 1  q 0.")
    assert FUSION_MODEL in view.samples.item(0).toolTip()

    view.samples.setCurrentRow(0)
    view.remove_sample_button.click()
    qtbot.waitUntil(lambda: view.busy == 0 and view.samples.count() == 0, timeout=WAIT_MS)
    assert gallery.samples("Colin") == [], "the photo's samples of every model are removed"
    assert gallery.sample_matrix(FUSION_MODEL).embeddings.shape[0] == 0
    (entry,) = gallery.audit_log(action="delete_image")
    assert str(tile.image.sample_ids[0]) in entry.details and str(tile.image.sample_ids[1]) in entry.details


def _unit(seed: int, dim: int) -> bytes:
    v = np.random.default_rng(seed).standard_normal(dim).astype("<f4")
    return bytes((v / np.linalg.norm(v)).tobytes())


def test_existing_samples_are_grouped_into_their_photos_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    (mine,) = [i for i, m in enumerate(MIGRATIONS) if m.name == "sample images"]
    for step in MIGRATIONS[:mine]:
        for sql in step.statements:
            conn.execute(sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (step.version, step.name))
    conn.execute(f"PRAGMA user_version = {MIGRATIONS[mine - 1].version}")
    conn.execute("INSERT INTO persons (id, name, created) VALUES (1, 'Ada', 0), (2, 'Bo', 0)")
    conn.execute(f"INSERT INTO models VALUES ('{LIVE_MODEL}', 512), ('{FUSION_MODEL}', 640)")
    rows = [  # (person, model, source): one photo enrolled twice, another once, a sighting promoted, Bo's own
        (1, LIVE_MODEL, "a.jpg"),
        (1, FUSION_MODEL, "a.jpg"),
        (1, LIVE_MODEL, "b.jpg"),
        (1, FUSION_MODEL, "b.jpg"),
        (1, LIVE_MODEL, "a.jpg"),
        (1, FUSION_MODEL, "a.jpg"),
        (1, LIVE_MODEL, "sighting 7 (door, 2026-01-01T00:00:00Z)"),
        (2, LIVE_MODEL, "a.jpg"),
        (2, FUSION_MODEL, "a.jpg"),
    ]
    for i, (pid, model, source) in enumerate(rows, start=1):
        dim = 512 if model == LIVE_MODEL else 640
        conn.execute(
            "INSERT INTO samples (id, person_id, model, embedding, crop, source, quality, created) "
            "VALUES (?, ?, ?, ?, NULL, ?, 0.5, ?)",
            (i, pid, model, _unit(i, dim), source, float(i)),
        )
    conn.close()
    with Gallery.open(path) as g:
        ada = g.images("Ada")
        assert [i.sample_ids for i in ada] == [(1, 2), (3, 4), (5, 6), (7,)]
        assert [i.models for i in ada[:3]] == [(LIVE_MODEL, FUSION_MODEL)] * 3
        assert [i.sample_ids for i in g.images("Bo")] == [(8, 9)]
        assert g.person("Ada").images == 4 and g.person("Ada").samples == 7
        g.delete_image(3)
        assert [s.id for s in g.samples("Ada")] == [1, 2, 5, 6, 7]


def test_a_sample_joins_only_a_photo_of_its_own_person(gallery: Gallery) -> None:
    emb = np.ones(8, np.float32)
    jpeg = b"\xff\xd8\xff\xd9"
    first = gallery.enrol_sample("Ada", model="m8", embedding=emb, crop_jpeg=jpeg, source="x", quality=0.5)
    gallery.enrol_sample("Ada", model="m4", embedding=emb[:4], crop_jpeg=jpeg, source="x", quality=0.5, image_id=first)
    assert [i.sample_ids for i in gallery.images("Ada")] == [(first, first + 1)]
    with pytest.raises(GalleryError, match=f"image {first} is not an enrolled photo of Bo"):
        gallery.enrol_sample(
            "Bo", model="m4", embedding=emb[:4], crop_jpeg=jpeg, source="y", quality=0.5, image_id=first
        )
    with pytest.raises(GalleryError, match="no enrolled image with id 999"):
        gallery.delete_image(999)
