"""The gallery, history, unknown-faces and settings views on a real gallery file, with the real face
pipeline and LFW photos; every action goes through the views' background jobs."""

from __future__ import annotations

import csv
import io
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import QApplication, QMessageBox, QTableWidget, QWidget
from pytestqt.qtbot import QtBot

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from gui.jobs import Jobs
from gui.widgets.gallery_view import GalleryView
from gui.widgets.history_view import PAGE, HistoryFilter, HistoryView
from gui.widgets.settings_dialog import SettingsDialog
from gui.widgets.unknown_view import UnknownView
from station.enrolment import crop_jpeg
from station.lazy_pipeline import LazyPipeline
from station.runtime import calibrated_threshold
from storage.gallery import Gallery
from storage.records import NewSighting, Sighting
from storage.timeutil import iso
from tests.conftest import FACES, need, open_gallery, raw_connect
from tests.test_storage_reliability import cli
from vision.pipeline import FaceObservation, FacePipeline, read_image
from vision.types import ImageBGR

PEOPLE = FACES / "identities"
T0 = 1_700_000_000.0
WAIT_MS = 60_000
PHOTOS = [("Colin_Powell", i) for i in (1, 2, 3, 4)] + [("Tony_Blair", i) for i in (2, 3)]
PHOTOS += [("Hugo_Chavez", i) for i in (1, 2, 3, 4)]


def photo(name: str, i: int) -> Path:
    return need(PEOPLE / name / f"{name}_{i:04d}.jpg")


def load(path: Path) -> ImageBGR:
    image = read_image(path)
    assert image is not None, path
    return image


def cell(t: QTableWidget, row: int, col: int) -> str:
    item = t.item(row, col)
    assert item is not None, (row, col)
    return item.text()


@pytest.fixture(scope="module")
def observed(pipeline: FacePipeline) -> dict[tuple[str, int], FaceObservation]:
    """The central face of each test photo, embedded once for the module."""
    images = [load(photo(n, i)) for n, i in PHOTOS]
    return dict(zip(PHOTOS, pipeline.central_faces(images), strict=True))


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[Gallery]:
    """The shared gallery with a short busy timeout, so the locked-database test fails fast."""
    g = open_gallery(tmp_path, busy_timeout_s=0.2)
    try:
        yield g
    finally:
        g.close()


def idle(qtbot: QtBot, view: GalleryView | HistoryView | UnknownView | SettingsDialog) -> None:
    qtbot.waitUntil(lambda: view.busy == 0, timeout=WAIT_MS)


def thumb_jpeg(name: str, i: int) -> bytes:
    image = load(photo(name, i))
    ok, buf = cv2.imencode(".jpg", cv2.resize(image, (112, 112)))
    assert ok
    return bytes(buf)


def sighting(
    camera: str, start: float, person_id: int | None, score: float, obs: FaceObservation | None, crop: bytes
) -> NewSighting:
    return NewSighting(
        camera=camera,
        start=start,
        end=start + 2.0,
        person_id=person_id,
        score=score,
        box=(10.0, 10.0, 80.0, 80.0),
        crop_jpeg=crop,
        embedding=None if obs is None else obs.embedding,
        model="facenet-512" if obs is None else obs.model,
        track=f"{camera}-{start:.0f}",
    )


def enrol(gallery: Gallery, name: str, obs: FaceObservation) -> int:
    gallery.enrol_sample(
        name, model=obs.model, embedding=obs.embedding, crop_jpeg=crop_jpeg(obs), source="test", quality=0.9
    )
    return gallery.person(name).id


def history_cell(view: HistoryView, row: int, col: int) -> str:
    """What the history table shows in a cell (through the model the table view is on)."""
    index = view.table.model().index(row, col)
    assert index.isValid(), (row, col)
    return str(index.data())


def table(view: HistoryView) -> list[tuple[str, str, str]]:
    """(time, camera, person) of each row shown."""
    n = view.table.model().rowCount()
    return [(history_cell(view, r, 1), history_cell(view, r, 2), history_cell(view, r, 3)) for r in range(n)]


# ------------------------------------------------------------------- gallery


