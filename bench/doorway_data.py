"""The doorway video of issue 22, built from ../shared/faces: one person after another at the same spot.

* **Watchlist people** come from ``identities/`` (62 LFW people × 10 photos). Each person's photos are
  shuffled (seeded); the first 3 are enrolled (``main.py enrol --folders`` on a roster of links to
  them) and the next 3 are the person's one **pass**: each photo shown for ``PHOTO_FRAMES`` frames.
* **Strangers** are the LFW fold-1 people who are not among the identities (427 people): each passes
  once as one of their photos (seeded choice) shown for ``STRANGER_FRAMES`` frames.
* ``GAP_FRAMES`` grey frames before, between and after the passes; every pass of a set in one
  shuffled order (seeded).

**Two disjoint sets.** The identities hold 62 people, and a watchlist person needs 6 of their 10
photos, so the issue's 60-person watchlist cannot be built twice from people never seen. The
identities are split 31/31 (seeded shuffle of the sorted names) and the strangers 214/213 the same
way: the **design** set (what the engine may be tuned and calibrated on) and the **held-out** set
(never used for tuning). Both are built the same way and share no person. With 31 enrolled people
instead of 60, a stranger has about half as many people to be mistaken for, so FPIR per stranger pass
is lower than on the issue's 60-person video at the same threshold; the calibration tool
(bench/doorway_score.py) also models a 200-person watchlist.

**Layout.** A frame is 640×360 (the demo clip's size), mid-grey (128). A 250×250 LFW photo is
pasted at its own scale, centred: LFW's deep-funneled faces are about 100-120 px across there
(MTCNN's box), inside the live engine's range and at one spot, as in a doorway. The file is Motion
JPEG (every frame coded alone, at OpenCV's default quality: mean error under 2 grey levels, no
inter-frame smearing of one face onto the next) in an AVI that declares 15 fps: ``main.py scan``
analyses 15 frames per second of media time by default, so each frame of the issue is one analysed
frame and frame ``i`` is at ``i / 15`` s.

Nothing here copies face data into the project: the video and the roster (symbolic links) are
written where the caller says (a temporary folder the benchmark deletes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np

FACES = Path(__file__).resolve().parent.parent.parent / "shared" / "faces"
IDENTITIES = FACES / "identities"
FOLD1_IMAGES = FACES / "lfw_pairs_fold1" / "images"

WIDTH, HEIGHT = 640, 360
FPS = 15.0
GREY = 128
ENROL_PHOTOS = 3
PASS_PHOTOS = 3
PHOTO_FRAMES = 6  # each of a watchlist person's pass photos
STRANGER_FRAMES = 18  # a stranger's one photo
GAP_FRAMES = 8  # grey frames between passes (0.53 s at 15 fps)
SPLIT_SEED = 22  # which people go to which set
PHOTO_SEED = 2201  # which photos a person enrols and passes with
ORDER_SEED = 2202  # the order of the passes


class SetName(StrEnum):
    DESIGN = "design"
    HELDOUT = "heldout"


class PassKind(StrEnum):
    WATCHLIST = "watchlist"
    STRANGER = "stranger"


@dataclass(frozen=True, slots=True)
class Pass:
    """One person walking past: who, which photos for how many frames each, and the frames it fills."""

    index: int
    kind: PassKind
    person: str
    photos: tuple[Path, ...]
    frames_each: int
    first: int  # first frame of the pass in the video
    last: int  # last frame (inclusive)


@dataclass(frozen=True, slots=True)
class DoorwaySet:
    """One set: the people enrolled (name → their enrolment photos) and the passes in video order."""

    name: SetName
    enrolled: dict[str, tuple[Path, ...]]
    passes: tuple[Pass, ...]
    frames: int  # frames in the video

    @property
    def watchlist_passes(self) -> int:
        return sum(1 for p in self.passes if p.kind is PassKind.WATCHLIST)

    @property
    def stranger_passes(self) -> int:
        return sum(1 for p in self.passes if p.kind is PassKind.STRANGER)


class DataMissing(RuntimeError):
    """../shared/faces is not where the benchmark looks for it."""


def display_name(folder: str) -> str:
    """A person's name as the station shows it: LFW's folder name with spaces (``enrol --folders`` does the same)."""
    return " ".join(folder.replace("_", " ").split())


def _people(root: Path) -> dict[str, list[Path]]:
    """Each person's photos under ``root``, by display name."""
    if not root.is_dir():
        raise DataMissing(f"no face data at {root} (../shared/faces beside the checkout)")
    return {display_name(d.name): sorted(d.glob("*.jpg")) for d in sorted(root.iterdir()) if d.is_dir()}


