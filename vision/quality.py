"""Face quality: sharpness, size and pose, to refuse poor enrolment photos and pick a track's best crop.

* **Blur**: the variance of the Laplacian of the aligned crop's grey image, measured at a fixed
  112×112 scale so that crops for different models compare.
* **Size**: the detected box's shorter side in pixels of the source image.
* **Pose**, from MTCNN's five landmarks: yaw is the nose's horizontal offset from the eyes'
  midpoint over half the eye distance (0 frontal, ±1 nose level with an eye, roughly 45°);
  roll is the angle of the eye line in degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vision.types import Detection, ImageBGR


@dataclass(frozen=True, slots=True)
class QualityLimits:
    """Enrolment limits; a face outside any of them is refused with the matching reason."""

    min_blur: float = 40.0
    min_face: float = 40.0
    max_yaw: float = 0.6
    max_roll: float = 30.0


# A live look decides a track's identity only within these (vision/tracker.py ``decide_limits``): a face
# smaller than 48 px, turned away past about 30 degrees, tilted past 30 or too blurred embeds too poorly to
# name or to call unknown, and the track stays undecided until a better look (the operator's guide says so).
DECIDE_LIMITS = QualityLimits(min_blur=40.0, min_face=48.0, max_yaw=0.6, max_roll=30.0)


@dataclass(frozen=True, slots=True)
class Quality:
    """Measured quality of one face; ``score`` in [0, 1] orders faces (higher is better)."""

    blur: float
    face_size: float
    yaw: float
    roll: float
    score: float

    def reject_reason(self, limits: QualityLimits | None = None) -> str | None:
        """None when fit to enrol, else "face too small", "too blurry" or "face turned away"."""
        lim = limits or QualityLimits()
        if self.face_size < lim.min_face:
            return "face too small"
        if self.blur < lim.min_blur:
            return "too blurry"
        if abs(self.yaw) > lim.max_yaw or abs(self.roll) > lim.max_roll:
            return "face turned away"
        return None


def blur_variance(crop: ImageBGR) -> float:
    """Variance of the Laplacian of the crop resized to 112×112 (higher is sharper)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    if grey.shape != (112, 112):
        grey = cv2.resize(grey, (112, 112), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def pose(detection: Detection) -> tuple[float, float]:
    """(yaw, roll) from the landmarks; see the module docstring for the units."""
    (lx, ly), (rx, ry), (nx, ny), _, _ = detection.landmarks
    eye_dx, eye_dy = rx - lx, ry - ly
    half = math.hypot(eye_dx, eye_dy) / 2.0
    if half < 1e-6:
        return 1.0, 0.0
    # project the nose offset on the eye line, so roll does not count as yaw
    mx, my = (lx + rx) / 2.0, (ly + ry) / 2.0
    yaw = ((nx - mx) * eye_dx + (ny - my) * eye_dy) / (2 * half * half)
    roll = math.degrees(math.atan2(eye_dy, eye_dx))
    return float(yaw), float(roll)


def measure(detection: Detection, crop: ImageBGR) -> Quality:
    """Quality of ``detection`` given its aligned ``crop``."""
    blur = blur_variance(crop)
    size = float(min(detection.box[2], detection.box[3]))
    yaw, roll = pose(detection)
    sharp = min(1.0, blur / 300.0)
    big = min(1.0, size / 120.0)
    frontal = max(0.0, 1.0 - abs(yaw)) * max(0.0, 1.0 - abs(roll) / 60.0)
    score = float(np.clip(0.35 * sharp + 0.25 * big + 0.4 * frontal, 0.0, 1.0))
    return Quality(blur=blur, face_size=size, yaw=yaw, roll=roll, score=score)
