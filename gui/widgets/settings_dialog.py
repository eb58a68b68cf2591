"""The station's settings, stored in the gallery: recognition threshold, minimum face size, the
maximum recognition rate per camera, retention, unknown-face alerts; and the station key (shown,
never regenerated here: a new key would unpair every camera).

Loading and saving run in background jobs; values are checked before anything is stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
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
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.jobs import Jobs
from gui.widgets.thumbnails import ViewJobs
from storage.gallery import Gallery

KEYS = {
    "threshold": "recognition.threshold",
    "min_face_px": "recognition.min_face_px",
    "max_rate_hz": "recognition.max_rate_hz",
    "retention_days": "retention.days",
    "alerts_unknown": "alerts.unknown",
    "ray_address": "recognition.ray_address",
}
# Accepted ranges (inclusive). The spin boxes allow a little more, so an out-of-range value is
# refused with a message rather than silently clamped.
RANGES: dict[str, tuple[float, float]] = {
    "threshold": (0.05, 0.99),
    "min_face_px": (12, 1000),
    "max_rate_hz": (0.1, 60.0),
    "retention_days": (0, 36500),
}
LABELS = {
    "threshold": "recognition threshold",
    "min_face_px": "minimum face size (px)",
    "max_rate_hz": "maximum recognition rate per camera (Hz)",
    "retention_days": "retention (days)",
}
KEY_TOOLTIP = (
    "The key that pairs cameras with this station. It cannot be regenerated here: a new key "
    "would unpair every camera until each one is given the new key."
)


@dataclass(frozen=True)
class ConsoleSettings:
    threshold: float
    min_face_px: int = 40
    max_rate_hz: float = 5.0
    retention_days: int = 90  # 0 keeps sightings forever
    alerts_unknown: bool = False
    ray_address: str = ""  # empty: recognise on this PC; applies at the next start

    def problems(self) -> list[str]:
        """One readable line per value outside its range (empty when all are fine)."""
        out = []
        values = asdict(self)
        for field, (low, high) in RANGES.items():
            v = values[field]
            if not low <= v <= high:
                out.append(f"The {LABELS[field]} must be between {low:g} and {high:g} (it is {v:g}).")
        if self.ray_address and not _looks_like_hostport(self.ray_address):
            out.append(f"The Ray cluster address must be HOST:PORT (it is {self.ray_address!r}).")
        return out

    def as_settings(self) -> dict[str, Any]:
        """The settings under their gallery keys."""
        return {KEYS[k]: v for k, v in asdict(self).items()}

    @classmethod
    def load(cls, gallery: Gallery, default_threshold: float) -> ConsoleSettings:
        """The stored settings, with the defaults for those unset (runs in a job)."""
        d = cls(threshold=default_threshold)

        def num(key: str, default: float) -> float:
            value = gallery.get_setting(key, default)
            return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

        return cls(
            threshold=num(KEYS["threshold"], d.threshold),
            min_face_px=int(num(KEYS["min_face_px"], d.min_face_px)),
            max_rate_hz=num(KEYS["max_rate_hz"], d.max_rate_hz),
            retention_days=int(num(KEYS["retention_days"], d.retention_days)),
            alerts_unknown=bool(gallery.get_setting(KEYS["alerts_unknown"], d.alerts_unknown)),
            ray_address=str(gallery.get_setting(KEYS["ray_address"], "") or ""),
        )

    def save(self, gallery: Gallery) -> None:
        problems = self.problems()
        if problems:
            raise ValueError(problems[0])
        for key, value in self.as_settings().items():
            gallery.set_setting(key, value)


def _looks_like_hostport(text: str) -> bool:
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536 and " " not in text


def masked(key_hex: str) -> str:
    return key_hex[:4] + "•" * max(0, len(key_hex) - 8) + key_hex[-4:] if len(key_hex) > 8 else "•" * len(key_hex)


class SettingsDialog(QDialog):
    """Edit the settings; Save checks them, stores them and emits ``settings_changed``."""

    settings_changed = Signal(dict)  # the saved settings under their gallery keys

    def __init__(
        self,
        gallery: Gallery,
        jobs: Jobs,
        *,
        default_threshold: float,
        key_file: Path | None = None,
        key_hex: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.gallery = gallery
        self.default_threshold = default_threshold
        self.key_hex = key_hex
        self.work = ViewJobs(jobs, self, "Settings")
        self.loaded: ConsoleSettings | None = None
        self.saved: ConsoleSettings | None = None

        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setDecimals(3)
        self.threshold.setSingleStep(0.01)
        self.threshold.setToolTip(
            "Cosine similarity a face needs to be recognised "
            f"(the model's calibrated default: {default_threshold:.3f}). "
            "Higher: fewer false matches, more faces left unknown."
        )
        self.min_face = QSpinBox()
        self.min_face.setRange(0, 10_000)
        self.min_face.setSuffix(" px")
        self.max_rate = QDoubleSpinBox()
        self.max_rate.setRange(0.0, 1000.0)
        self.max_rate.setDecimals(1)
        self.max_rate.setSuffix(" Hz")
        self.retention = QSpinBox()
        self.retention.setRange(0, 100_000)
        self.retention.setSuffix(" days")
        self.retention.setSpecialValueText("keep forever")
        self.alerts_unknown = QCheckBox("Alert on new unknown faces")
        self.ray_address = QLineEdit()
        self.ray_address.setPlaceholderText("empty: recognise on this PC")
        self.ray_address.setToolTip(
            "HOST:PORT of a Ray cluster whose workers do the recognition (docs/scaling.md). "
            "Takes effect the next time the console starts."
        )

        form = QFormLayout()
        form.addRow("Recognition threshold", self.threshold)
        form.addRow("Minimum face size", self.min_face)
        form.addRow("Max recognition rate per camera", self.max_rate)
        form.addRow("Keep sightings for", self.retention)
        form.addRow("", self.alerts_unknown)
        form.addRow("Ray cluster (next start)", self.ray_address)

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
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(key_box)
        layout.addWidget(self.buttons)
        self._put(ConsoleSettings(threshold=default_threshold))
        self.buttons.setEnabled(False)
        self.refresh()

    @property
    def busy(self) -> int:
        return self.work.busy

    def refresh(self) -> None:
        """Load the stored settings into the form."""
        gallery, default = self.gallery, self.default_threshold
        self.work.run(
            lambda: ConsoleSettings.load(gallery, default), self._loaded, failed=lambda _: self.buttons.setEnabled(True)
        )

    def _loaded(self, settings: ConsoleSettings) -> None:
        self.loaded = settings
        self._put(settings)
        self.buttons.setEnabled(True)

    def _put(self, s: ConsoleSettings) -> None:
        self.threshold.setValue(s.threshold)
        self.min_face.setValue(s.min_face_px)
        self.max_rate.setValue(s.max_rate_hz)
        self.retention.setValue(s.retention_days)
        self.alerts_unknown.setChecked(s.alerts_unknown)
        self.ray_address.setText(s.ray_address)

    def values(self) -> ConsoleSettings:
        return ConsoleSettings(
            threshold=round(self.threshold.value(), 3),
            min_face_px=self.min_face.value(),
            max_rate_hz=round(self.max_rate.value(), 1),
            retention_days=self.retention.value(),
            alerts_unknown=self.alerts_unknown.isChecked(),
            ray_address=self.ray_address.text().strip(),
        )

    def save(self) -> bool:
        """Check the form; refuse with a message, or store it in a job and close. False when refused."""
        settings = self.values()
        problems = settings.problems()
        if problems:
            QMessageBox.warning(self, "Settings", "\n".join(problems))
            return False
        gallery = self.gallery
        self.buttons.setEnabled(False)

        def done(_: object) -> None:
            self.saved = settings
            self.buttons.setEnabled(True)
            self.settings_changed.emit(settings.as_settings())
            self.accept()

        self.work.run(lambda: settings.save(gallery), done, failed=lambda _: self.buttons.setEnabled(True))
        return True

    def _toggle_key(self, show: bool) -> None:
        self.key.setText(self.key_hex if show else masked(self.key_hex))
        self.key.setCursorPosition(0)
        self.show_key.setText("Hide" if show else "Show")

    def copy_key(self) -> None:
        clipboard = QApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(self.key_hex)