@pytest.mark.slow
def test_enrol_from_files_then_rename_watchlist_notes_merge_and_remove(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, pipeline: FacePipeline, warnings: list[str]
) -> None:
    view = GalleryView(gallery, jobs, pipeline)
    qtbot.addWidget(view)
    idle(qtbot, view)
    assert view.list.count() == 0

    view.add_sample_from_file(photo("Colin_Powell", 1), "Colin")
    idle(qtbot, view)
    assert warnings == []
    assert [(p.name, p.samples) for p in gallery.persons()] == [("Colin", 1)]
    assert view.list.count() == 1 and "Colin\n1 photo" in view.list.item(0).text()
    assert view.page is not None and view.page.person.name == "Colin" and len(view.page.images) == 1
    assert view.page.images[0].picture is not None, "the photo's crop is shown"

    view.add_sample_from_file(photo("Colin_Powell", 2))  # to the person on the page
    idle(qtbot, view)
    view.rename("Colin Powell")
    idle(qtbot, view)
    view.set_watchlist(True)
    idle(qtbot, view)
    view.save_notes("seen at the front desk")
    idle(qtbot, view)
    p = gallery.person("Colin Powell")
    assert (p.samples, p.watchlist, p.notes) == (2, True, "seen at the front desk")
    assert view.list.item(0).text() == "Colin Powell\n2 photos  ★ Watchlist", "the lists they are on"
    assert view.title.text().startswith("Colin Powell")
    assert view.ticked_lists() == [gallery.watchlists.get("Watchlist").id], "the default list is ticked"

    view.add_sample_from_file(photo("Tony_Blair", 1), "Tony")  # his face is turned away in this one
    idle(qtbot, view)
    assert len(warnings) == 1 and "not enrolled" in warnings[0] and "turned away" in warnings[0]
    assert [p.name for p in gallery.persons()] == ["Colin Powell"]
    view.add_sample_from_file(photo("Tony_Blair", 2), "Tony")
    idle(qtbot, view)
    assert view.page is not None and view.page.person.name == "Tony"

    view.merge_into("Colin Powell")
    idle(qtbot, view)
    assert [(p.name, p.samples) for p in gallery.persons()] == [("Colin Powell", 3)]
    assert view.list.count() == 1 and view.page is not None and view.page.person.name == "Colin Powell"

    first = view.page.images[0].image.id
    view.remove_image(first)
    idle(qtbot, view)
    assert [s.id for s in gallery.samples("Colin Powell")] == [i for t in view.page.images for i in t.image.sample_ids]
    assert first not in [s.id for s in gallery.samples("Colin Powell")] and len(view.page.images) == 2
    assert len(warnings) == 1


@pytest.mark.slow
def test_delete_asks_first_then_erases_samples_sightings_and_crops(
    qtbot: QtBot,
    gallery: Gallery,
    jobs: Jobs,
    observed: dict[tuple[str, int], FaceObservation],
    monkeypatch: pytest.MonkeyPatch,
    warnings: list[str],
) -> None:
    colin = enrol(gallery, "Colin", observed["Colin_Powell", 1])
    tony = enrol(gallery, "Tony", observed["Tony_Blair", 2])
    gallery.record_sightings(
        [
            sighting("door", T0, colin, 0.8, observed["Colin_Powell", 2], thumb_jpeg("Colin_Powell", 2)),
            sighting("door", T0 + 5, tony, 0.7, observed["Tony_Blair", 3], thumb_jpeg("Tony_Blair", 3)),
        ]
    )
    assert gallery.flush()
    colin_sample = gallery.samples("Colin")[0].id
    colin_sighting = gallery.history(person="Colin")[0].id
    assert gallery.sample_crop(colin_sample) and gallery.crop(colin_sighting)

    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked: list[str] = []

    def question(_parent: QWidget | None, _title: str, text: str, *args: object) -> QMessageBox.StandardButton:
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", question)
    view = GalleryView(gallery, jobs, None)
    qtbot.addWidget(view)
    idle(qtbot, view)
    view.select_person(colin)
    idle(qtbot, view)
    assert view.page is not None and view.page.person.id == colin
    assert not view.add_sample_button.isEnabled(), "no face models: no adding samples"

    view.delete_person()  # answered No
    idle(qtbot, view)
    assert len(asked) == 1 and "Colin" in asked[0]
    assert len(gallery.persons()) == 2

    view.delete_person()  # answered Yes
    idle(qtbot, view)
    assert warnings == []
    assert [p.name for p in gallery.persons()] == ["Tony"]
    assert [view.list.item(i).text().split("\n")[0] for i in range(view.list.count())] == ["Tony"]
    assert gallery.sample_crop(colin_sample) is None
    assert gallery.crop(colin_sighting) is None and gallery.sightings_by_id([colin_sighting]) == []
    assert gallery.sighting_embedding(colin_sighting) is None
    assert [s.person for s in gallery.history()] == ["Tony"], "the other person's sighting stays"


