"""Enrolling people from files: one person's photos, or a whole roster, with the models loaded once.

A roster is a folder of folders (each subfolder one person, named after it) or a CSV of
``name,path`` rows (a path may be a photo or a folder of photos; relative paths are read from the
CSV's folder), with an optional third column of watchlists the person goes on (names separated by
``;``, created if new: ``Jane Roe,photos/jane.jpg,barred;staff``). The CLI (``main.py enrol --folders``)
and the console's "Import a roster…" both go through :func:`enrol_person`, so a refusal reads the same
everywhere. Each photo gives its largest
face; a file that cannot be used is listed with why, and the rest carry on.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from station.enrolment import Companion, Observer, enrol_observation
from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.watchlists import check_name
from vision.pipeline import read_image
from vision.quality import QualityLimits
from vision.types import ImageBGR

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MAX_ROSTER_ROWS = 100_000  # a CSV is user input: bound what is read


class RosterError(ValueError):
    """The roster itself cannot be read (not a folder or CSV, unreadable, malformed)."""


@dataclass(frozen=True)
class RosterEntry:
    """One person of a roster and the files named for them (problems found while listing them too)."""

    name: str
    files: tuple[Path, ...]
    problems: tuple[tuple[str, str], ...] = ()  # (path, reason) found before any photo was read
    watchlists: tuple[str, ...] = ()  # the lists the person goes on (the CSV's third column)


@dataclass(frozen=True)
class PersonResult:
    """What enrolling one person's files did: counts, the files enrolled, and each refusal with why."""

    person: str
    model: str
    enrolled: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]
    samples: int  # the person's samples of ``model`` (the live model) after this enrolment
    models: tuple[str, ...] = ()  # every model a sample was stored for (the live one, then the photo one)
    watchlists: tuple[str, ...] = ()  # the lists the person is on after this enrolment

    def as_json(self) -> dict[str, object]:
        return {
            "event": "enrol",
            "person": self.person,
            "model": self.model,
            "enrolled": len(self.enrolled),
            "samples": self.samples,
            "models": list(self.models or (self.model,)),
            "files": list(self.enrolled),
            "rejected": [{"path": p, "reason": r} for p, r in self.rejected],
            "watchlists": list(self.watchlists),
        }


@dataclass
class RosterSummary:
    """The roster import's totals (the last JSON line, the console's closing summary)."""

    persons: int = 0
    enrolled: int = 0
    rejected: int = 0
    persons_without_samples: list[str] = field(default_factory=list)

    def add(self, result: PersonResult) -> None:
        self.persons += 1
        self.enrolled += len(result.enrolled)
        self.rejected += len(result.rejected)
        if not result.enrolled:
            self.persons_without_samples.append(result.person)

    def as_json(self) -> dict[str, object]:
        return {
            "event": "summary",
            "persons": self.persons,
            "enrolled": self.enrolled,
            "rejected": self.rejected,
            "persons_without_samples": self.persons_without_samples,
        }


