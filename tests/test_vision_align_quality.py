"""Alignment (5-point similarity to a template) and face quality, on real faces and known geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import FACES, need
from vision.align import DLIB_TEMPLATE, FACENET_TEMPLATE, VGGFACE_TEMPLATE, Template, align, similarity_transform
from vision.detector import MtcnnDetector
from vision.pipeline import read_image
from vision.quality import Quality, QualityLimits, blur_variance, measure, pose
from vision.types import Detection

FACE = FACES / "identities" / "Colin_Powell" / "Colin_Powell_0001.jpg"


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, Detection]:
    image = read_image(need(FACE))
    assert image is not None
    found = MtcnnDetector().detect(image)
    assert found
    return image, max(found, key=lambda d: d.box[2])


def test_similarity_transform_recovers_a_known_one() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    angle, scale, shift = np.deg2rad(17.0), 1.7, np.array([12.0, -30.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], rot, atol=1e-9) and np.allclose(m[:, 2], shift, atol=1e-9)
    with pytest.raises(ValueError, match="degenerate"):
        similarity_transform(np.ones((5, 2)), dst)


@pytest.mark.parametrize("template", [FACENET_TEMPLATE, DLIB_TEMPLATE, VGGFACE_TEMPLATE])
def test_align_puts_the_landmarks_on_the_template(face: tuple[np.ndarray, Detection], template: Template) -> None:
    image, det = face
    crop = align(image, det.landmarks, template)
    assert crop.shape == (template.size, template.size, 3) and crop.dtype == np.uint8
    moved = cv2.transform(np.asarray([det.landmarks], np.float64), template.matrix(det.landmarks))[0]
    # five real points never fit a similarity exactly; within 6% of the crop is a good fit
    assert np.abs(moved - template.array()).max() < 0.06 * template.size
    # the eyes come out level even when the photo is rotated
    rotated = np.asarray(cv2.warpAffine(image, cv2.getRotationMatrix2D((125, 125), 20, 1.0), (250, 250)), np.uint8)
    found = MtcnnDetector().detect(rotated)
    assert found
    again = max(found, key=lambda d: d.box[2])
    m = template.matrix(again.landmarks)
    (lx, ly), (rx, ry) = cv2.transform(np.asarray([again.landmarks[:2]], np.float64), m)[0]
    assert abs(np.degrees(np.arctan2(ry - ly, rx - lx))) < 5.0


def test_quality_blur_size_and_pose(face: tuple[np.ndarray, Detection]) -> None:
    image, det = face
    crop = align(image, det.landmarks, FACENET_TEMPLATE)
    sharp = measure(det, crop)
    blurred = measure(det, np.asarray(cv2.GaussianBlur(crop, (0, 0), 4.0), np.uint8))
    assert isinstance(sharp, Quality)
    assert sharp.blur > 3 * blurred.blur
    assert 0.0 <= blurred.score < sharp.score <= 1.0
    assert sharp.face_size == pytest.approx(min(det.box[2], det.box[3]))
    assert abs(sharp.yaw) < 0.3 and abs(sharp.roll) < 10
    assert sharp.reject_reason() is None
    assert blurred.reject_reason() == "too blurry"
    assert sharp.reject_reason(QualityLimits(min_face=500)) == "face too small"
    assert blur_variance(np.full((160, 160, 3), 128, np.uint8)) == 0.0


def test_pose_from_landmarks() -> None:
    eyes = ((40.0, 50.0), (80.0, 50.0))
    mouth = ((45.0, 90.0), (75.0, 90.0))
    frontal = Detection((20, 20, 80, 100), (*eyes, (60.0, 70.0), *mouth), 0.99)
    turned = Detection((20, 20, 80, 100), (*eyes, (78.0, 70.0), *mouth), 0.99)
    assert pose(frontal) == pytest.approx((0.0, 0.0))
    yaw, roll = pose(turned)
    assert yaw == pytest.approx(0.9) and roll == pytest.approx(0.0)
    tilted = Detection((20, 20, 80, 100), ((40.0, 50.0), (80.0, 90.0), (55.0, 80.0), mouth[0], mouth[1]), 0.99)
    assert pose(tilted)[1] == pytest.approx(45.0)
    crop = np.random.default_rng(1).integers(0, 255, (160, 160, 3), dtype=np.uint8)
    assert measure(turned, crop).reject_reason() == "face turned away"
    assert measure(frontal, crop).score > measure(turned, crop).score
