"""Enrol faces from a frozen frame or an image file: draw boxes or click detected faces,
name each one, read the quality meter and the warnings, then enrol.

From a camera the dialog holds the last few seconds of that camera's frames (station/recent_frames.py),
not just the frozen one: when the frozen face is too small or blurred the operator steps back
through the frames, or jumps to the frame where that face's track was best. A face under the
quality bar can still be enrolled with an explicit "Enrol anyway", which the audit log records
with the reason.

All decoding, detection, embedding and database work runs in background jobs; the dialog only reacts.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QCheckBox,
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
    QSlider,
    QVBoxLayout,
    QWidget,
)

from gui.enrol_checks import FaceAssessment, assess, enrol
from gui.jobs import Jobs
from gui.services import FaceAnalyser
from gui.widgets.box_editor import Box, BoxEditor
from station import settings as table
from station.enrolment import Companion
from station.recent_frames import RecentFrame, RecentFrames, best_of_track, box_iou, track_near
from storage.gallery import Gallery
from vision.pipeline import FaceObservation

CACHED_FRAMES = 8  # decoded pictures and detections kept while stepping
MIN_BETTER = 0.02  # the quality a face's best frame must add to be offered


@dataclass
class _Candidate:
    """GUI-thread state of one box in the dialog; ``frame`` indexes the dialog's frames (0 for one image)."""

    box: Box
    frame: int = 0
    person: str = ""
    assessment: FaceAssessment | None = None
    error: str | None = None
    image: np.ndarray | None = None  # the frame the face is in: the photo model aligns it again at enrolment