# ------------------------------------------------------------------- history


@pytest.mark.slow
def test_history_filters_by_person_camera_time_unknown_and_score(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, observed: dict[tuple[str, int], FaceObservation], warnings: list[str]
) -> None:
    colin = enrol(gallery, "Colin", observed["Colin_Powell", 1])
    tony = enrol(gallery, "Tony", observed["Tony_Blair", 2])
    for cam in ("door", "yard"):
        gallery.note_camera(cam, "127.0.0.1:5000")
    gallery.record_sightings(
        [
            sighting("door", T0, colin, 0.8, observed["Colin_Powell", 2], thumb_jpeg("Colin_Powell", 2)),
            sighting("yard", T0 + 3600, colin, 0.6, observed["Colin_Powell", 3], thumb_jpeg("Colin_Powell", 3)),
            sighting("door", T0 + 7200, None, 0.3, observed["Hugo_Chavez", 1], thumb_jpeg("Hugo_Chavez", 1)),
            sighting("yard", T0 + 10800, tony, 0.9, observed["Tony_Blair", 3], thumb_jpeg("Tony_Blair", 3)),
        ]
    )
    assert gallery.flush()
    view = HistoryView(gallery, jobs, None)
    qtbot.addWidget(view)
    idle(qtbot, view)
    assert [r[2] for r in table(view)] == ["Tony", "unknown", "Colin", "Colin"], "newest first, all of them"
    unknown_colour = view.table.model().index(1, 3).data(Qt.ItemDataRole.ForegroundRole)
    assert unknown_colour == QColor(Qt.GlobalColor.darkYellow), "an unknown face stands out"
    assert [view.person.itemText(i) for i in range(view.person.count())] == ["anyone", "Colin", "Tony"]
    assert [view.camera.itemText(i) for i in range(view.camera.count())] == ["any camera", "door", "yard"]
    assert all(r.thumbnail is not None for r in view.rows())

    def shown(f: HistoryFilter) -> list[tuple[str, str]]:
        view.set_filter(f)
        idle(qtbot, view)
        assert view.current_filter() == f
        return [(cam, who) for _, cam, who in table(view)]

    assert shown(HistoryFilter(person_id=colin)) == [("yard", "Colin"), ("door", "Colin")]
    assert shown(HistoryFilter(camera="door")) == [("door", "unknown"), ("door", "Colin")]
    assert shown(HistoryFilter(since=T0 + 3000, until=T0 + 8000)) == [("door", "unknown"), ("yard", "Colin")]
    assert shown(HistoryFilter(unknown_only=True)) == [("door", "unknown")]
    assert shown(HistoryFilter(min_score=0.7)) == [("yard", "Tony"), ("door", "Colin")]
    assert shown(HistoryFilter(person_id=tony, camera="door")) == []
    assert view.title.text() == "no sightings match"
    assert shown(HistoryFilter(camera="yard", since=T0 + 1)) == [("yard", "Tony"), ("yard", "Colin")]
    assert history_cell(view, 0, 1).startswith("2023-11-1"), "local time, readable"
    icon = view.table.model().index(0, 0).data(Qt.ItemDataRole.DecorationRole)
    assert isinstance(icon, QIcon) and not icon.isNull(), "a thumbnail in the face column"
    assert view.table.model().index(1, 3).data(Qt.ItemDataRole.ForegroundRole) is None, "Colin is known"

    view.select_row(1)
    idle(qtbot, view)
    assert "yard" in view.crop_text.text() and "Colin" in view.crop_text.text()
    assert not view.crop.pixmap().isNull() and view.crop.pixmap().width() > 64, "the crop, bigger"
    assert warnings == []


