"""Issue 22's doorway benchmark: one person after another at the same spot, through the live engine.

Run (a few minutes of CPU per set; the models load once per ``main.py`` call)::

    nice -n 10 .venv/bin/python bench/doorway.py --set both [--det DIR] [--json] [--save FILE]
    nice -n 10 .venv/bin/python bench/doorway.py --from FILE          # score a saved run again
    nice -n 10 .venv/bin/python bench/doorway.py --demo-clip          # Miranda on the Hamilton clip

For each set (bench/doorway_data.py: how the video is built, the design/held-out split, the layout):

1. the set's video (MJPG, 640×360, 15 fps) and a roster of links to the enrolment photos are written
   to a temporary folder, with a temporary gallery beside them (all deleted at the end: they hold faces);
2. ``main.py enrol --folders ROSTER`` enrols the watchlist (3 photos a person);
3. ``main.py scan VIDEO --camera door --start 2026-01-01T00:00:00Z`` runs the live engine over it at
   its default 15 fps (one analysed frame per frame of the file); its ``sighting`` lines (person,
   score, start, end, track, frames, looks) are parsed into frame ranges;
4. each ended track's template is read back from the gallery and matched with the scan's own
   matcher (station.runtime.load_matcher at the gallery's threshold and margin) for its best
   candidate and runner-up, which the DET sweep needs for the tracks that were not named;
5. bench/doorway_score.py attributes the sightings to passes and reports FNIR per watchlist pass,
   FPIR per stranger pass, the errors' causes, identity switches, the DET curve of track decisions
   (``--det DIR``: one SVG per set), the looks (embeddings) per track, frames analysed and wall time;
   and, for the design set only, the track-level calibration (the threshold naming at most 1% of
   stranger passes, its 95% upper bound, FNIR there). With ``--set both`` the held-out set is also
   scored at the design set's calibrated thresholds (never the other way round).

``--save FILE`` writes what was measured (names, scores, frame ranges: no images) so that ``--from
FILE`` scores it again in a second; keep such files outside the project (they name people).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.doorway_data import FACES, FPS, SetName, build_set, write_roster, write_video  # noqa: E402
from bench.doorway_score import (  # noqa: E402
    Attribution,
    Kind,
    Report,
    Sighting,
    Span,
    TrackCalibration,
    attribute,
    calibrate,
    det_curve,
    epoch,
    parse_sightings,
    person_comparisons,
    score_run,
)

CAMERA = "door"
START_ISO = "2026-01-01T00:00:00Z"
CLIP = FACES / "video" / "short_hamilton_clip.mp4"
MIRANDA = FACES / "video" / "reference_faces" / "lin-manuel-miranda.png"


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


def main_py(args: Sequence[str]) -> tuple[list[dict[str, Any]], float]:
    """Run ``main.py ARGS`` (this checkout's), its JSON lines and wall seconds; BenchError on failure."""
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, cwd=ROOT, check=False
    )
    wall = time.monotonic() - began
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-5:]
        raise BenchError(f"main.py {args[0]} exited {done.returncode}: " + " | ".join(tail))
    lines = [json.loads(s) for s in done.stdout.splitlines() if s.startswith("{")]
    return lines, wall


@dataclass(frozen=True)
class Readback:
    """The gallery's view of the scan: the decision's threshold and margin, who is enrolled, and each
    track's score against every enrolled person (from its template)."""

    model: str
    threshold: float
    margin: float
    people: tuple[str, ...]
    rows: dict[str, list[float]]  # track -> per-person score (-inf: suppressed)


def read_back(db: Path, camera: str) -> Readback:
    """Each recorded track's per-person scores, matched as the scan matched them (its matcher, its settings)."""
    from station.runtime import RecognitionSettings, load_matcher
    from storage.gallery import Gallery

    gallery = Gallery.open(db, create=False)
    try:
        found, offset = [], 0
        while page := gallery.history(camera=camera, limit=500, offset=offset, audit=False):
            found += page
            offset += len(page)
        vectors = {s.track: e for s in found if (e := gallery.sighting_embedding(s.id)) is not None}
        model = next(iter(vectors.values()))[0] if vectors else "facenet-512"
        settings = RecognitionSettings.from_gallery(gallery, model)
        matcher = load_matcher(gallery, model, settings)
        ids = np.unique(gallery.sample_matrix(model).person_ids)  # the matcher's columns: people by id
        if len(ids) != matcher.persons:
            raise BenchError(f"{len(ids)} people in the gallery but {matcher.persons} in its matcher")
        names = tuple(matcher.name_of(int(i)) or str(int(i)) for i in ids)
        rows = {
            track: [float(v) for v in matcher.person_scores(vector[None, :], model=model)[0]]
            for track, (m, vector) in vectors.items()
            if m == model
        }
        return Readback(model, settings.threshold, settings.margin, names, rows)
    finally:
        gallery.close()


