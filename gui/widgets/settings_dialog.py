"""The station's settings, stored in the gallery: every setting of the table in station/settings.py,
a page per group: Recognition (threshold, minimum face size, the maximum recognition rate per camera,
retention, unknown-face alerts, the Ray cluster) and Integrations (MQTT, webhooks, the local API, the
outbox; they take effect at the next start), where an API token can also be made; and the station key
(shown, never regenerated here: a new key would unpair every camera).

The form is built from that table, and checked by it, so what this dialog accepts the recogniser and
the command line accept too. Loading and saving run in background jobs; values are checked before
anything is stored.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
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
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.jobs import Jobs
from gui.strictness import meaning
from gui.widgets.thumbnails import ViewJobs
from station import settings as table
from station.settings import Setting, SettingError, SettingValues
from storage.gallery import Gallery
from vision.embedders.calibrated import per_pass_in_words

KEY_TOOLTIP = (
    "The key that pairs cameras with this station. It cannot be regenerated here: a new key "
    "would unpair every camera until each one is given the new key."
)


class MultiLineEdit(QPlainTextEdit):
    """A setting written over several lines (the webhooks' JSON), read and set as text like a line edit."""

    def text(self) -> str:
        return self.toPlainText()

    def setText(self, text: str) -> None:
        self.setPlainText(text)


SettingWidget = QDoubleSpinBox | QSpinBox | QCheckBox | QLineEdit | MultiLineEdit


def _widget(s: Setting) -> SettingWidget:
    """The editor of one setting. Spin boxes allow more than the setting accepts, so an out-of-range
    value is refused with a message naming the range rather than silently clamped."""
    if s.kind is bool:
        box = QCheckBox(s.title)
        return box
    if s.kind is str and s.multiline:
        text = MultiLineEdit()
        text.setPlaceholderText(f"empty: {s.empty_means}" if s.empty_means else "")
        text.setFixedHeight(90)
        return text
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
        self.token_shown = ""  # the last API token made here (shown once)

        self.widgets: dict[str, SettingWidget] = {}
        self.forms: dict[str, QFormLayout] = {}
        self.form_box = QTabWidget()  # a page per group of settings
        for s in table.SETTINGS:
            widget = _widget(s)
            widget.setToolTip(s.describe())
            self.widgets[s.name] = widget
            label = "" if s.kind is bool else s.title + (f" ({s.applies})" if s.applies != "at once" else "")
            self._form(s.group).addRow(label, widget)
        self.meaning = QLabel("")  # what the threshold means, from the model's calibration
        self.meaning.setWordWrap(True)
        self.meaning.setStyleSheet("color: #555;")
        self._form(table.setting("threshold").group).insertRow(1, "", self.meaning)
        threshold = self.widgets["threshold"]
        if isinstance(threshold, QDoubleSpinBox):
            threshold.valueChanged.connect(self._threshold_meaning)
        self.token_button = QPushButton("Make an API token…")
        self.token_button.setToolTip("A bearer token for the local API, shown once; the gallery keeps only its hash.")
        self.token_button.clicked.connect(self.make_token)
        self.token_button.setEnabled(bool(key_hex))
        self._form("Integrations").addRow("API tokens", self.token_button)
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

    def _form(self, group: str) -> QFormLayout:
        if group not in self.forms:
            page = QWidget()
            self.forms[group] = QFormLayout(page)
            self.form_box.addTab(page, group)
        return self.forms[group]

    @property
    def busy(self) -> int:
        return self.work.busy

    def _threshold_meaning(self, value: float) -> None:
        passes = per_pass_in_words(self.model, value)
        self.meaning.setText(meaning(self.model, value) + ("" if passes is None else f" Live, {passes}."))

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
        elif isinstance(w, (MultiLineEdit, QLineEdit)):
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
            elif isinstance(w, (MultiLineEdit, QLineEdit)):
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
            self.settings_changed.emit(self._changed(settings))
            self.accept()

        self.work.run(store, done, failed=lambda _: self.save_button.setEnabled(True))
        return True

    def _changed(self, settings: SettingValues) -> dict[str, object]:
        """The saved values that differ from those loaded, under their gallery keys (all, if none were loaded)."""
        before = {} if self.loaded is None else self.loaded.by_key()
        return {k: v for k, v in settings.by_key().items() if k not in before or before[k] != v}

    def make_token(self) -> None:
        """Ask for a name, make a token in a job, and show it once (the gallery keeps only its hash)."""
        name, ok = QInputDialog.getText(self, "API token", "A name for the token (who or what will use it):")
        if not ok or not name.strip():
            return
        from integrations.api.auth import TokenAuth
        from storage.tokens import TokenStore

        gallery, key = self.gallery, bytes.fromhex(self.key_hex.strip())
        self.work.run(lambda: TokenAuth(TokenStore(gallery), key).create(name.strip()), self._show_token)

    def _show_token(self, token: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "API token", "The new token, shown this once:", parent=self)
        box.setInformativeText(token)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()
        self.token_shown = token

    def _toggle_key(self, show: bool) -> None:
        self.key.setText(self.key_hex if show else masked(self.key_hex))
        self.key.setCursorPosition(0)
        self.show_key.setText("Hide" if show else "Show")

    def copy_key(self) -> None:
        clipboard = QApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(self.key_hex)