def test_history_pages_newest_first_and_exports_the_whole_filter(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, tmp_path: Path, warnings: list[str]
) -> None:
    crop = thumb_jpeg("Hugo_Chavez", 2)
    n = 2 * PAGE + 5
    gallery.record_sightings([sighting("gate" if i % 2 else "hall", T0 + i, None, 0.2, None, crop) for i in range(n)])
    assert gallery.flush()
    view = HistoryView(gallery, jobs, None)
    qtbot.addWidget(view)
    idle(qtbot, view)
    starts = [r.sighting.start for r in view.rows()]
    assert len(starts) == PAGE and starts[0] == T0 + n - 1 and starts == sorted(starts, reverse=True)
    assert view.next_button.isEnabled() and not view.prev_button.isEnabled()
    view.next_page()
    idle(qtbot, view)
    view.next_page()
    idle(qtbot, view)
    assert [r.sighting.start for r in view.rows()] == [T0 + i for i in range(4, -1, -1)]
    assert not view.next_button.isEnabled() and view.prev_button.isEnabled()
    view.previous_page()
    idle(qtbot, view)
    assert view.rows()[0].sighting.start == T0 + n - 1 - PAGE

    view.set_filter(HistoryFilter(camera="gate"))
    idle(qtbot, view)
    out = tmp_path / "gate.csv"
    view.export_csv(out)
    idle(qtbot, view)
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n // 2 and {r["camera"] for r in rows} == {"gate"}, "every page, only the filter"
    assert rows[0]["start"] < rows[-1]["start"], "oldest first"
    assert "Exported 102 sighting(s)" in view.status.text()
    archive = tmp_path / "gate.zip"
    view.export_csv(archive)
    idle(qtbot, view)
    with zipfile.ZipFile(archive) as zf:
        assert len([name for name in zf.namelist() if name.startswith("crops/")]) == n // 2
    view.export_csv(tmp_path / "missing-folder" / "x.csv")
    idle(qtbot, view)
    assert len(warnings) == 1 and "does not exist" in warnings[0]


def test_the_page_exports_what_main_py_history_prints_for_the_same_filter(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, tmp_path: Path, warnings: list[str]
) -> None:
    """One export path: the page's CSV holds the CLI's rows for the filter (oldest first), and the zip
    takes every filter too, the minimum score included, with the crops."""
    crops = [thumb_jpeg("Hugo_Chavez", i) for i in (1, 2, 3)]
    gallery.record_sightings(
        [
            sighting(("door", "yard")[i % 2], T0 + 60 * i, None, (i % 10) / 10, None, crops[i % 3] if i % 4 else b"")
            for i in range(60)
        ]
    )
    assert gallery.flush()
    view = HistoryView(gallery, jobs, None)
    qtbot.addWidget(view)
    idle(qtbot, view)
    view.set_filter(HistoryFilter(camera="yard", min_score=0.5, since=T0 + 300))
    idle(qtbot, view)
    view.export_csv(tmp_path / "page.csv")
    idle(qtbot, view)
    view.export_csv(tmp_path / "page.zip")
    idle(qtbot, view)
    assert warnings == []
    proc = cli("history", "--gallery", str(gallery.path), "--camera", "yard", "--min-score", "0.5",
               "--since", iso(T0 + 300), "--format", "csv")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    expected = list(reversed(list(csv.DictReader(io.StringIO(proc.stdout)))))
    assert len(expected) == len(view.rows()) > 10
    with (tmp_path / "page.csv").open(newline="") as fh:
        assert list(csv.DictReader(fh)) == expected
    with zipfile.ZipFile(tmp_path / "page.zip") as zf:
        zipped = list(csv.DictReader(io.StringIO(zf.read("history.csv").decode())))
        # The archive names its files where the plain export says whether there is one.
        files = ("crop", "snapshot")
        assert [{k: v for k, v in r.items() if k not in files} for r in zipped] == [
            {k: v for k, v in r.items() if k not in files} for r in expected
        ]
        for z, e in zip(zipped, expected, strict=True):
            for col, folder in (("crop", "crops"), ("snapshot", "snapshots")):
                assert z[col] == (f"{folder}/{e['id']}.jpg" if e[col] == "True" else ""), (col, z, e)
        names = [r["crop"] for r in zipped if r["crop"]]
        assert len(names) == len([r for r in expected if r["crop"] == "True"]) > 0
        assert all(zf.read(name) in crops for name in names)


