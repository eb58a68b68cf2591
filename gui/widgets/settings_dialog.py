"""The station's settings, stored in the gallery: every setting of the table in station/settings.py
(recognition threshold, minimum face size, the maximum recognition rate per camera, retention,
unknown-face alerts, the Ray cluster); and the station key (shown, never regenerated here: a new
key would unpair every camera).

The form is built from that table, and checked by it, so what this dialog accepts the recogniser and
the command line accept too. Loading and saving run in background jobs; values are checked before
anything is stored.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.jobs import Jobs
from gui.strictness import meaning
from gui.widgets.thumbnails import ViewJobs
from station import settings as table
from station.settings import Setting, SettingError, SettingValues
from storage.gallery import Gallery

KEY_TOOLTIP = (
    "The key that pairs cameras with this station. It cannot be regenerated here: a new key "
    "would unpair every camera until each one is given the new key."
)
SettingWidget = QDoubleSpinBox | QSpinBox | QCheckBox | QLineEdit


def _widget(s: Setting) -> SettingWidget:
    """The editor of one setting. Spin boxes allow more than the setting accepts, so an out-of-range
    value is refused with a message naming the range rather than silently clamped."""
    if s.kind is bool:
        box = QCheckBox(s.title)
        return box
    if s.kind is str:
        edit = QLineEdit()
        if s.empty_means:
            edit.setPlaceholderText(f"empty: {s.empty_means}")
        return edit
    assert s.low is not None and s.high is not None
    spin: QDoubleSpinBox | QSpinBox
    if s.kind is float:
        spin = QDoubleSpinBox()
        spin.setDecimals(s.decimals)
        spin.setRange(min(0.0, s.low), s.high * 2)
        spin.setSingleStep(s.step)
    else:
        spin = QSpinBox()
        spin.setRange(int(min(0, s.low)), int(s.high * 2))
    if s.unit:
        spin.setSuffix(f" {s.unit}")
    if s.zero_means:
        spin.setSpecialValueText(s.zero_means)
    spin.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
    return spin


def masked(key_hex: str) -> str:
    return key_hex[:4] + "•" * max(0, len(key_hex) - 8) + key_hex[-4:] if len(key_hex) > 8 else "•" * len(key_hex)


class SettingsDialog(QDialog):
    """Edit the settings; Save checks them, stores them and emits ``settings_changed``.

    ``model`` is the embedding model the station recognises with: the threshold's default is its
    calibrated one (resolved in the loading job).
    """

    settings_changed = Signal(dict)  # the saved settings under their gallery keys

    def __init__(
        self,
        gallery: Gallery,
        jobs: Jobs,
        *,
        model: str,
        key_file: Path | None = None,
        key_hex: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.gallery = gallery
        self.model = model
        self.key_hex = key_hex
        self.work = ViewJobs(jobs, self, "Settings")
        self.loaded: SettingValues | None = None
        self.saved: SettingValues | None = None
        self.defaults: SettingValues | None = None

        self.widgets: dict[str, SettingWidget] = {}
        form = QFormLayout()
        for s in table.SETTINGS:
            widget = _widget(s)
            widget.setToolTip(s.describe())
            self.widgets[s.name] = widget
            label = "" if s.kind is bool else s.title + (f" ({s.applies})" if s.applies != "at once" else "")
            form.addRow(label, widget)
        self.meaning = QLabel("")  # what the threshold means, from the model's calibration
        self.meaning.setWordWrap(True)
        self.meaning.setStyleSheet("color: #555;")
        form.insertRow(1, "", self.meaning)
        threshold = self.widgets["threshold"]
        if isinstance(threshold, QDoubleSpinBox):
            threshold.valueChanged.connect(self._threshold_meaning)
        self.form_box = QWidget()
        self.form_box.setLayout(form)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #b36b00;")
        self.notes.hide()

        key_box = QGroupBox("Station key")
        key_box.setToolTip(KEY_TOOLTIP)
        self.key_path = QLabel(str(key_file) if key_file is not None else "(no key file)")
        self.key_path.setToolTip(KEY_TOOLTIP)
        self.key = QLineEdit(masked(key_hex))
        self.key.setReadOnly(True)
        self.key.setMinimumWidth(self.key.fontMetrics().horizontalAdvance("0" * max(16, len(key_hex))) + 16)
        self.key.setCursorPosition(0)
        self.key.setToolTip(KEY_TOOLTIP)
        self.show_key = QPushButton("Show")
        self.show_key.setCheckable(True)
        self.show_key.toggled.connect(self._toggle_key)
        copy = QPushButton("Copy")
        copy.clicked.connect(self.copy_key)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key, 1)
        key_row.addWidget(self.show_key)
        key_row.addWidget(copy)
        key_layout = QVBoxLayout(key_box)
        key_layout.addWidget(self.key_path)
        key_layout.addLayout(key_row)
        note = QLabel("Regenerating the key is not offered: it would unpair every camera.")
        note.setWordWrap(True)
        key_layout.addWidget(note)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self.problems_label = QLabel("")
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet("color: #c0392b;")
        self.problems_label.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.form_box)
        layout.addWidget(self.notes)
        layout.addWidget(self.problems_label)
        layout.addWidget(key_box)
        layout.addWidget(self.buttons)
        self.form_box.setEnabled(False)  # until the stored values are in
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(False)
        self.refresh()

    @property
    def busy(self) -> int:
        return self.work.busy

    def _threshold_meaning(self, value: float) -> None:
        self.meaning.setText(meaning(self.model, value))

    @property
    def save_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Save)

    def refresh(self) -> None:
        """Load the stored settings (the defaults where none) into the form."""
        gallery, model = self.gallery, self.model

        def load() -> tuple[SettingValues, SettingValues]:
            return table.load(gallery.get_setting, model, strict=False), table.defaults(model)

        self.work.run(load, self._loaded, failed=lambda _: self._ready())

    def _loaded(self, result: tuple[SettingValues, SettingValues]) -> None:
        self.loaded, self.defaults = result
        for name, default in self.defaults:
            self.widgets[name].setToolTip(table.setting(name).describe(default))
        self.put(self.loaded)
        if self.loaded.problems:
            self.notes.setText("\n".join(self.loaded.problems))
            self.notes.show()
        self._ready()

    def _ready(self) -> None:
        self.form_box.setEnabled(True)
        self.save_button.setEnabled(True)

    def put(self, values: SettingValues) -> None:
        for name, value in values:
            self.set_value(name, value)

    def set_value(self, name: str, value: object) -> None:
        w = self.widgets[name]
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QLineEdit):
            w.setText(str(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(str(value)))
        else:
            w.setValue(int(float(str(value))))

    def raw_values(self) -> dict[str, object]:
        """What the form holds, by setting name, unchecked."""
        out: dict[str, object] = {}
        for name, w in self.widgets.items():
            if isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, QLineEdit):
                out[name] = w.text().strip()
            elif isinstance(w, QDoubleSpinBox):
                out[name] = round(w.value(), w.decimals())
            else:
                out[name] = w.value()
        return out

    def problems(self) -> list[str]:
        """One readable line per value the settings table refuses (empty when all are fine)."""
        try:
            SettingValues.checked(self.raw_values())
        except SettingError as exc:
            return str(exc).splitlines()
        return []

    def values(self) -> SettingValues:
        """The form's values, checked by the table (SettingError listing every problem)."""
        return SettingValues.checked(self.raw_values())

    def save(self) -> bool:
        """Check the form; refuse with the problems shown, or store it in a job and close. False when refused."""
        try:
            settings = self.values()
        except SettingError as exc:
            self.problems_label.setText(str(exc))
            self.problems_label.show()
            return False
        self.problems_label.hide()
        gallery = self.gallery
        self.save_button.setEnabled(False)

        def store() -> None:
            for key, value in settings.by_key().items():
                gallery.set_setting(key, value)

        def done(_: object) -> None:
            self.saved = settings
            self.save_button.setEnabled(True)
            self.settings_changed.emit(settings.by_key())
            self.accept()

        self.work.run(store, done, failed=lambda _: self.save_button.setEnabled(True))
        return True

    def _toggle_key(self, show: bool) -> None:
        self.key.setText(self.key_hex if show else masked(self.key_hex))
        self.key.setCursorPosition(0)
        self.show_key.setText("Hide" if show else "Show")

    def copy_key(self) -> None:
        clipboard = QApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(self.key_hex)
