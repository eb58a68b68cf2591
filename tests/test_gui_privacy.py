"""The console's two privacy exports: "Export as evidence…" on the History page (several selected sightings,
a case and a note, a zip that verifies), and "Export all data on this person…" on the Gallery page."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QItemSelectionModel
from pytestqt.qtbot import QtBot

from gui.jobs import Jobs
from gui.widgets.data_exports import EvidenceDialog
from gui.widgets.gallery_view import GalleryView
from gui.widgets.history_view import HistoryView
from storage.evidence_check import verify
from storage.gallery import Gallery
from storage.signing import load as load_signing_key
from tests.test_storage import MODEL, T0, face_jpegs, sighting, unit

WAIT_MS = 20_000


def _stock(gallery: Gallery) -> int:
    crops = face_jpegs(3)
    gallery.enrol_sample("Ann", model=MODEL, embedding=unit(np.random.default_rng(5)), crop_jpeg=crops[0],
                         source="ann.jpg", quality=0.9)  # fmt: skip
    ann = gallery.person("Ann").id
    gallery.record_sightings([sighting(start=T0 + i, person_id=ann, crop=crops[1 + i % 2]) for i in range(3)])
    assert gallery.flush()
    return ann


def test_history_exports_the_selected_sightings_as_evidence(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, tmp_path: Path, warnings: list[str]
) -> None:
    _stock(gallery)
    view = HistoryView(gallery, jobs, None)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: len(view.rows()) == 3, timeout=WAIT_MS)
    assert not view.evidence_button.isEnabled()
    view.select_row(0)
    view.table.selectionModel().select(
        view.model.index(2, 0), QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    )
    assert view.evidence_button.isEnabled() and len(view.selected_ids()) == 2
    dialog = EvidenceDialog(2, tmp_path / "e.zip", view)
    qtbot.addWidget(dialog)
    dialog.case.setText("CASE-3")
    dialog.note.setPlainText("two visits")
    case, note, path = dialog.values()
    assert (case, note, path) == ("CASE-3", "two visits", tmp_path / "e.zip")
    view.export_evidence(view.selected_ids(), case, note, path)
    qtbot.waitUntil(lambda: view.busy == 0, timeout=WAIT_MS)
    assert view.status.text().startswith("Evidence: 2 sighting(s)"), view.status.text()
    result = verify(path, load_signing_key(gallery.path.parent / "signing.key").public)
    assert result.intact and result.case == "CASE-3" and result.sightings == 2
    # A failure is one line in the status, and the page goes on.
    view.export_evidence([999], "", "", tmp_path / "none.zip")
    qtbot.waitUntil(lambda: view.busy == 0, timeout=WAIT_MS)
    assert "no sighting with id 999" in view.status.text() and not (tmp_path / "none.zip").exists()
    assert len(warnings) == 1 and "\n" not in warnings[0]


def test_gallery_exports_all_data_on_the_selected_person(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, tmp_path: Path
) -> None:
    ann = _stock(gallery)
    view = GalleryView(gallery, jobs, None)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.busy == 0, timeout=WAIT_MS)
    view.select_person(ann)
    qtbot.waitUntil(lambda: view.page is not None and view.export_button.isEnabled(), timeout=WAIT_MS)
    out = tmp_path / "ann.zip"
    view.export_person_data(out)
    qtbot.waitUntil(lambda: view.busy == 0 and view.export_status.text() != "Exporting…", timeout=WAIT_MS)
    assert view.export_status.text().startswith("All data on Ann: 1 samples, 3 sightings"), view.export_status.text()
    with zipfile.ZipFile(out) as zf:
        assert json.loads(zf.read("person.json"))["name"] == "Ann" and len(json.loads(zf.read("sightings.json"))) == 3