def test_a_slow_older_page_never_replaces_a_newer_one(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two page queries run at once on the job pool; the first one asked for answers last and is dropped."""
    crop = thumb_jpeg("Hugo_Chavez", 2)
    gallery.record_sightings([sighting(("door", "yard")[i % 2], T0 + i, None, 0.5, None, crop) for i in range(20)])
    assert gallery.flush()
    view = HistoryView(gallery, jobs, None)
    qtbot.addWidget(view)
    idle(qtbot, view)
    assert len(view.rows()) == 20
    gate = threading.Event()
    real = gallery.history

    def history(**kwargs: Any) -> list[Sighting]:
        if kwargs.get("camera") == "door":
            assert gate.wait(30), "the slow query was never let go"
        return real(**kwargs)

    monkeypatch.setattr(gallery, "history", history)
    view.set_filter(HistoryFilter(camera="door"))  # slow: waits for the gate
    view.set_filter(HistoryFilter(camera="yard"))  # fast: asked later, answers first
    qtbot.waitUntil(lambda: view.busy == 1, timeout=WAIT_MS)
    assert {r.sighting.camera for r in view.rows()} == {"yard"} and len(view.rows()) == 10
    gate.set()
    idle(qtbot, view)
    assert {r.sighting.camera for r in view.rows()} == {"yard"}, "the older page arrived last and was dropped"
    assert {cam for _, cam, _ in table(view)} == {"yard"} and view.filter == HistoryFilter(camera="yard")
    assert warnings == []


@pytest.mark.slow
def test_search_by_face_and_this_match_was_wrong(
    qtbot: QtBot,
    gallery: Gallery,
    jobs: Jobs,
    pipeline: FacePipeline,
    observed: dict[tuple[str, int], FaceObservation],
    warnings: list[str],
) -> None:
    tony = enrol(gallery, "Tony", observed["Tony_Blair", 2])
    colin_face = observed["Colin_Powell", 2]
    gallery.record_sightings(
        [
            sighting("door", T0, None, 0.3, colin_face, thumb_jpeg("Colin_Powell", 2)),
            sighting("door", T0 + 10, None, 0.2, observed["Hugo_Chavez", 1], thumb_jpeg("Hugo_Chavez", 1)),
            # Hugo Chavez wrongly matched to Tony:
            sighting("yard", T0 + 20, tony, 0.5, observed["Hugo_Chavez", 2], thumb_jpeg("Hugo_Chavez", 2)),
            sighting("yard", T0 + 30, tony, 0.9, observed["Tony_Blair", 3], thumb_jpeg("Tony_Blair", 3)),
            sighting("hall", T0 + 40, None, 0.1, None, thumb_jpeg("Hugo_Chavez", 3)),  # no embedding
        ]
    )
    assert gallery.flush()
    ids = {s.start - T0: s.id for s in gallery.history()}
    model, stored = gallery.sighting_embedding(ids[0]) or ("", np.zeros(1))
    assert model == colin_face.model and np.allclose(stored, colin_face.embedding, atol=1e-6)
    assert gallery.sighting_embedding(ids[40]) is None and gallery.sighting_embedding(10**9) is None

    view = HistoryView(gallery, jobs, pipeline)
    qtbot.addWidget(view)
    idle(qtbot, view)
    view.search_by_image(photo("Colin_Powell", 4))
    idle(qtbot, view)
    rows = view.rows()
    assert rows[0].sighting.id == ids[0], "Colin's sighting first"
    assert rows[0].similarity is not None and rows[0].similarity > 0.5 > (rows[1].similarity or 0.0)
    assert view.table.model().headerData(4, Qt.Orientation.Horizontal) == "Similarity"
    assert history_cell(view, 0, 4) == f"{rows[0].similarity:.3f}"

    view.search_by_sighting(ids[10])
    idle(qtbot, view)
    assert [r.sighting.id for r in view.rows()][:2] == [ids[10], ids[20]], "itself, then the same face"
    assert view.rows()[0].similarity == pytest.approx(1.0, abs=1e-4)

    view.select_row(1)  # the Chavez sighting matched to Tony
    chosen = view.selected()
    assert chosen is not None and chosen.person == "Tony"
    assert view.wrong_button.isEnabled()
    view.mark_wrong()
    idle(qtbot, view)
    assert gallery.person("Tony").negatives == 1
    negatives = gallery.negative_matrix(model)
    assert negatives.person_ids.tolist() == [tony]
    assert float(negatives.embeddings[0] @ observed["Hugo_Chavez", 2].embedding) > 0.999
    assert "is not Tony" in view.status.text()
    view.select_row(0)
    assert not view.wrong_button.isEnabled(), "an unknown sighting has no match to undo"

    view.search_by_sighting(ids[40])
    idle(qtbot, view)
    assert warnings == [f"sighting {ids[40]} has no stored face embedding"]


# ------------------------------------------------------------- unknown faces


@pytest.mark.slow
def test_unknown_clusters_are_listed_and_named(
    qtbot: QtBot,
    gallery: Gallery,
    jobs: Jobs,
    pipeline: FacePipeline,
    observed: dict[tuple[str, int], FaceObservation],
    warnings: list[str],
) -> None:
    items = []
    for k, (name, i) in enumerate(PHOTOS):
        cam = "door" if k % 2 else "yard"
        items.append(sighting(cam, T0 + 60 * k, None, 0.2, observed[name, i], thumb_jpeg(name, i)))
    gallery.record_sightings(items)
    assert gallery.flush()
    colin_ids = {s.id for s in gallery.history() if s.start < T0 + 60 * 4}

    view = UnknownView(gallery, jobs, pipeline)
    qtbot.addWidget(view)
    idle(qtbot, view)
    assert sorted(r.cluster.size for r in view.clusters) == [4, 4], "Powell and Chavez recur; Blair's two do not"
    assert view.table.rowCount() == 2 and cell(view.table, 0, 2) == "door, yard"
    assert all(r.thumbnail is not None for r in view.clusters)
    row = next(k for k, r in enumerate(view.clusters) if set(r.cluster.sighting_ids) == colin_ids)

    view.name_cluster(row, "Colin")
    idle(qtbot, view)
    assert warnings == []
    assert gallery.person("Colin").samples == 4
    assert {s.id for s in gallery.history(person="Colin")} == colin_ids
    assert len(view.clusters) == 1 and view.table.rowCount() == 1

    view.name_cluster(0, "colin")  # the name is taken (names are case-insensitive)
    idle(qtbot, view)
    assert len(warnings) == 1 and "already exists" in warnings[0]
    assert len(view.clusters) == 1


# ------------------------------------------------------------------ settings


def test_settings_round_trip_validation_and_key(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, tmp_path: Path, warnings: list[str]
) -> None:
    key_hex = "0123456789abcdef" * 4
    dialog = SettingsDialog(gallery, jobs, model="facenet-512", key_file=tmp_path / "station.key", key_hex=key_hex)
    qtbot.addWidget(dialog)
    idle(qtbot, dialog)
    d = dialog.values()
    assert [d[n] for n in ("threshold", "min_face_px", "max_rate_hz", "retention_days", "alerts_unknown")] == [
        calibrated_threshold("facenet-512"),
        40,
        15.0,  # the track-first engine's default cap (issue: recognition engine v2)
        90,
        False,
    ]
    assert f"default {calibrated_threshold('facenet-512'):g}" in dialog.widgets["threshold"].toolTip()
    assert key_hex not in dialog.key.text() and dialog.key.text().startswith("0123")
    assert "unpair every camera" in dialog.key.toolTip()
    dialog.show_key.setChecked(True)
    assert dialog.key.text() == key_hex
    dialog.copy_key()
    assert QApplication.clipboard().text() == key_hex

    dialog.set_value("threshold", 0.0)
    dialog.set_value("min_face_px", 4)
    assert dialog.save() is False
    shown = dialog.problems_label.text()
    assert "recognition threshold must be between 0.05 and 0.99" in shown
    assert "minimum face size must be between 12 and 1000 px" in shown
    assert gallery.get_setting("recognition.threshold") is None, "nothing stored"

    dialog.set_value("threshold", 0.55)
    dialog.set_value("min_face_px", 60)
    dialog.set_value("max_rate_hz", 2.5)
    dialog.set_value("retention_days", 0)
    dialog.set_value("alerts_unknown", True)
    dialog.set_value("ray_address", "not an address")
    assert dialog.problems() == ["The Ray cluster address must be HOST:PORT (it is 'not an address')."]
    dialog.set_value("ray_address", "10.0.0.5:6379")
    dialog.set_value("strangers_hours", "22:00-25:00")
    assert dialog.problems() == ["The stranger alarm hours must be HH:MM-HH:MM (it is '22:00-25:00')."]
    dialog.set_value("strangers_hours", "22:00-06:00")
    dialog.set_value("strangers_cameras", "yard, gate")
    with qtbot.waitSignal(dialog.settings_changed, timeout=WAIT_MS) as signal:
        assert dialog.save() is True
    expected = {
        "recognition.threshold": 0.55,
        "recognition.min_face_px": 60,
        "recognition.max_rate_hz": 2.5,
        "retention.days": 0,
        "alerts.unknown": True,
        "recognition.ray_address": "10.0.0.5:6379",
        "alerts.strangers.cameras": "yard, gate",
        "alerts.strangers.hours": "22:00-06:00",
    }
    assert signal.args == [expected], "the signal carries what changed"
    stored = expected | {"storage.margin_mb": 500, "alerts.strangers.returns": 3, "alerts.strangers.window_min": 60}
    assert {k: gallery.get_setting(k) for k in stored} == stored, "every setting is stored"
    assert dialog.result() == SettingsDialog.DialogCode.Accepted

    again = SettingsDialog(gallery, jobs, model="facenet-512")
    qtbot.addWidget(again)
    idle(qtbot, again)
    assert again.values() == dialog.values()
    assert again.widgets["retention_days"].text() == "keep forever"
    assert warnings == []


# -------------------------------------------------------------------- errors


def test_a_file_that_is_not_an_image_gives_a_message(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, tmp_path: Path, warnings: list[str]
) -> None:
    bad = tmp_path / "holiday.jpg"
    bad.write_text("not a picture\n")
    faces = LazyPipeline(FacePipeline, "facenet-512")  # never loaded: the file is refused first
    view = GalleryView(gallery, jobs, faces)
    qtbot.addWidget(view)
    view.add_sample_from_file(bad, "Someone")
    idle(qtbot, view)
    history = HistoryView(gallery, jobs, faces)
    qtbot.addWidget(history)
    history.search_by_image(tmp_path / "missing.png")
    idle(qtbot, history)
    assert warnings == [
        f"cannot read image {bad}: not an image file, or unreadable",
        f"cannot read image {tmp_path / 'missing.png'}: not an image file, or unreadable",
    ]
    assert gallery.persons() == []


@pytest.mark.slow
def test_a_locked_database_gives_a_message_and_the_views_stay_usable(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, observed: dict[tuple[str, int], FaceObservation], warnings: list[str]
) -> None:
    colin = enrol(gallery, "Colin", observed["Colin_Powell", 1])
    view = GalleryView(gallery, jobs, None)
    qtbot.addWidget(view)
    view.select_person(colin)
    idle(qtbot, view)
    settings = SettingsDialog(gallery, jobs, model="facenet-512")
    qtbot.addWidget(settings)
    idle(qtbot, settings)

    other = raw_connect(gallery.path)
    try:
        other.execute("BEGIN EXCLUSIVE")
        view.rename("Colin Powell")
        idle(qtbot, view)
        settings.save()
        idle(qtbot, settings)
        assert len(warnings) == 2 and all("is locked by another process" in w for w in warnings)
        assert "\n" not in warnings[0] and "Traceback" not in warnings[0]
        assert settings.result() != SettingsDialog.DialogCode.Accepted and settings.save_button.isEnabled()
    finally:
        other.execute("ROLLBACK")
        other.close()

    view.rename("Colin Powell")
    idle(qtbot, view)
    assert gallery.person(colin).name == "Colin Powell" and view.title.text() == "Colin Powell"
    with qtbot.waitSignal(settings.settings_changed, timeout=WAIT_MS):
        settings.save()
    assert gallery.get_setting("recognition.threshold") == calibrated_threshold("facenet-512")
    assert len(warnings) == 2