@dataclass(frozen=True)
class RunData:
    """What one set's run measured (names, scores and frame ranges only: ``--save`` writes it as JSON)."""

    set: str
    spans: list[Span]
    sightings: list[Sighting]
    model: str
    threshold: float
    margin: float
    people: list[str]
    rows: dict[str, list[float]]
    enrol: dict[str, Any] = field(default_factory=dict)
    scan: dict[str, Any] = field(default_factory=dict)
    label: str = ""  # the engine measured (a commit, "before", "after")

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunData:
        spans = [Span(s["index"], Kind(s["kind"]), s["person"], s["first"], s["last"]) for s in raw["spans"]]
        sightings = [Sighting(**s) for s in raw["sightings"]]
        rest = {k: v for k, v in raw.items() if k not in ("spans", "sightings")}
        return cls(spans=spans, sightings=sightings, **rest)


def with_candidates(sightings: list[Sighting], back: Readback) -> tuple[list[Sighting], int]:
    """The sightings with their template's best candidate, exact score and runner-up (where read back),
    and how many line scores disagree with the template's by more than 0.001 (a consistency check)."""
    out, disagree = [], 0
    for s in sightings:
        row = back.rows.get(s.track)
        if row is None or s.score is None or not back.people:
            out.append(s)
            continue
        scores = np.asarray(row, dtype=np.float64)
        order = np.argsort(-scores, kind="stable")
        top = int(order[0])
        runner = float(scores[order[1]]) if len(order) > 1 and np.isfinite(scores[order[1]]) else -1.0
        best = float(scores[top])
        disagree += abs(best - s.score) > 1e-3
        out.append(Sighting(s.track, s.person, best, s.first, s.last, s.frames, s.looks, back.people[top], runner))
    return out, disagree


