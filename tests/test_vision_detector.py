"""The MTCNN detector on real photos: recall and precision against hand-drawn boxes, and (tf) mtcnn parity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import FACES, need
from vision.detector import DetectorConfig, MtcnnDetector, box_iou, nms
from vision.pipeline import read_image
from vision.types import Detection

GROUP = FACES / "group"


@pytest.fixture(scope="module")
def detector() -> MtcnnDetector:
    det = MtcnnDetector()
    det.warm_up()
    return det


def matched(found: list[tuple[float, float, float, float]], truth: list[list[float]], iou: float = 0.4) -> int:
    """Greedy one-to-one matches at IoU >= iou."""
    used: set[int] = set()
    hits = 0
    for g in truth:
        scores = [(box_iou(tuple(g), b), j) for j, b in enumerate(found) if j not in used]  # type: ignore[arg-type]
        best = max(scores, default=(0.0, -1))
        if best[0] >= iou:
            used.add(best[1])
            hits += 1
    return hits


@pytest.mark.slow
def test_recall_and_precision_on_annotated_group_photos(detector: MtcnnDetector) -> None:
    annotations = json.loads(need(GROUP / "face_boxes_dlib.json").read_text())
    truth_total = found_total = hits_total = 0
    for name, entry in annotations.items():
        image = read_image(GROUP / name)
        assert image is not None
        found = [d.box for d in detector.detect(image)]
        truth = entry["boxes_xywh"]
        hits_total += matched(found, truth)
        truth_total += len(truth)
        found_total += len(found)
    recall, precision = hits_total / truth_total, hits_total / found_total
    # measured: 43/43 and 43/43, the same as mtcnn.detect_faces at confidence >= 0.9
    assert recall >= 0.97, f"recall {recall:.3f} ({hits_total}/{truth_total})"
    assert precision >= 0.95, f"precision {precision:.3f} ({hits_total}/{found_total})"


@pytest.mark.tf
def test_same_faces_as_the_mtcnn_package(detector: MtcnnDetector) -> None:
    from mtcnn import MTCNN

    image = read_image(need(GROUP / "2008_002079.jpg"))
    assert image is not None
    results = MTCNN().detect_faces(np.ascontiguousarray(image[..., ::-1]))
    reference = [r["box"] for r in results if r["confidence"] >= 0.9]
    ours = detector.detect(image)
    assert len(ours) == len(reference) == 6
    assert matched([d.box for d in ours], reference, iou=0.8) == len(reference)


def test_landmarks_lie_in_their_box_and_confidence_is_above_threshold(detector: MtcnnDetector) -> None:
    image = read_image(need(GROUP / "2007_007763.jpg"))
    assert image is not None
    found = detector.detect(image)
    assert len(found) >= 5
    for det in found:
        x, y, w, h = det.box
        assert det.confidence >= 0.9
        assert w >= 20 * 0.8 and h > 0
        for px, py in det.landmarks:
            assert x - 0.2 * w <= px <= x + 1.2 * w and y - 0.2 * h <= py <= y + 1.2 * h
        (lx, _), (rx, _), _, _, _ = det.landmarks
        assert lx < rx  # left of the picture first


def test_min_face_and_confidence_are_settings(detector: MtcnnDetector) -> None:
    image = read_image(need(GROUP / "2007_007763.jpg"))
    assert image is not None
    big_only = MtcnnDetector(DetectorConfig(min_face=60)).detect(image)
    assert all(max(d.box[2], d.box[3]) >= 0.8 * 60 for d in big_only)  # MTCNN boxes vary by ~20%
    assert len(big_only) < len(detector.detect(image))
    strict = MtcnnDetector(DetectorConfig(min_confidence=0.9999)).detect(image)
    assert all(d.confidence >= 0.9999 for d in strict)


def test_the_pyramid_can_start_at_a_live_minimum_face(detector: MtcnnDetector) -> None:
    """detect_at_least(image, N) finds the faces detect() finds that are well over N px, and none of the small."""
    image = read_image(need(GROUP / "multiface.jpg"))  # six faces of 69-90 px
    assert image is not None
    every = [d.box for d in detector.detect(image)]
    found = [d.box for d in detector.detect_at_least(image, 60)]
    assert len(every) >= 6 and matched(found, [list(b) for b in every], iou=0.6) == len(every)
    small = read_image(need(GROUP / "2008_004176.jpg"))  # seven faces of 28-32 px
    assert small is not None and len(detector.detect(small)) >= 7
    assert detector.detect_at_least(small, 60) == []


def test_refine_finds_the_faces_near_hints_and_nothing_elsewhere(detector: MtcnnDetector) -> None:
    """O-Net alone on boxes where faces were (shifted a little, as a face moves between frames) finds
    those faces again with landmarks; a hint on background finds nothing; no hints, no work."""
    image = read_image(need(GROUP / "2008_001009.jpg"))
    assert image is not None
    faces = [d for d in detector.detect(image) if min(d.box[2], d.box[3]) >= 30]
    assert faces
    moved = [(x + 0.08 * w, y - 0.05 * h, w * 1.05, h * 1.05) for x, y, w, h in (d.box for d in faces)]
    again = detector.refine(image, moved)
    assert matched([d.box for d in again], [list(d.box) for d in faces], iou=0.6) == len(faces)
    assert all(d.confidence >= detector.config.min_confidence and len(d.landmarks) == 5 for d in again)
    assert detector.refine(image, [(2.0, 2.0, 40.0, 40.0)]) == []  # the top-left corner is wall
    assert detector.refine(np.full((240, 320, 3), 90, np.uint8), [(100.0, 80.0, 60.0, 60.0)]) == []
    assert detector.refine(image, []) == []


def test_no_face_in_a_blank_or_tiny_image(detector: MtcnnDetector) -> None:
    assert detector.detect(np.full((240, 320, 3), 90, np.uint8)) == []
    assert detector.detect(np.zeros((8, 8, 3), np.uint8)) == []


def test_bad_input_and_bad_settings_raise_clear_errors(detector: MtcnnDetector) -> None:
    with pytest.raises(ValueError, match="uint8 BGR"):
        detector.detect(np.zeros((100, 100), np.uint8))
    with pytest.raises(ValueError, match="uint8 BGR"):
        detector.detect(np.zeros((100, 100, 3), np.float32))
    with pytest.raises(ValueError, match="min_face"):
        DetectorConfig(min_face=2)
    with pytest.raises(ValueError, match="min_confidence"):
        DetectorConfig(min_confidence=1.5)


def test_detection_is_a_frozen_record(detector: MtcnnDetector) -> None:
    image = read_image(need(GROUP / "2008_001009.jpg"))
    assert image is not None
    det = detector.detect(image)[0]
    assert isinstance(det, Detection)
    with pytest.raises(AttributeError):
        det.confidence = 0.0  # type: ignore[misc]


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float64)
    scores = np.array([0.5, 0.9, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 2, 0]
    assert nms(np.empty((0, 4)), np.empty(0), 0.5).tolist() == []


@pytest.mark.tf
def test_images_of_any_size_never_retrace_the_networks() -> None:
    from vision.mtcnn_tf import TfNets

    detector = MtcnnDetector(runtime="tf")  # the TensorFlow runtime's tf.functions (OpenVINO: test_vision_openvino)
    nets = TfNets.get()
    for path in ("2008_001009.jpg", "2007_007763.jpg", "kit_with_rose.jpg"):
        image = read_image(need(GROUP / path))
        assert image is not None
        detector.detect(image)
    for fn in (nets.pnet, nets.rnet, nets.onet):
        assert fn.experimental_get_tracing_count() == 1
