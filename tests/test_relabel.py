"""A history that corrects itself: once a person is enrolled, their past unknown sightings that now match at the
current strictness are found (real FaceNet embeddings of LFW photos), offered best first, relabelled in one
step or one by one, audited and undone; relabelling while sightings are being written loses none."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from station.enrolment import crop_jpeg
from station.relabel_offer import find_candidates
from station.runtime import RecognitionSettings
from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.records import NewSighting
from tests.conftest import FACES, need
from vision.pipeline import FaceObservation, FacePipeline, read_image

PHOTOS = [("Colin_Powell", i) for i in range(1, 9)] + [("Tony_Blair", i) for i in (2, 3, 4)]
JPEG = b"\xff\xd8\xff\xd9"


@pytest.fixture(scope="module")
def faces(pipeline: FacePipeline) -> dict[tuple[str, int], FaceObservation]:
    images = []
    for name, i in PHOTOS:
        image = read_image(need(FACES / "identities" / name / f"{name}_{i:04d}.jpg"))
        assert image is not None
        images.append(image)
    return dict(zip(PHOTOS, pipeline.central_faces(images), strict=True))


def unknown(gallery: Gallery, obs: FaceObservation, camera: str, start: float) -> None:
    gallery.record_sightings(
        [
            NewSighting(
                camera,
                start,
                start + 1,
                None,
                0.3,
                (1, 1, 60, 60),
                crop_jpeg(obs),
                obs.embedding,
                obs.model,
                f"{camera}-{start:.0f}",
            )
        ]
    )


@pytest.mark.slow
def test_past_sightings_that_now_match_are_offered_best_first_relabelled_and_undone(
    gallery: Gallery, faces: dict[tuple[str, int], FaceObservation], pipeline: FacePipeline
) -> None:
    for n, key in enumerate(PHOTOS[1:]):  # Colin 2..8 and Tony, all unknown
        unknown(gallery, faces[key], "door", 1000.0 + n)
    assert gallery.flush()
    colin_ids = {s.id for s in gallery.history(limit=50, audit=False) if s.start < 1007}
    settings = RecognitionSettings.for_model(pipeline.model)
    first = faces["Colin_Powell", 1]
    gallery.enrol_sample(
        "Colin Powell",
        model=first.model,
        embedding=first.embedding,
        crop_jpeg=crop_jpeg(first),
        source="photo 1",
        quality=0.9,
    )
    offered = find_candidates(gallery, "Colin Powell", pipeline.model, settings)
    ids = [c.sighting.id for c in offered]
    assert offered and set(ids) <= colin_ids, "only his sightings, none of Tony Blair's"
    assert len(ids) >= 3, [round(c.score, 3) for c in offered]
    assert [c.score for c in offered] == sorted((c.score for c in offered), reverse=True), "best first"
    assert all(c.score >= settings.threshold for c in offered)

    # One by one, then the rest in one step; each a batch in the audit log.
    one = gallery.relabels.apply("Colin Powell", [(ids[0], offered[0].score)], reason="just enrolled; one by one")
    rest = gallery.relabels.apply("Colin Powell", [(c.sighting.id, c.score) for c in offered], reason="all")
    assert one.sighting_ids == (ids[0],) and set(rest.sighting_ids) == set(ids[1:]), "already named: skipped"
    assert {s.id for s in gallery.history(person="Colin Powell", audit=False)} == set(ids)
    assert find_candidates(gallery, "Colin Powell", pipeline.model, settings) == [], "nothing left to offer"
    entry = json.loads(gallery.audit_log(action="relabel")[0].details)
    assert entry["person"] == "Colin Powell" and entry["skipped"] == [ids[0]] and entry["reason"] == "all"

    # Reversible: the batch goes back to unknown, the other stays.
    assert sorted(gallery.relabels.undo(rest.id)) == sorted(ids[1:])
    assert {s.id for s in gallery.history(person="Colin Powell", audit=False)} == {ids[0]}
    with pytest.raises(GalleryError, match="already undone"):
        gallery.relabels.undo(rest.id)
    (batch, _) = gallery.relabels.batches("Colin Powell")
    assert batch.id == rest.id and batch.undone is not None


def test_relabelling_while_sightings_are_being_written_loses_none(gallery: Gallery) -> None:
    gallery.enrol_sample("Ada", model="m16", embedding=np.ones(16, np.float32), crop_jpeg=JPEG, source="t", quality=1)
    rng = np.random.default_rng(5)

    def batch(first: int, n: int) -> list[NewSighting]:
        return [
            NewSighting(
                "gate",
                float(t),
                t + 1.0,
                None,
                0.2,
                (1, 1, 9, 9),
                JPEG,
                rng.standard_normal(16).astype(np.float32),
                "m16",
                f"g{t}",
            )
            for t in range(first, first + n)
        ]

    gallery.record_sightings(batch(0, 200))
    assert gallery.flush()
    old = [s.id for s in gallery.history(limit=200, audit=False)]
    stop = threading.Event()
    written = [200]

    def write() -> None:
        while not stop.is_set() and written[0] < 3000:
            gallery.record_sightings(batch(written[0], 50))
            written[0] += 50

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for chunk in range(0, 200, 20):
            gallery.relabels.apply("Ada", [(sid, 0.9) for sid in old[chunk : chunk + 20]], reason="test")
    finally:
        stop.set()
        writer.join(30)
    assert gallery.flush()
    assert gallery.count_sightings() == written[0], "every sighting written meanwhile is kept"
    assert len(gallery.history(person="Ada", limit=1000, audit=False)) == 200
    assert gallery.integrity_check() == "ok"
