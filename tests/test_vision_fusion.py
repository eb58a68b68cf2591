"""The fused model fusion-640: one name, one dimension, unit rows whose cosine is the weighted sum of
its parts' cosines, cut from one master crop, on the same path for enrolment and live frames."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import FACES, need
from vision.align import DLIB_TEMPLATE, FACENET_TEMPLATE, align
from vision.embedders import MODEL_NAMES, load_embedder
from vision.embedders.calibrated import CALIBRATIONS, FUSION_640, calibration
from vision.pipeline import FacePipeline, read_image

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")

IDS = FACES / "identities"


@pytest.fixture(scope="module")
def fusion():  # type: ignore[no-untyped-def]
    from vision.embedders.fusion import FusionEmbedder

    model = load_embedder("fusion-640")
    assert isinstance(model, FusionEmbedder)
    return model


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    people = sorted(p for p in need(IDS).iterdir() if p.is_dir())
    paths = [sorted(people[0].glob("*.jpg"))[0], sorted(people[0].glob("*.jpg"))[1], sorted(people[1].glob("*.jpg"))[0]]
    images = [read_image(p) for p in paths]
    assert all(i is not None for i in images)
    return images  # type: ignore[return-value]


@pytest.fixture(scope="module")
def pipeline(fusion) -> FacePipeline:  # type: ignore[no-untyped-def]
    return FacePipeline(embedder=fusion)


@pytest.fixture(scope="module")
def masters(pipeline: FacePipeline, photos: list[np.ndarray]) -> np.ndarray:
    crops = [align(image, pipeline.detector.detect(image)[0].landmarks, pipeline.embedder.template) for image in photos]
    return np.stack(crops)


def test_the_fused_model_has_its_own_name_dimension_and_calibration(fusion) -> None:  # type: ignore[no-untyped-def]
    assert "fusion-640" in MODEL_NAMES
    assert (fusion.name, fusion.dim, fusion.crop_size) == ("fusion-640", 640, 204)
    assert fusion.facenet is load_embedder("facenet-512") and fusion.dlib is load_embedder("dlib-128")
    assert fusion.default_threshold == FUSION_640.identification_threshold
    assert fusion.verification_threshold == FUSION_640.verification_threshold
    assert fusion.default_margin == FUSION_640.margin and 0.0 < fusion.facenet_weight < 1.0
    assert calibration("fusion-640") is FUSION_640 and calibration("vggface2-2048") is None


def test_rows_are_unit_and_the_cosine_is_the_weighted_sum_of_the_parts(fusion, masters: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    rows = fusion.embed(masters)
    assert rows.shape == (3, 640) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    f, d = fusion.parts(masters)
    w = fusion.facenet_weight
    expected = w * (f @ f.T) + (1.0 - w) * (d @ d.T)
    assert np.allclose(rows @ rows.T, expected, atol=1e-5)
    assert rows[0] @ rows[1] > rows[0] @ rows[2]  # two photos of one person beat another person
    one_by_one = np.stack([fusion.embed(m[None])[0] for m in masters])
    assert np.allclose(one_by_one, rows, atol=1e-5)  # batching changes nothing


def test_the_parts_cut_from_the_master_crop_match_direct_alignment(  # type: ignore[no-untyped-def]
    fusion, pipeline: FacePipeline, photos: list[np.ndarray], masters: np.ndarray
) -> None:
    f, d = fusion.parts(masters)
    for k, image in enumerate(photos):
        landmarks = pipeline.detector.detect(image)[0].landmarks
        direct_f = fusion.facenet.embed(align(image, landmarks, FACENET_TEMPLATE)[None])[0]
        direct_d = fusion.dlib.embed(align(image, landmarks, DLIB_TEMPLATE)[None])[0]
        assert float(direct_f @ f[k]) > 0.98  # an exact re-sampling of FaceNet's own alignment
        assert float(direct_d @ d[k]) > 0.98  # within a fraction of a pixel of dlib's


def test_enrolment_and_live_frames_take_the_same_path(  # type: ignore[no-untyped-def]
    fusion, pipeline: FacePipeline, photos: list[np.ndarray], masters: np.ndarray
) -> None:
    image = photos[0]
    enrolled = max(pipeline.observe(image), key=lambda o: o.detection.box[2] * o.detection.box[3])  # main.py enrol
    live = pipeline.central_face(image)  # identify / evaluate
    boxed = pipeline.observe_box(image, enrolled.detection.box)  # a box drawn on a frame
    for other in (live, boxed):
        assert other.model == "fusion-640"
        assert np.allclose(other.embedding, enrolled.embedding, atol=1e-6)
    assert enrolled.crop.shape == (204, 204, 3)
    assert np.allclose(enrolled.embedding, fusion.embed(masters[:1])[0], atol=1e-6)


def test_every_calibration_table_is_ordered() -> None:
    for c in CALIBRATIONS.values():
        assert c.operating_points, c.model
        ts = [p.threshold for p in c.operating_points]
        assert ts == sorted(ts)
        assert [p.fpir for p in c.operating_points] == sorted((p.fpir for p in c.operating_points), reverse=True)
        assert [p.fnir for p in c.operating_points] == sorted(p.fnir for p in c.operating_points)
        assert all(p.fpir <= p.fpir_upper for p in c.operating_points)
        at = min(c.operating_points, key=lambda p: abs(p.threshold - c.identification_threshold))
        assert at.fpir_upper <= 0.0101, c.model  # the threshold is where the upper bound reaches 1%