def split(people: list[str], seed: int) -> tuple[list[str], list[str]]:
    """``people`` (sorted first) shuffled with ``seed`` and cut in two: (design, held-out), design the larger."""
    order = sorted(people)
    random.Random(seed).shuffle(order)
    half = (len(order) + 1) // 2
    return sorted(order[:half]), sorted(order[half:])


def build_set(name: SetName, identities: Path = IDENTITIES, fold1: Path = FOLD1_IMAGES) -> DoorwaySet:
    """The passes and enrolments of one set (deterministic: fixed seeds over sorted names)."""
    ids = _people(identities)
    strangers_all = {k: v for k, v in _people(fold1).items() if k not in ids and v}
    watch = split(list(ids), SPLIT_SEED)[name is SetName.HELDOUT]
    strangers = split(list(strangers_all), SPLIT_SEED + 1)[name is SetName.HELDOUT]
    photo_rng = random.Random(PHOTO_SEED)
    enrolled: dict[str, tuple[Path, ...]] = {}
    drafts: list[tuple[PassKind, str, tuple[Path, ...], int]] = []
    for person in watch:
        photos = list(ids[person])
        if len(photos) < ENROL_PHOTOS + PASS_PHOTOS:
            raise DataMissing(f"{person} has {len(photos)} photos, a watchlist person needs 6")
        photo_rng.shuffle(photos)
        enrolled[person] = tuple(photos[:ENROL_PHOTOS])
        drafts.append(
            (PassKind.WATCHLIST, person, tuple(photos[ENROL_PHOTOS : ENROL_PHOTOS + PASS_PHOTOS]), PHOTO_FRAMES)
        )
    for person in strangers:
        drafts.append((PassKind.STRANGER, person, (photo_rng.choice(strangers_all[person]),), STRANGER_FRAMES))
    random.Random(ORDER_SEED).shuffle(drafts)
    passes: list[Pass] = []
    frame = GAP_FRAMES
    for i, (kind, person, shown_photos, each) in enumerate(drafts):
        length = each * len(shown_photos)
        passes.append(Pass(i, kind, person, shown_photos, each, frame, frame + length - 1))
        frame += length + GAP_FRAMES
    return DoorwaySet(name, enrolled, tuple(passes), frame)


def canvas(photo: np.ndarray | None) -> np.ndarray:
    """One frame: grey, with ``photo`` (if any) pasted at its own scale in the centre (cropped if larger)."""
    frame = np.full((HEIGHT, WIDTH, 3), GREY, dtype=np.uint8)
    if photo is None:
        return frame
    h, w = min(photo.shape[0], HEIGHT), min(photo.shape[1], WIDTH)
    y0, x0 = (HEIGHT - h) // 2, (WIDTH - w) // 2
    py, px = (photo.shape[0] - h) // 2, (photo.shape[1] - w) // 2
    frame[y0 : y0 + h, x0 : x0 + w] = photo[py : py + h, px : px + w]
    return frame


def write_video(doorway: DoorwaySet, path: Path) -> int:
    """Write the set's video (MJPG AVI at ``FPS``) to ``path``; returns the frames written."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write an MJPG video at {path}")
    grey = canvas(None)
    written = 0
    try:
        for p in doorway.passes:
            while written < p.first:
                writer.write(grey)
                written += 1
            for photo in p.photos:
                image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
                if image is None:
                    raise DataMissing(f"cannot read {photo}")
                frame = canvas(np.asarray(image, dtype=np.uint8))
                for _ in range(p.frames_each):
                    writer.write(frame)
                    written += 1
        while written < doorway.frames:
            writer.write(grey)
            written += 1
    finally:
        writer.release()
    return written


def write_roster(doorway: DoorwaySet, folder: Path) -> Path:
    """A roster for ``main.py enrol --folders``: a subfolder per enrolled person (named as the station will
    name them), holding links to the photos."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for person, photos in doorway.enrolled.items():
        sub = folder / person
        sub.mkdir(mode=0o700)
        for photo in photos:
            (sub / photo.name).symlink_to(photo.resolve())
    return folder
