"""Evidence and data-request exports as the station makes them: the CLI and the console both come here, so
the manifest records the same context either way (the decision in force per model, with its calibration;
this host's name; the software's version) and the signing key is found in one place."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from storage import locations
from storage.evidence import EvidenceRequest, EvidenceSummary, export_evidence
from storage.gallery import Gallery
from storage.signing import SigningKey, load_or_create

SOFTWARE = "FaceStation"


def signing_key_path(gallery: Path, named: Path | None = None) -> Path:
    """The signing key the operator named, else ``signing.key`` beside the gallery."""
    return named if named is not None else locations.default_signing_key(gallery)


def signing_key(gallery: Path, named: Path | None = None) -> tuple[SigningKey, bool]:
    """The station's signing key, made once (owner-only) on first use; and whether it was made now."""
    return load_or_create(signing_key_path(gallery, named))


def decision(gallery: Gallery, model: str) -> dict[str, Any]:
    """The decision in force for ``model``: the threshold and margin the station would use now (the
    gallery's setting, else the calibrated one), and the model's calibration record."""
    from station.runtime import RecognitionSettings
    from vision.embedders.calibrated import calibration

    out: dict[str, Any] = {"model": model}
    try:
        settings = RecognitionSettings.from_gallery(gallery, model)
    except ValueError as exc:  # a model this version does not know, or a stored value it refuses
        out["error"] = str(exc)
        return out
    out.update(threshold=settings.threshold, margin=settings.margin, min_face_px=settings.min_face_px)
    found = calibration(model)
    out["calibration"] = None if found is None else asdict(found)
    return out


def export(
    gallery: Gallery,
    sighting_ids: Sequence[int],
    dest: Path,
    *,
    operator: str,
    version: str,
    case: str = "",
    note: str = "",
    key_file: Path | None = None,
    overwrite: bool = False,
) -> EvidenceSummary:
    """Export these sightings as signed evidence to ``dest`` (storage.evidence), audited."""
    key, _ = signing_key(gallery.path, key_file)
    models = sorted({s.model for s in gallery.sightings_by_id(list(sighting_ids))})
    request = EvidenceRequest(
        sighting_ids=tuple(int(i) for i in sighting_ids),
        operator=operator,
        software=f"{SOFTWARE} {version}",
        station=socket.gethostname(),
        case=case,
        note=note,
        decisions={m: decision(gallery, m) for m in models},
    )
    return export_evidence(gallery, dest, request, key, overwrite=overwrite)