def list_images(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Every image named, or inside a named folder (sorted); and (path, reason) for what cannot be used."""
    found: list[Path] = []
    problems: list[tuple[str, str]] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not inside:
                problems.append((str(path), "no image files in this folder"))
            found.extend(inside)
        elif path.exists():
            found.append(path)
        else:
            problems.append((str(path), "no such file"))
    return found, problems


def read_roster(path: Path) -> list[RosterEntry]:
    """The people of a roster folder or CSV, sorted by name as given; RosterError if it cannot be read."""
    if path.is_dir():
        return _roster_folder(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return _roster_csv(path)
    if not path.exists():
        raise RosterError(f"no roster at {path}")
    raise RosterError(f"{path} is neither a folder of person folders nor a .csv of name,path rows")


def _roster_folder(folder: Path) -> list[RosterEntry]:
    try:
        people = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name.casefold())
    except OSError as exc:
        raise RosterError(f"cannot read roster folder {folder}: {exc.strerror}") from None
    if not people:
        raise RosterError(f"roster folder {folder} has no person folders (one subfolder per person)")
    entries = []
    for person in people:
        files, problems = list_images([person])
        entries.append(RosterEntry(_name(person.name), tuple(files), tuple(problems)))
    return entries


def _roster_csv(path: Path) -> list[RosterEntry]:
    by_name: dict[str, tuple[str, list[Path], list[str]]] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for number, row in enumerate(csv.reader(fh), start=1):
                if number > MAX_ROSTER_ROWS:
                    raise RosterError(f"{path}: more than {MAX_ROSTER_ROWS} rows")
                parsed = _csv_row(path, number, row)
                if parsed is None:
                    continue
                name, target, lists = parsed
                entry = by_name.setdefault(name.casefold(), (name, [], []))
                entry[1].append(target)
                entry[2].extend(w for w in lists if w.casefold() not in {x.casefold() for x in entry[2]})
    except OSError as exc:
        raise RosterError(f"cannot read roster {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RosterError(f"{path} is not a readable CSV: {exc}") from None
    if not by_name:
        raise RosterError(f"roster {path} names nobody")
    entries = []
    for name, targets, lists in by_name.values():
        files, problems = list_images(targets)
        entries.append(RosterEntry(name, tuple(files), tuple(problems), tuple(lists)))
    return entries


def _csv_row(path: Path, number: int, row: list[str]) -> tuple[str, Path, list[str]] | None:
    """One row as (name, photo or folder, watchlists); None for a blank row or the header."""
    if not row or all(not cell.strip() for cell in row):
        return None
    if number == 1 and [c.strip().lower() for c in row[:2]] == ["name", "path"]:
        return None  # a header row
    if len(row) not in (2, 3) or not row[0].strip() or not row[1].strip():
        raise RosterError(f"{path}, line {number}: expected name,path or name,path,watchlists")
    target = Path(row[1].strip())
    if not target.is_absolute():
        target = path.parent / target
    lists = [w.strip() for w in row[2].split(";") if w.strip()] if len(row) == 3 else []
    for w in lists:
        try:
            check_name(w)
        except GalleryError as exc:
            raise RosterError(f"{path}, line {number}: {exc}") from None
    return _name(row[0]), target, lists


def _name(text: str) -> str:
    name = " ".join(text.replace("_", " ").split())
    if not name:
        raise RosterError(f"a person's name is empty: {text!r}")
    return name


def enrol_person(
    gallery: Gallery,
    pipeline: Observer,
    name: str,
    files: Sequence[Path],
    *,
    limits: QualityLimits | None = None,
    problems: Sequence[tuple[str, str]] = (),
    progress: Callable[[Path], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    companions: Sequence[Companion] = (),
    watchlists: Sequence[str] = (),
) -> PersonResult:
    """Enrol the largest face of each file as a sample of ``name`` (created if new); stops before the
    next file once ``cancelled`` says so. With at least one photo enrolled, the person goes on ``watchlists``
    (each created if new)."""
    limits = limits or QualityLimits()
    enrolled: list[str] = []
    rejected = list(problems)
    for path in files:
        if cancelled is not None and cancelled():
            break
        try:
            image = read_image(path)
            if image is None:
                raise ValueError("not an image, or unreadable")
            enrol_image(gallery, pipeline, name, image, str(path), limits=limits, companions=companions)
            enrolled.append(str(path))
        except ValueError as exc:
            rejected.append((str(path), str(exc)))
        finally:
            if progress is not None:
                progress(path)
    samples = person_samples(gallery, name, pipeline.model)
    models = (pipeline.model, *(c.model for c in companions if c.model != pipeline.model))
    lists: tuple[str, ...] = ()
    person = next((p for p in gallery.persons() if p.name.casefold() == name.casefold()), None)
    if person is not None:
        for w in watchlists:
            gallery.watchlists.add(person.id, gallery.watchlists.ensure(w).id)
        lists = tuple(w.name for w in gallery.watchlists.lists_of(person.id))
    return PersonResult(name, pipeline.model, tuple(enrolled), tuple(rejected), samples, models, lists)


def enrol_image(
    gallery: Gallery,
    pipeline: Observer,
    name: str,
    image: ImageBGR,
    source: str,
    *,
    limits: QualityLimits,
    companions: Sequence[Companion] = (),
) -> int:
    """Enrol the largest face of ``image`` as a sample of ``name``; returns the sample id, or ValueError with
    the reason it was refused (no face, or the quality check's: too small, blurred, turned away)."""
    faces = pipeline.observe(image)
    if not faces:
        raise ValueError("no face found")
    face = max(faces, key=lambda o: o.detection.box[2] * o.detection.box[3])
    reason = face.quality.reject_reason(limits)
    if reason is not None:
        raise ValueError(reason)
    return enrol_observation(gallery, name, face, source, image=image, companions=companions)


def person_samples(gallery: Gallery, name: str, model: str) -> int:
    """How many samples of ``model`` the person called ``name`` has (0 when there is no such person)."""
    person = next((p for p in gallery.persons() if p.name.casefold() == name.casefold()), None)
    return 0 if person is None else sum(1 for s in gallery.samples(person.id) if s.model == model)


def import_roster(
    gallery: Gallery,
    pipeline: Observer,
    entries: Sequence[RosterEntry],
    *,
    limits: QualityLimits | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    companions: Sequence[Companion] = (),
) -> tuple[list[PersonResult], RosterSummary]:
    """Enrol every person of a roster, reporting the share of photos done; stops between photos when
    ``cancelled`` says so (what was enrolled stays). The console's "Import a roster…" runs this."""
    total = sum(len(e.files) for e in entries) or 1
    done = 0
    results: list[PersonResult] = []
    summary = RosterSummary()
    for entry in entries:
        if cancelled is not None and cancelled():
            break

        def step(path: Path, name: str = entry.name) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done / total, f"{name}: {path.name}")

        result = enrol_person(
            gallery,
            pipeline,
            entry.name,
            entry.files,
            limits=limits,
            problems=entry.problems,
            progress=step,
            cancelled=cancelled,
            companions=companions,
            watchlists=entry.watchlists,
        )
        results.append(result)
        summary.add(result)
    return results, summary


def summary_text(results: Sequence[PersonResult], summary: RosterSummary) -> str:
    """The closing summary an operator reads: totals, then each refusal with why."""
    lines = [
        f"{summary.persons} people, {summary.enrolled} photos enrolled, {summary.rejected} refused.",
    ]
    if summary.persons_without_samples:
        lines.append("No usable photo for: " + ", ".join(summary.persons_without_samples))
    for r in results:
        for path, reason in r.rejected:
            lines.append(f"  {r.person}: {Path(path).name}: {reason}")
    return "\n".join(lines)
