"""Enrol by drawing a box with the mouse on a real face photo, with the real models and a real gallery."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from gui.enrol_checks import assess
from gui.jobs import Jobs
from gui.widgets.enrol_dialog import EnrolDialog
from storage.gallery import Gallery
from tests.conftest import FACES, need
from vision.pipeline import FacePipeline

pytestmark = pytest.mark.slow
PEOPLE = FACES / "identities"


def photo(name: str, i: int) -> np.ndarray:
    path = need(PEOPLE / name / f"{name}_{i:04d}.jpg")
    image = cv2.imread(str(path))
    assert image is not None
    return image


def drag(qtbot: QtBot, widget: EnrolDialog, box: tuple[float, float, float, float]) -> None:
    """Draw ``box`` (picture coordinates) on the dialog's editor with real mouse events."""
    editor = widget.editor
    r = editor.picture_rect()
    sx, sy = r.width() / editor.image.width(), r.height() / editor.image.height()
    x, y, w, h = box
    a = QPoint(round(r.x() + x * sx), round(r.y() + y * sy))
    b = QPoint(round(r.x() + (x + w) * sx), round(r.y() + (y + h) * sy))
    qtbot.mousePress(editor, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(editor, pos=QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    qtbot.mouseMove(editor, pos=b)
    qtbot.mouseRelease(editor, Qt.MouseButton.LeftButton, pos=b)


def open_dialog(qtbot: QtBot, image: np.ndarray, gallery: Gallery, pipeline: FacePipeline) -> EnrolDialog:
    jobs = Jobs()
    dialog = EnrolDialog(image, gallery, jobs, pipeline, threshold=0.6, source="test photo")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(lambda: dialog.busy == 0, timeout=60_000)
    return dialog


def test_drawn_box_is_enrolled_and_a_second_photo_of_someone_else_warns(
    qtbot: QtBot, gallery: Gallery, pipeline: FacePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = photo("Colin_Powell", 1)
    dialog = open_dialog(qtbot, image, gallery, pipeline)
    assert len(dialog.editor.detections) >= 1, "the detector found the face"
    drag(qtbot, dialog, (60, 50, 130, 150))
    assert len(dialog.candidates) == 1
    qtbot.waitUntil(lambda: dialog.candidates[0].assessment is not None, timeout=30_000)
    assert not dialog.enrol_button.isEnabled(), "no name yet"
    dialog.person.setCurrentText("Colin Powell")
    assert dialog.enrol_button.isEnabled(), dialog.warnings.text()
    qtbot.mouseClick(dialog.enrol_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(dialog.sample_ids), timeout=20_000)
    persons = gallery.persons()
    assert [(p.name, p.samples) for p in persons] == [("Colin Powell", 1)]
    crop = gallery.sample_crop(dialog.sample_ids[0])
    assert crop is not None and crop[:2] == b"\xff\xd8"

    # Another photo of him, assigned to a different name: the dialog warns, and asks before enrolling.
    second = open_dialog(qtbot, photo("Colin_Powell", 2), gallery, pipeline)
    second.add_detection(0)
    qtbot.waitUntil(lambda: second.candidates[0].assessment is not None, timeout=30_000)
    second.person.setCurrentText("Somebody Else")
    assert "already matches Colin Powell" in second.warnings.text()
    asked: list[str] = []

    def refuse(*args: object) -> QMessageBox.StandardButton:
        asked.append(str(args[2]))
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", refuse)
    qtbot.mouseClick(second.enrol_button, Qt.MouseButton.LeftButton)
    assert asked and "Colin Powell" in asked[0]
    assert [p.name for p in gallery.persons()] == ["Colin Powell"], "nothing stored after the operator said no"


def test_a_tiny_blurred_face_is_refused_with_the_reason(qtbot: QtBot, gallery: Gallery, pipeline: FacePipeline) -> None:
    image = cv2.resize(photo("Colin_Powell", 3), (60, 60))
    image = cv2.resize(cv2.GaussianBlur(image, (9, 9), 4), (250, 250), interpolation=cv2.INTER_NEAREST)
    small = np.zeros((250, 250, 3), np.uint8)
    small[100:130, 100:130] = cv2.resize(image, (30, 30))
    obs = pipeline.observe_box(small, (100, 100, 30, 30))
    verdict = assess(obs, gallery, 0.6)
    assert verdict.reject_reason in {"face too small", "too blurry"}
    dialog = open_dialog(qtbot, small, gallery, pipeline)
    drag(qtbot, dialog, (98, 98, 34, 34))
    qtbot.waitUntil(lambda: bool(dialog.candidates) and dialog.candidates[0].assessment is not None, timeout=30_000)
    dialog.person.setCurrentText("Tiny")
    assert verdict.reject_reason in dialog.warnings.text()
    assert not dialog.enrol_button.isEnabled()
    assert gallery.persons() == []