def _enrol_summary(lines: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    people = [x for x in lines if x.get("event") == "enrol"]
    summary = next((x for x in lines if x.get("event") == "summary"), {})
    return {
        "persons": len(people),
        "photos_enrolled": sum(int(x.get("enrolled", 0)) for x in people),
        "photos_refused": sum(len(x.get("rejected", [])) for x in people),
        "persons_without_samples": summary.get("persons_without_samples", []),
        "wall_s": round(wall, 1),
    }


def commit_label() -> str:
    """This checkout's short commit, "+" when its tracked files have changes ("" outside git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "-uno"], capture_output=True, text=True, cwd=ROOT, check=False
        )
    except OSError:
        return ""
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "") if head.returncode == 0 else ""


def run_set(name: SetName, workers: int, label: str = "") -> RunData:
    """Build, enrol, scan and read back one set (everything with faces in a temporary folder, then deleted)."""
    doorway = build_set(name)
    spans = [Span(p.index, Kind(p.kind.value), p.person, p.first, p.last) for p in doorway.passes]
    with tempfile.TemporaryDirectory(prefix="doorway-") as tmp:
        folder = Path(tmp)
        roster = write_roster(doorway, folder / "roster")
        video = folder / f"doorway-{name}.avi"
        began = time.monotonic()
        written = write_video(doorway, video)
        build_s = time.monotonic() - began
        db = str(folder / "gallery.db")
        enrol_lines, enrol_wall = main_py(["enrol", "--folders", str(roster), "--gallery", db])
        strange = {str(x.get("person")) for x in enrol_lines if x.get("event") == "enrol"} - set(doorway.enrolled)
        if strange:
            raise BenchError(f"enrol named people the set does not know: {sorted(strange)[:3]}")
        scan_args = ["scan", str(video), "--camera", CAMERA, "--start", START_ISO, "--gallery", db]
        lines, scan_wall = main_py([*scan_args, "--workers", str(workers)])
        back = read_back(Path(db), CAMERA)
    sightings, disagree = with_candidates(parse_sightings(lines, epoch(START_ISO), FPS), back)
    summary = next((x for x in lines if x.get("event") == "scan"), {})
    scan = {
        "frames_written": written,
        "frames_analysed": summary.get("frames"),
        "faces": summary.get("faces"),
        "embedded": summary.get("embedded"),
        "seconds": summary.get("seconds"),
        "wall_s": round(scan_wall, 1),
        "video_build_s": round(build_s, 1),
        "score_disagreements": disagree,
    }
    return RunData(
        str(name),
        spans,
        sightings,
        back.model,
        back.threshold,
        back.margin,
        list(back.people),
        back.rows,
        _enrol_summary(enrol_lines, enrol_wall),
        scan,
        label,
    )


# ------------------------------------------------------------------------------------------ scoring


def pass_rows(run: RunData, att: Attribution) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Per pass, its best score against each enrolled person over its sightings' templates: the stranger
    passes' rows, the watchlist passes' rows, and each watchlist pass's person (column). A watchlist
    person with nothing enrolled is a stranger to the gallery: their pass joins the strangers."""
    column = {n: i for i, n in enumerate(run.people)}
    empty = np.full(len(run.people), -np.inf)
    strangers: list[np.ndarray] = []
    mated: list[np.ndarray] = []
    own: list[int] = []
    for span, ks in zip(att.spans, att.of_pass, strict=True):
        rows = [np.asarray(run.rows[t], dtype=np.float64) for k in ks if (t := att.sightings[k].track) in run.rows]
        best = np.max(rows, axis=0) if rows else empty
        if span.kind is Kind.WATCHLIST and span.person in column:
            mated.append(best)
            own.append(column[span.person])
        else:
            strangers.append(best)
    width = len(run.people)
    return np.reshape(strangers, (-1, width)), np.reshape(mated, (-1, width)), own


def track_calibration(run: RunData, report: Report, fpir: float = 0.01) -> TrackCalibration:
    att = attribute(run.spans, run.sightings)
    stranger_rows, mated_rows, own = pass_rows(run, att)
    comparisons = person_comparisons(stranger_rows, mated_rows, own) if run.people else None
    return calibrate(report.scores, enrolled=len(run.people), fpir=fpir, comparisons=comparisons)


def looks_summary(looks: Sequence[int]) -> dict[str, float]:
    if not looks:
        return {}
    a = np.asarray(looks, dtype=np.float64)
    return {
        "mean": round(float(a.mean()), 2),
        "median": float(np.median(a)),
        "p90": float(np.quantile(a, 0.9)),
        "max": float(a.max()),
    }


def evaluation(run: RunData, report: Report) -> dict[str, Any]:
    """One set's figures as one JSON object."""
    return {
        "event": "doorway",
        "set": run.set,
        "label": run.label,
        "model": run.model,
        "threshold": run.threshold,
        "margin": run.margin,
        "watchlist_passes": report.watchlist,
        "stranger_passes": report.strangers,
        "enrolled": len(run.people),
        "fnir": round(report.fnir, 4),
        "missed": report.missed,
        "fpir": round(report.fpir, 4),
        "strangers_named": report.alarms,
        "identity_switches": report.switches,
        "tracks_spanning_passes": report.spanning,
        "watchlist_named_wrong": report.watchlist_named_wrong,
        "miss_causes": report.causes(Kind.WATCHLIST),
        "alarm_causes": report.causes(Kind.STRANGER),
        "errors": [
            {
                "pass": o.span.index,
                "at_s": round(o.span.first / FPS, 2),
                "kind": o.span.kind.value,
                "person": o.span.person,
                "names": list(o.names),
                "cause": None if o.cause is None else o.cause.value,
                "score": None if o.score is None else round(o.score, 4),
                "right": o.right,
            }
            for o in report.errors()
        ],
        "sightings": report.sightings,
        "named_sightings": report.named_sightings,
        "looks_per_track": looks_summary(report.looks),
        "sweep_disagrees": report.sweep_disagrees,
        "enrol": run.enrol,
        "scan": run.scan,
        "det": [[p.threshold, round(p.fpir, 4), round(p.fnir, 4)] for p in det_curve(report.scores)],
    }


def write_det(scored: list[tuple[RunData, Report]], path: Path) -> Path:
    """One SVG with a DET curve per run (per set, and per engine when runs of several are scored together)."""
    from vision.det_svg import DetSeries, det_svg

    series = [
        DetSeries(
            f"{_name(run)}: {run.model} at {run.threshold:.3f}",
            det_curve(report.scores),
            (report.fpir, report.fnir),
        )
        for run, report in scored
    ]
    strangers = min(report.strangers for _, report in scored)
    watchlist = min(report.watchlist for _, report in scored)
    title = f"DET per pass, doorway video: {watchlist} watchlist and {strangers} stranger passes a set"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(det_svg(series, title, strangers=strangers, mated=watchlist, unit="passes"))
    return path


def _name(run: RunData) -> str:
    return f"{run.label} {run.set}".strip()


# ------------------------------------------------------------------------------------------ printing


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_table(results: list[dict[str, Any]]) -> None:
    print(
        "\n| set | watchlist passes (enrolled) | stranger passes | FNIR | FPIR | identity switches "
        "| tracks over 2+ passes | watchlist passes given a wrong name | sightings (named) "
        "| looks per track: mean / median / max | frames analysed / written | scan s (wall) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        lk, sc, name = r["looks_per_track"], r["scan"], f"{r['label']} {r['set']}".strip()
        print(
            f"| {name} | {r['watchlist_passes']} ({r['enrolled']}) | {r['stranger_passes']} "
            f"| {_pct(r['fnir'])} ({r['missed']}/{r['watchlist_passes']}) "
            f"| {_pct(r['fpir'])} ({r['strangers_named']}/{r['stranger_passes']}) "
            f"| {r['identity_switches']} | {r['tracks_spanning_passes']} | {r['watchlist_named_wrong']} "
            f"| {r['sightings']} ({r['named_sightings']}) "
            f"| {lk.get('mean', '-')} / {lk.get('median', '-')} / {lk.get('max', '-')} "
            f"| {sc.get('frames_analysed')} / {sc.get('frames_written')} | {sc.get('seconds')} ({sc.get('wall_s')}) |"
        )
    for r in results:
        print(
            f"\n{r['set']}: {r['model']} at {r['threshold']:.3f}, margin {r['margin']:.3f}; "
            f"misses {r['miss_causes'] or 'none'}; strangers named {r['alarm_causes'] or 'none'}"
        )
        for e in r["errors"]:
            score = "" if e["score"] is None else f" {e['score']:.3f}"
            names = ", ".join(e["names"]) or "-"
            state = "named right, and also wrong" if e["right"] else e["cause"]
            print(
                f"  pass {e['pass']} at {e['at_s']:.1f} s: {e['kind']} {e['person']}: names [{names}]: {state}{score}"
            )


def print_calibration(cal: TrackCalibration, run: RunData) -> None:
    print(
        f"\ntrack-level calibration ({_name(run)} set, {cal.strangers} stranger passes, {cal.enrolled} enrolled): "
        f"FPIR <= {_pct(cal.fpir)} per stranger pass at {cal.threshold:.3f} (FNIR {_pct(cal.fnir_at_threshold)}); "
        f"95% upper bound over {cal.resamples} resamples of the strangers {cal.upper:.3f} "
        f"(FNIR {_pct(cal.fnir_at_upper)})"
    )
    if cal.modelled_upper is not None:
        reach = " (above 1: no threshold reaches it)" if cal.modelled_upper > 1 else ""
        print(
            f"  modelled for a {cal.gallery}-person watchlist (per-person scores of the passes, exponential tail, "
            f"people resampled): {cal.modelled:.3f}, upper {cal.modelled_upper:.3f}{reach}; "
            f"FNIR here at the upper {_pct(cal.fnir_at_modelled_upper or 0.0)}; "
            f"the same model for these {cal.enrolled} people: {cal.modelled_here:.3f}, "
            f"upper {cal.modelled_here_upper:.3f}"
        )


# ------------------------------------------------------------------------------------------ the runs


def demo_clip() -> dict[str, Any]:
    """The Hamilton clip scanned with Lin-Manuel Miranda enrolled from his reference photo."""
    if not CLIP.is_file() or not MIRANDA.is_file():
        raise BenchError(f"the clip and reference photo live in {CLIP.parent}")
    with tempfile.TemporaryDirectory(prefix="doorway-demo-") as tmp:
        db = str(Path(tmp) / "gallery.db")
        main_py(["enrol", "--name", "Lin-Manuel Miranda", str(MIRANDA), "--gallery", db])
        lines, wall = main_py(["scan", str(CLIP), "--camera", "stage", "--start", START_ISO, "--gallery", db])
    t0 = epoch(START_ISO)
    print("\n| track | person | score | from s | to s | frames | looks |")
    print("|---|---|---|---|---|---|---|")
    for s in (x for x in lines if x.get("event") == "sighting"):
        score = "-" if s["score"] is None else f"{s['score']:.3f}"
        print(
            f"| {s['track']} | {s['person'] or s.get('state', 'unknown')} | {score} | {epoch(s['start']) - t0:.2f} "
            f"| {epoch(s['end']) - t0:.2f} | {s['frames']} | {s.get('looks', '-')} |"
        )
    summary = next((x for x in lines if x.get("event") == "scan"), {})
    done = f"{summary.get('frames')} frames analysed in {summary.get('seconds')} s"
    print(f"\n{done} (wall {wall:.1f} s with model loading)")
    return {"event": "demo_clip", "sightings": [x for x in lines if x.get("event") == "sighting"], "scan": summary}


def heldout_at(design: TrackCalibration, report: Report) -> dict[str, float]:
    """The held-out passes at the design set's calibrated thresholds (the check the calibration is for)."""
    out = {
        "design_threshold": design.threshold,
        "fpir_at_design_threshold": round(report.scores.fpir(design.threshold), 4),
        "fnir_at_design_threshold": round(report.scores.fnir(design.threshold), 4),
        "design_upper": design.upper,
        "fpir_at_design_upper": round(report.scores.fpir(design.upper), 4),
        "fnir_at_design_upper": round(report.scores.fnir(design.upper), 4),
    }
    if design.modelled_upper is not None:
        out["design_modelled_upper"] = design.modelled_upper
        out["fpir_at_design_modelled_upper"] = round(report.scores.fpir(design.modelled_upper), 4)
        out["fnir_at_design_modelled_upper"] = round(report.scores.fnir(design.modelled_upper), 4)
    return out


def score_all(runs: list[RunData], det: Path | None, as_json: bool) -> list[dict[str, Any]]:
    """Score every run; a held-out run is also scored at the thresholds calibrated on the design run of
    the same label (the same engine), never the other way round."""
    results: list[dict[str, Any]] = []
    scored: list[tuple[RunData, Report]] = []
    design: dict[str, TrackCalibration] = {}
    for run in sorted(runs, key=lambda r: (r.label, r.set != SetName.DESIGN)):
        report = score_run(run.spans, run.sightings, run.threshold, run.margin)
        result = evaluation(run, report)
        if run.set == SetName.DESIGN:
            design[run.label] = track_calibration(run, report)
            result["calibration"] = design[run.label].as_json()
        elif run.label in design:
            result["at_design_calibration"] = heldout_at(design[run.label], report)
        scored.append((run, report))
        results.append(result)
    if det is not None:
        write_det(scored, det)
    if as_json:
        for r in results:
            print(json.dumps(r))
    else:
        print_all([run for run, _ in scored], results)
        if det is not None:
            print(f"\nDET curves: {det}")
    return results


def print_all(runs: list[RunData], results: list[dict[str, Any]]) -> None:
    print_table(results)
    for run, r in zip(runs, results, strict=True):
        if "calibration" in r:
            print_calibration(TrackCalibration(**r["calibration"]), run)
        if "at_design_calibration" in r:
            print(f"\n{_name(run)} at the design set's thresholds: {r['at_design_calibration']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["design", "heldout", "both"], default="design")
    ap.add_argument("--workers", type=int, default=2, help="main.py scan's detection threads (default 2)")
    ap.add_argument("--det", type=Path, metavar="FILE", help="write the DET curves (one per run) as an SVG file")
    ap.add_argument("--label", default=None, help="name the engine measured (default: this checkout's commit)")
    ap.add_argument("--json", action="store_true", help="one JSON object per set instead of the table")
    ap.add_argument("--save", type=Path, metavar="FILE", help="write the measured runs (no images) as JSON")
    ap.add_argument(
        "--from",
        dest="load",
        type=Path,
        action="append",
        metavar="FILE",
        help="score runs saved with --save (repeatable)",
    )
    ap.add_argument("--demo-clip", action="store_true", help="scan the Hamilton clip with Miranda enrolled")
    args = ap.parse_args(argv)
    try:
        if args.demo_clip:
            result = demo_clip()
            if args.json:
                print(json.dumps(result))
            return 0
        if args.load is not None:
            runs = [RunData.from_json(r) for f in args.load for r in json.loads(f.read_text())]
        else:
            names = [SetName.DESIGN, SetName.HELDOUT] if args.set == "both" else [SetName(args.set)]
            label = commit_label() if args.label is None else args.label
            runs = [run_set(n, args.workers, label) for n in names]
        if args.save is not None:
            args.save.write_text(json.dumps([r.as_json() for r in runs]))
            os.chmod(args.save, 0o600)
        score_all(runs, args.det, args.json)
    except (BenchError, OSError, ValueError) as exc:
        print(f"bench/doorway.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
