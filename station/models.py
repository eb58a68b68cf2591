"""Which face model does what: the fast one for live video, the most accurate one for photos.

Live recognition embeds faces of every camera all day, so it uses FaceNet (``facenet-512``: 7 ms a
face on OpenVINO). A photo is looked at once, so ``identify``, ``evaluate`` and the enrolments use
``fusion-640`` as well (FaceNet and dlib's ResNet as one model, vision/embedders/fusion.py): it
halves the enrolled faces missed at the same false-alarm rate (README, accuracy), at about 100 ms a
face. Every enrolment made from a photo or a frame stores a sample for both, so a person is found
by either path; embeddings are never compared across models. Without dlib installed (a station
built without it) the photo model is the live one.
"""

from __future__ import annotations

import importlib.util

LIVE_MODEL = "facenet-512"
FUSION_MODEL = "fusion-640"


def fusion_available() -> bool:
    """dlib and its model files are installed (fusion-640 needs them; nothing is imported here)."""
    return all(importlib.util.find_spec(m) is not None for m in ("dlib", "face_recognition_models"))


def photo_model() -> str:
    """The model for still photos: fusion-640 where it can load, else the live model."""
    return FUSION_MODEL if fusion_available() else LIVE_MODEL


def enrolment_models(live: str = LIVE_MODEL) -> tuple[str, ...]:
    """Every model an enrolment stores a sample for: the live model first, then the photo model."""
    photo = photo_model()
    return (live,) if photo == live else (live, photo)
