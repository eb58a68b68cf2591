"""The console's two privacy exports: "Export as evidence…" (History page: the selected sightings, a case
number and a note, as a signed zip; station.evidence) and "Export all data on this person…" (Gallery page:
everything held on them; storage.person_export). The dialogs only ask; the exports run as background jobs.
"""

from __future__ import annotations

import getpass
from importlib import metadata
from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from station.evidence import export as export_evidence
from storage.evidence import EvidenceSummary
from storage.gallery import Gallery
from storage.person_export import PersonExportSummary, export_person

ZIP_FILTER = "Zip archives (*.zip)"


def operator_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def software_version() -> str:
    try:
        return metadata.version("facestation")
    except metadata.PackageNotFoundError:
        return "unknown"


class EvidenceDialog(QDialog):
    """Asks for the case number, the operator's note and where to write the zip."""

    def __init__(self, count: int, suggested: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export as evidence")
        self.case = QLineEdit()
        self.case.setPlaceholderText("case number or reference")
        self.note = QPlainTextEdit()
        self.note.setPlaceholderText("what these sightings show, and why they are exported")
        self.path = QLineEdit(str(suggested))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.path, 1)
        where.addWidget(browse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(QLabel(f"{count} sighting(s): their crops, snapshots and the named people's enrolled images, "
                           "with a manifest signed by this station's key."))  # fmt: skip
        form.addRow("Case", self.case)
        form.addRow("Note", self.note)
        form.addRow("Save to", where)
        form.addRow(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save evidence", self.path.text(), ZIP_FILTER)
        if path:
            self.path.setText(path)

    def values(self) -> tuple[str, str, Path]:
        return self.case.text().strip(), self.note.toPlainText().strip(), Path(self.path.text().strip())


def evidence(gallery: Gallery, ids: list[int], case: str, note: str, path: Path) -> EvidenceSummary:
    """The export itself (a background job)."""
    return export_evidence(
        gallery, ids, path, operator=operator_name(), version=software_version(), case=case, note=note
    )


def evidence_done(summary: EvidenceSummary) -> str:
    return (
        f"Evidence: {summary.sightings} sighting(s), {summary.files} files, signed {summary.signer}, in {summary.path}"
    )


def person_data(gallery: Gallery, person_id: int, path: Path) -> PersonExportSummary:
    """Everything held on one person (a background job)."""
    return export_person(gallery, person_id, path, operator=operator_name())


def person_done(summary: PersonExportSummary) -> str:
    return (
        f"All data on {summary.person}: {summary.samples} samples, {summary.sightings} sightings, "
        f"{summary.audit_entries} audit entries, in {summary.path}"
    )


def ask_person_file(parent: QWidget, name: str) -> Path | None:
    safe = "".join(c if c.isalnum() else "-" for c in name).strip("-") or "person"
    path, _ = QFileDialog.getSaveFileName(parent, "Export all data on this person", f"{safe}-data.zip", ZIP_FILTER)
    return Path(path) if path else None
