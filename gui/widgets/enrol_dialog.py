"""Enrol faces from a frozen frame or an image file: draw boxes or click detected faces,
name each one, read the quality meter and the warnings, then enrol.

All detection, embedding and database work runs in background jobs; the dialog only reacts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.enrol_checks import FaceAssessment, assess, enrol
from gui.jobs import Jobs
from gui.services import FaceAnalyser
from gui.widgets.box_editor import Box, BoxEditor
from station import settings as table
from storage.gallery import Gallery
from vision.pipeline import FaceObservation


@dataclass
class _Candidate:
    """GUI-thread state of one box in the dialog."""

    box: Box
    person: str = ""
    assessment: FaceAssessment | None = None
    error: str | None = None


def qimage_copy(image: np.ndarray) -> QImage:
    h, w = image.shape[:2]
    data = np.ascontiguousarray(image)
    return QImage(data.data, w, h, data.strides[0], QImage.Format.Format_BGR888).copy()


class EnrolDialog(QDialog):
    enrolled = Signal(list)  # sample ids

    def __init__(
        self,
        image: np.ndarray,
        gallery: Gallery,
        jobs: Jobs,
        faces: FaceAnalyser,
        *,
        threshold: float | None,
        source: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Enrol faces — {source}")
        self.resize(1100, 680)
        self.image = image
        self.gallery = gallery
        self.jobs = jobs
        self.faces = faces
        self.threshold = threshold  # None: the stored setting (or the model's calibrated one), read in the jobs
        self.source = source
        self.candidates: list[_Candidate] = []
        self.detected: list[FaceObservation] = []
        self.busy = 0
        self.sample_ids: list[int] = []

        self.editor = BoxEditor(qimage_copy(image))
        self.editor.box_drawn.connect(self.add_box)
        self.editor.detection_clicked.connect(self.add_detection)
        self.editor.box_selected.connect(self._select)

        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._select)
        self.person = QComboBox()
        self.person.setEditable(True)
        self.person.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        edit = self.person.lineEdit()
        if edit is not None:
            edit.setPlaceholderText("new or existing person")
        self.person.currentTextChanged.connect(self._person_changed)
        self.sharpness_bar, self.size_bar, self.pose_bar = QProgressBar(), QProgressBar(), QProgressBar()
        for bar in (self.sharpness_bar, self.size_bar, self.pose_bar):
            bar.setRange(0, 100)
        self.warnings = QLabel("Draw a box around a face, or click a detected (dashed) face.")
        self.warnings.setWordWrap(True)
        self.remove = QPushButton("Remove box")
        self.remove.clicked.connect(self.remove_selected)
        self.status = QLabel("Finding faces…")

        form = QFormLayout()
        form.addRow("Person", self.person)
        form.addRow("Sharpness", self.sharpness_bar)
        form.addRow("Size", self.size_bar)
        form.addRow("Pose", self.pose_bar)
        side = QVBoxLayout()
        side.addWidget(QLabel("Faces to enrol"))
        side.addWidget(self.list, 1)
        side.addLayout(form)
        side.addWidget(self.warnings)
        side.addWidget(self.remove, 0, Qt.AlignmentFlag.AlignLeft)
        panel = QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(340)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.enrol_button = self.buttons.addButton("Enrol", QDialogButtonBox.ButtonRole.AcceptRole)
        self.enrol_button.clicked.connect(self.enrol_all)
        self.buttons.rejected.connect(self.reject)

        top = QHBoxLayout()
        top.addWidget(self.editor, 1)
        top.addWidget(panel)
        layout = QVBoxLayout(self)
        layout.addLayout(top, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.buttons)
        layout.addLayout(bottom)

        self._run(lambda: [p.name for p in gallery.persons()], self._names_loaded)
        self._run(lambda: faces.observe(image), self._faces_found)
        self._refresh()

    # ----------------------------------------------------------- jobs

    def _run(self, fn: Callable[[], object], done: Callable[[object], None]) -> None:
        self.busy += 1
        self._refresh()

        def ok(result: object) -> None:
            self.busy -= 1
            done(result)
            self._refresh()

        def failed(exc: Exception) -> None:
            self.busy -= 1
            self.status.setText(f"Error: {exc}")
            QMessageBox.warning(self, "Enrol", str(exc))
            self._refresh()

        self.jobs.run(fn, ok, failed)

    def _names_loaded(self, names: object) -> None:
        assert isinstance(names, list)
        current = self.person.currentText()
        self.person.blockSignals(True)
        self.person.clear()
        self.person.addItems(sorted(names))
        self.person.setCurrentText(current)
        self.person.blockSignals(False)

    def _faces_found(self, found: object) -> None:
        assert isinstance(found, list)
        self.detected = found
        self.editor.set_detections([o.detection.box for o in found])
        self.status.setText(
            f"{len(found)} face(s) found: click one, or draw a box" if found else "No face found: draw a box"
        )

    # ------------------------------------------------------ candidates

    def add_box(self, box: Box) -> None:
        cand = _Candidate(box)
        self._add(cand)
        image, faces = self.image, self.faces
        self._run(lambda: assess(faces.observe_box(image, box), self.gallery, self._threshold()), self._assessed(cand))

    def add_detection(self, index: int) -> None:
        obs = self.detected[index]
        if any(c.box == obs.detection.box for c in self.candidates):
            return
        cand = _Candidate(obs.detection.box)
        self._add(cand)
        self._run(lambda: assess(obs, self.gallery, self._threshold()), self._assessed(cand))

    def _threshold(self) -> float:
        """The recognition threshold (runs in a job: it may read the gallery)."""
        if self.threshold is not None:
            return self.threshold
        return table.load(self.gallery.get_setting, self.faces.model, ["threshold"], strict=False).number("threshold")

    def _add(self, cand: _Candidate) -> None:
        self.candidates.append(cand)
        self.editor.add_box(cand.box)
        self.list.addItem("")
        self.list.setCurrentRow(len(self.candidates) - 1)

    def _assessed(self, cand: _Candidate) -> Callable[[object], None]:
        def done(result: object) -> None:
            assert isinstance(result, FaceAssessment)
            cand.assessment = result
            if cand in self.candidates and self.list.currentRow() == self.candidates.index(cand):
                self._show(cand)

        return done

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.candidates):
            del self.candidates[row]
            self.editor.remove_box(row)
            self.list.takeItem(row)
            self._refresh()

    def _select(self, row: int) -> None:
        if 0 <= row < len(self.candidates):
            if self.list.currentRow() != row:
                self.list.setCurrentRow(row)
            self.editor.select(row)
            self._show(self.candidates[row])

    def _person_changed(self, text: str) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.candidates):
            self.candidates[row].person = text
            self._show(self.candidates[row], keep_name=True)

    def _show(self, cand: _Candidate, keep_name: bool = False) -> None:
        if not keep_name:
            self.person.blockSignals(True)
            self.person.setCurrentText(cand.person)
            self.person.blockSignals(False)
        a = cand.assessment
        meters = (
            (self.sharpness_bar, a.sharpness if a else 0.0),
            (self.size_bar, a.size if a else 0.0),
            (self.pose_bar, a.frontal if a else 0.0),
        )
        for bar, value in meters:
            bar.setValue(round(value * 100))
        if a is None:
            self.warnings.setText("Measuring…")
        else:
            warnings = a.warnings(cand.person)
            self.warnings.setText("⚠ " + "\n⚠ ".join(warnings) if warnings else "✓ good sample")
        self._refresh()

    def _label(self, i: int, cand: _Candidate) -> str:
        name = cand.person.strip() or "(no name)"
        if cand.assessment is None:
            return f"{i + 1}: {name} — measuring…"
        warnings = cand.assessment.warnings(cand.person)
        return f"{i + 1}: {name} — quality {cand.assessment.observation.quality.score:.2f}" + (
            f" ⚠ {warnings[0]}" if warnings else ""
        )

    def _refresh(self) -> None:
        for i, cand in enumerate(self.candidates):
            item = self.list.item(i)
            if item is not None:
                item.setText(self._label(i, cand))
        ready = bool(self.candidates) and all(
            c.assessment is not None and c.person.strip() and not c.assessment.reject_reason for c in self.candidates
        )
        self.enrol_button.setEnabled(ready and self.busy == 0)

    # ---------------------------------------------------------- enrol

    def enrol_all(self) -> None:
        pending = [(c.person.strip(), c.assessment) for c in self.candidates if c.assessment is not None]
        others = [
            f"{name}: {a.best_match} ({a.best_score:.2f})"
            for name, a in pending
            if a.best_match is not None and a.best_match != name
        ]
        if others:
            answer = QMessageBox.question(
                self,
                "Enrol anyway?",
                "These faces already match someone else:\n" + "\n".join(others) + "\n\nEnrol them anyway?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        gallery, source = self.gallery, self.source

        def store() -> list[int]:
            return [enrol(gallery, name, a, source) for name, a in pending]

        def stored(ids: object) -> None:
            assert isinstance(ids, list)
            self.sample_ids = ids
            self.enrolled.emit(ids)
            self.accept()

        self._run(store, stored)