def qimage_copy(image: np.ndarray) -> QImage:
    h, w = image.shape[:2]
    data = np.ascontiguousarray(image)
    return QImage(data.data, w, h, data.strides[0], QImage.Format.Format_BGR888).copy()


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


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
        frames: Sequence[RecentFrame] = (),
        frame_index: int | None = None,
        recent: RecentFrames | None = None,
        companions: Sequence[Companion] = (),
        parent: QWidget | None = None,
    ) -> None:
        """``image`` is the picture shown first: ``frames[frame_index]`` decoded when ``frames`` (one
        camera's recent frames, oldest first) are given. ``recent`` is the store they came from: results
        that arrive for them after the freeze (recognition lags a little) are taken from it, so the
        faces' tracks are known. ``threshold`` None: the stored setting."""
        super().__init__(parent)
        self.setWindowTitle(f"Enrol faces — {source}")
        self.resize(1100, 720)
        self.image = image
        self.gallery = gallery
        self.jobs = jobs
        self.faces = faces
        self.companions = tuple(companions)  # the photo model's pipeline: its sample is stored too
        self.threshold = threshold  # None: the stored setting (or the model's calibrated one), read in the jobs
        self.source = source
        self.frames: list[RecentFrame] = list(frames)
        self.recent = recent
        self.index = (len(self.frames) - 1 if frame_index is None else frame_index) if self.frames else 0
        self.candidates: list[_Candidate] = []
        self.busy = 0
        self.sample_ids: list[int] = []
        self._images: OrderedDict[int, np.ndarray] = OrderedDict([(self.index, image)])
        self._detected: OrderedDict[int, list[FaceObservation]] = OrderedDict()
        self._want: int | None = None  # the frame asked for, not yet loaded (newest ask wins)
        self._loading = False
        self._best_pending: tuple[int, Box, str] | None = None  # frame, face box, person: added once detected

        self.editor = BoxEditor(qimage_copy(image))
        self.editor.box_drawn.connect(self.add_box)
        self.editor.detection_clicked.connect(self.add_detection)
        self.editor.box_selected.connect(self._editor_selected)

        # Stepping through the camera's recent frames.
        self.older_button = QPushButton("◀ Older")
        self.older_button.setShortcut("Alt+Left")
        self.older_button.clicked.connect(lambda: self.show_frame(self._target() - 1))
        self.newer_button = QPushButton("Newer ▶")
        self.newer_button.setShortcut("Alt+Right")
        self.newer_button.clicked.connect(lambda: self.show_frame(self._target() + 1))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, max(0, len(self.frames) - 1))
        self.slider.setValue(self.index)
        self.slider.valueChanged.connect(self.show_frame)
        self.frame_label = QLabel("")
        self.best_button = QPushButton("Best frame of this face")
        self.best_button.setToolTip(
            "Go to the frame where this face (its track) was seen best in the last seconds, and take it from there"
        )
        self.best_button.clicked.connect(self.best_frame)
        strip = QHBoxLayout()
        strip.addWidget(self.older_button)
        strip.addWidget(self.slider, 1)
        strip.addWidget(self.newer_button)
        strip.addWidget(self.frame_label)
        strip.addWidget(self.best_button)
        for button in (self.older_button, self.newer_button, self.best_button):
            button.setAutoDefault(False)  # Enter and Space typed in the name never step frames
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.strip = QWidget()
        self.strip.setLayout(strip)
        self.strip.setVisible(len(self.frames) > 1)

        self.list = QListWidget()
        self.list.setWordWrap(True)
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
        self.enrol_anyway = QCheckBox("Enrol anyway, below the quality bar")
        self.enrol_anyway.setToolTip(
            "Store faces the quality checks refuse as weak samples; the audit log records each one and why"
        )
        self.enrol_anyway.toggled.connect(lambda _: self._refresh())
        self.enrol_anyway.hide()
        self.remove = QPushButton("Remove box")
        self.remove.setAutoDefault(False)
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
        side.addWidget(self.enrol_anyway)
        side.addWidget(self.remove, 0, Qt.AlignmentFlag.AlignLeft)
        panel = QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(340)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.enrol_button = self.buttons.addButton("Enrol", QDialogButtonBox.ButtonRole.AcceptRole)
        self.enrol_button.clicked.connect(self.enrol_all)
        self.enrol_button.setDefault(True)
        self.buttons.rejected.connect(self.reject)

        picture = QVBoxLayout()
        picture.addWidget(self.editor, 1)
        picture.addWidget(self.strip)
        top = QHBoxLayout()
        top.addLayout(picture, 1)
        top.addWidget(panel)
        layout = QVBoxLayout(self)
        layout.addLayout(top, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.buttons)
        layout.addLayout(bottom)

        self._run(lambda: [p.name for p in gallery.persons()], self._names_loaded)
        index = self.index
        self._loading = True
        self._run(lambda: (index, image, faces.observe(image)), self._frame_loaded)
        self._update_strip()
        self._refresh()
        if recent is not None and len(self.frames) > 1:
            self._results_timer = QTimer(self)
            self._results_timer.timeout.connect(self._update_strip)
            self._results_timer.start(500)

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
            self._loading = False
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

    def _threshold(self) -> float:
        """The recognition threshold (runs in a job: it may read the gallery)."""
        if self.threshold is not None:
            return self.threshold
        return table.load(self.gallery.get_setting, self.faces.model, ["threshold"], strict=False).number("threshold")

    # --------------------------------------------------------- frames

    @property
    def detected(self) -> list[FaceObservation]:
        """The faces found in the frame shown."""
        return self._detected.get(self.index, [])

    def _target(self) -> int:
        return self._want if self._want is not None else self.index

    def show_frame(self, index: int) -> None:
        """Show frame ``index`` of the camera's recent frames (decoded and searched for faces in a job)."""
        if not self.frames:
            return
        index = max(0, min(len(self.frames) - 1, index))
        if index == self._target():
            return
        self._want = index
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self._update_strip()
        self._load_next()

    def _load_next(self) -> None:
        if self._loading or self._want is None:
            return
        index, self._want = self._want, None
        if index in self._images and index in self._detected:
            self._put_frame(index)
            return
        self._loading = True
        frame, faces, cached = self.frames[index], self.faces, self._images.get(index)

        def work() -> tuple[int, np.ndarray, list[FaceObservation]]:
            image = cached if cached is not None else frame.image()
            return index, image, faces.observe(image)

        self.status.setText(f"Finding faces in the frame of {_clock(frame.captured_at)}…")
        self._run(work, self._frame_loaded)

    def _frame_loaded(self, result: object) -> None:
        assert isinstance(result, tuple)
        index, image, found = result
        self._loading = False
        for cache, value in ((self._images, image), (self._detected, found)):
            cache[index] = value
            cache.move_to_end(index)
            while len(cache) > CACHED_FRAMES:
                cache.popitem(last=False)
        if self._want is None:  # nothing newer asked for meanwhile: show it
            self._put_frame(index)
        self._load_next()

    def _put_frame(self, index: int) -> None:
        self.index = index
        self.image = self._images[index]
        self.editor.set_image(qimage_copy(self.image), [c.box for c in self._on_frame()])
        found = self.detected
        self.editor.set_detections([o.detection.box for o in found])
        self._sync_selection()
        self.status.setText(
            f"{len(found)} face(s) found: click one, or draw a box" if found else "No face found: draw a box"
        )
        self._update_strip()
        if self._best_pending is not None and self._best_pending[0] == index:
            _, box, person = self._best_pending
            self._best_pending = None
            self._take_face_at(box, person)

    def _update_strip(self) -> None:
        if len(self.frames) <= 1:
            return
        target = self._target()
        newest = self.frames[-1].captured_at
        f = self.frames[target]
        ago = newest - f.captured_at
        self.frame_label.setText(
            f"frame {target + 1}/{len(self.frames)} · {_clock(f.captured_at)}"
            + (f" ({ago:.1f} s earlier)" if ago else "")
        )
        self.older_button.setEnabled(target > 0)
        self.newer_button.setEnabled(target < len(self.frames) - 1)
        self.best_button.setEnabled(self._best_for_selection() is not None)

    def _take_results(self) -> None:
        """Faces recognised in the held frames since the freeze, from the store they came from."""
        if self.recent is None or not self.frames or all(f.faces is not None for f in self.frames[-30:]):
            return
        fresh = {f.frame_id: f for f in self.recent.frames(self.frames[0].camera) if f.faces is not None}
        for i, f in enumerate(self.frames):
            if f.faces is None and f.frame_id in fresh:
                self.frames[i] = fresh[f.frame_id]

    def _track_at(self, frame: int, box: Box) -> str | None:
        return track_near(self.frames, frame, box) if self.frames else None

    def _best_for_selection(self) -> tuple[int, Box, str] | None:
        """Where the selected face (or the frame's largest) was seen best: (frame, box, person), if elsewhere."""
        self._take_results()
        row = self.list.currentRow()
        quality: float | None = None
        if 0 <= row < len(self.candidates):
            cand = self.candidates[row]
            frame, box, person = cand.frame, cand.box, cand.person
            if cand.assessment is not None:
                quality = cand.assessment.observation.quality.score
        elif self.detected:
            largest = max(self.detected, key=lambda o: o.detection.box[2] * o.detection.box[3])
            frame, box, person, quality = self.index, largest.detection.box, "", largest.quality.score
        else:
            return None
        track = self._track_at(frame, box)
        best = best_of_track(self.frames, track) if track is not None else None
        if best is None or best[0] == frame or (quality is not None and best[1].quality.score < quality + MIN_BETTER):
            return None  # no better frame of this face is held
        return best[0], best[1].box, person

    def best_frame(self) -> None:
        """Replace the selected face by the same face (its track) in the frame where it was seen best."""
        found = self._best_for_selection()
        if found is None:
            return
        row = self.list.currentRow()
        if 0 <= row < len(self.candidates):
            self._remove(row)
        self._best_pending = found
        if found[0] == self.index and self.index in self._detected:
            self._put_frame(found[0])
        else:
            self.show_frame(found[0])

    def _take_face_at(self, box: Box, person: str) -> None:
        """Add the detected face that overlaps ``box`` best (else ``box`` itself), named ``person``."""
        found = self.detected
        scored = sorted(((box_iou(o.detection.box, box), i) for i, o in enumerate(found)), reverse=True)
        if scored and scored[0][0] >= 0.3:
            self.add_detection(scored[0][1], person)
        else:
            self.add_box(box, person)

    # ------------------------------------------------------ candidates

    def _on_frame(self) -> list[_Candidate]:
        return [c for c in self.candidates if c.frame == self.index]

    def _replacing(self, person: str) -> str:
        """A face taken on another frame while a refused one is selected replaces it, keeping its name:
        that is stepping back to a better frame of the same face."""
        row = self.list.currentRow()
        if 0 <= row < len(self.candidates):
            cand = self.candidates[row]
            if cand.frame != self.index and cand.assessment is not None and cand.assessment.reject_reason:
                self._remove(row)
                return person or cand.person
        return person

    def add_box(self, box: Box, person: str = "") -> None:
        person = self._replacing(person)
        cand = _Candidate(box, self.index, person, image=self.image)
        self._add(cand)
        image, faces = self.image, self.faces
        self._run(lambda: assess(faces.observe_box(image, box), self.gallery, self._threshold()), self._assessed(cand))

    def add_detection(self, index: int, person: str = "") -> None:
        obs = self.detected[index]
        if any(c.box == obs.detection.box and c.frame == self.index for c in self.candidates):
            return
        person = self._replacing(person)
        cand = _Candidate(obs.detection.box, self.index, person, image=self.image)
        self._add(cand)
        self._run(lambda: assess(obs, self.gallery, self._threshold()), self._assessed(cand))

    def _add(self, cand: _Candidate) -> None:
        self.candidates.append(cand)
        self.list.addItem("")
        self.editor.boxes = [c.box for c in self._on_frame()]
        self.list.setCurrentRow(len(self.candidates) - 1)
        self.person.setFocus()  # name it next

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
            self._remove(row)

    def _remove(self, row: int) -> None:
        del self.candidates[row]
        self.list.takeItem(row)
        self.editor.boxes = [c.box for c in self._on_frame()]
        self._sync_selection()
        self._refresh()

    def _editor_selected(self, box_index: int) -> None:
        shown = self._on_frame()
        if 0 <= box_index < len(shown):
            self._select(self.candidates.index(shown[box_index]))

    def _select(self, row: int) -> None:
        if 0 <= row < len(self.candidates):
            if self.list.currentRow() != row:
                self.list.setCurrentRow(row)
            cand = self.candidates[row]
            if cand.frame != self.index and self.frames:
                self.show_frame(cand.frame)
            self._sync_selection()
            self._show(cand)
        self._update_strip()

    def _sync_selection(self) -> None:
        row = self.list.currentRow()
        shown = self._on_frame()
        self.editor.labels = [str(self.candidates.index(c) + 1) for c in shown]  # as numbered in the list
        cand = self.candidates[row] if 0 <= row < len(self.candidates) else None
        self.editor.select(shown.index(cand) if cand in shown else -1)

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
            text = "⚠ " + "\n⚠ ".join(warnings) if warnings else "✓ good sample"
            if a.reject_reason and len(self.frames) > 1:
                text += "\nStep back through the frames and click the face there to replace this one."
            self.warnings.setText(text)
        self._refresh()

    def _label(self, i: int, cand: _Candidate) -> str:
        name = cand.person.strip() or "(no name)"
        when = f" @ {_clock(self.frames[cand.frame].captured_at)}" if len(self.frames) > 1 else ""
        if cand.assessment is None:
            return f"{i + 1}: {name}{when} — measuring…"
        warnings = cand.assessment.warnings(cand.person)
        return f"{i + 1}: {name}{when} — quality {cand.assessment.observation.quality.score:.2f}" + (
            f" ⚠ {warnings[0]}" if warnings else ""
        )

    def _refresh(self) -> None:
        for i, cand in enumerate(self.candidates):
            item = self.list.item(i)
            if item is not None:
                item.setText(self._label(i, cand))
        weak = [c for c in self.candidates if c.assessment is not None and c.assessment.reject_reason]
        self.enrol_anyway.setVisible(bool(weak) or self.enrol_anyway.isChecked())
        allow_weak = self.enrol_anyway.isChecked()
        ready = bool(self.candidates) and all(
            c.assessment is not None and c.person.strip() and (allow_weak or not c.assessment.reject_reason)
            for c in self.candidates
        )
        self.enrol_button.setEnabled(ready and self.busy == 0)
        self.enrol_button.setText("Enrol anyway" if weak and allow_weak else "Enrol")

    # ---------------------------------------------------------- enrol

    def _source(self, cand: _Candidate) -> str:
        if len(self.frames) > 1:
            f = self.frames[cand.frame]
            day = time.strftime("%Y-%m-%d", time.localtime(f.captured_at))
            return f"camera {f.camera} at {day} {_clock(f.captured_at)}"
        return self.source

    def enrol_all(self) -> None:
        pending = [
            (c.person.strip(), c.assessment, self._source(c), c.image)
            for c in self.candidates
            if c.assessment is not None
        ]
        others = [
            f"{name}: {a.best_match} ({a.best_score:.2f})"
            for name, a, _, _ in pending
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
        gallery, anyway, companions = self.gallery, self.enrol_anyway.isChecked(), self.companions

        def store() -> list[int]:
            return [
                enrol(gallery, name, a, source, anyway=anyway, image=image, companions=companions)
                for name, a, source, image in pending
            ]

        def stored(ids: object) -> None:
            assert isinstance(ids, list)
            self.sample_ids = ids
            self.enrolled.emit(ids)
            self.accept()

        self._run(store, stored)
