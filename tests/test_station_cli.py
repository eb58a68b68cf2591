"""The recognising station from the command line: enrol, identify, and headless on a real stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import CLIP, FACES, ROOT, SENDER, need

pytestmark = pytest.mark.slow
REFERENCE = FACES / "video" / "reference_faces"
PEOPLE = FACES / "identities"


def main_py(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def assert_no_native_noise(stderr: str) -> None:
    """TensorFlow, absl and oneDNN print nothing of their own on a normal run, whatever the CPU."""
    from vision.native_logs import is_native_line

    noise = [line for line in stderr.splitlines() if is_native_line(line) or "oneDNN" in line or "absl" in line]
    assert not noise, noise


def test_enrol_then_identify_from_files(tmp_path: Path) -> None:
    gallery = str(tmp_path / "gallery.db")
    powell = need(PEOPLE / "Colin_Powell")
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("not a picture")
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.full((200, 200, 3), 127, np.uint8))
    photos = sorted(powell.glob("*.jpg"))
    result = main_py(
        "enrol", "--gallery", gallery, "--name", "Colin Powell", *map(str, photos[:3]), str(not_image), str(blank)
    )
    assert result.returncode == 0, result.stderr
    assert_no_native_noise(result.stderr)
    [summary] = lines(result)
    assert summary["event"] == "enrol" and summary["person"] == "Colin Powell"
    assert summary["enrolled"] == 3 and summary["samples"] == 3
    reasons = {Path(str(r["path"])).name: r["reason"] for r in summary["rejected"]}
    assert reasons == {"notes.jpg": "not an image, or unreadable", "blank.png": "no face found"}

    other = sorted(need(PEOPLE / "Tony_Blair").glob("*.jpg"))[0]
    result = main_py("identify", "--gallery", gallery, str(photos[5]), str(other), str(not_image))
    assert result.returncode == 1, "one file could not be read"
    assert_no_native_noise(result.stderr)
    by_path = {Path(str(line["path"])).name: line for line in lines(result)}
    faces = by_path[photos[5].name]["faces"]
    assert isinstance(faces, list) and faces, "a face was found"
    central = min(faces, key=lambda f: abs(f["box"][0] + f["box"][2] / 2 - 125))
    assert central["person"] == "Colin Powell" and central["score"] > 0.5
    assert all(f["person"] is None for f in by_path[other.name]["faces"])
    assert by_path["notes.jpg"]["error"] == "not an image, or unreadable"


def test_enrol_errors_are_one_line(tmp_path: Path) -> None:
    result = main_py("enrol", "--gallery", str(tmp_path), "--name", "X", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "main.py: error:" in result.stderr


def test_headless_sights_the_enrolled_performer_on_a_real_stream(tmp_path: Path) -> None:
    """Enrol Lin-Manuel Miranda from his reference photo, stream the clip through a real sender."""
    need(CLIP)
    gallery = str(tmp_path / "gallery.db")
    key = tmp_path / "station.key"
    assert main_py("keygen", str(key)).returncode == 0
    enrolled = main_py(
        "enrol", "--gallery", gallery, "--name", "Lin-Manuel Miranda", str(REFERENCE / "lin-manuel-miranda.png")
    )
    assert enrolled.returncode == 0, enrolled.stderr
    station = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "headless",
            "--gallery",
            gallery,
            "--listen",
            "127.0.0.1:0",
            "--key-file",
            str(key),
            "--stats-every",
            "2",
            "--max-rate",
            "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert station.stdout is not None
        first = json.loads(station.stdout.readline())
        assert first["event"] == "listening", first
        sender = subprocess.run(
            [
                sys.executable,
                str(SENDER),
                *("--source", str(CLIP), "--name", "stage", "--station", str(first["address"])),
                *("--key-file", str(key), "--fps", "15"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sender.returncode == 0, sender.stderr
        time.sleep(3)
    finally:
        station.terminate()
        out, err = station.communicate(timeout=60)
    assert station.returncode == 0, err[-3000:]
    assert_no_native_noise(err)
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    sightings = [e for e in events if e["event"] == "sighting"]
    named = {e["person"] for e in sightings if e["person"] is not None}
    assert named == {"Lin-Manuel Miranda"}, sightings
    best = max(e["score"] for e in sightings if e["person"])
    assert best > 0.6
    history = main_py("history", "--gallery", gallery, "--person", "Lin-Manuel Miranda")
    assert history.returncode == 0, history.stderr
    assert len(lines(history)) >= 1


def test_the_console_refuses_to_start_with_one_clear_line(tmp_path: Path) -> None:
    """A corrupt gallery or an unreachable Ray cluster: one line on stderr, exit 2, no dialog left open."""
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4000)
    env_args = ("--listen", "127.0.0.1:0", "--quit-after", "2")
    for args, expected in (
        (("--gallery", str(corrupt), *env_args), "corrupt.db"),
        (
            ("--gallery", str(tmp_path / "g.db"), "--ray-address", "127.0.0.1:1", *env_args),
            "Ray cluster at 127.0.0.1:1",
        ),
    ):
        result = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        )
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("main.py: error:")]
        assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
        assert "Traceback" not in result.stderr


def test_enrol_a_roster_of_folders_with_the_models_loaded_once(tmp_path: Path) -> None:
    """`enrol --folders DIR`: one JSON line per person (named after the folder), then a summary."""
    roster = tmp_path / "roster"
    roster.mkdir()
    for person in ("Colin_Powell", "Tony_Blair"):
        photos = sorted(need(PEOPLE / person).glob("*.jpg"))[:2]
        (roster / person).mkdir()
        for photo in photos:
            (roster / person / photo.name).symlink_to(photo)
    (roster / "Tony_Blair" / "notes.jpg").write_text("not a picture")
    (roster / "Nobody").mkdir()
    gallery = str(tmp_path / "gallery.db")
    result = main_py("enrol", "--gallery", gallery, "--folders", str(roster))
    assert result.returncode == 0, result.stderr
    assert_no_native_noise(result.stderr)
    *people, summary = lines(result)
    assert [p["person"] for p in people] == ["Colin Powell", "Nobody", "Tony Blair"]
    by_name = {p["person"]: p for p in people}
    assert by_name["Colin Powell"]["enrolled"] == 2 and by_name["Colin Powell"]["rejected"] == []
    blair = by_name["Tony Blair"]  # one of his two photos may be refused on quality ("face turned away")
    reasons = {Path(str(r["path"])).name: r["reason"] for r in blair["rejected"]}
    assert reasons["notes.jpg"] == "not an image, or unreadable"
    assert blair["enrolled"] >= 1 and blair["enrolled"] + len(reasons) == 3
    assert by_name["Nobody"]["rejected"][0]["reason"] == "no image files in this folder"
    assert summary == {
        "event": "summary",
        "persons": 3,
        "enrolled": 2 + blair["enrolled"],
        "rejected": 1 + len(reasons),
        "persons_without_samples": ["Nobody"],
    }
    # A CSV roster (name,path; paths relative to the CSV) adds to the same people; its third column and
    # --watchlist (for everyone) put them on watchlists, created if new.
    extra = sorted(need(PEOPLE / "Colin_Powell").glob("*.jpg"))[2]
    (tmp_path / "extra.jpg").symlink_to(extra)
    csv_file = tmp_path / "roster.csv"
    csv_file.write_text("name,path,watchlists\nColin Powell,extra.jpg,Barred; VIP\nGhost,missing.jpg\n")
    result = main_py("enrol", "--gallery", gallery, "--folders", str(csv_file), "--watchlist", "Staff")
    assert result.returncode == 0, result.stderr
    *people, summary = lines(result)
    assert people[0]["person"] == "Colin Powell" and people[0]["samples"] == 3
    assert people[0]["watchlists"] == ["Barred", "Staff", "VIP"]
    assert people[1]["rejected"] == [{"path": str(tmp_path / "missing.jpg"), "reason": "no such file"}]
    assert people[1]["watchlists"] == [], "nobody enrolled: nobody put on a list"
    assert summary["enrolled"] == 1 and summary["persons_without_samples"] == ["Ghost"]


def test_a_roster_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "bad.csv"
    bad.write_text("only-one-column\n")
    long_list = tmp_path / "long.csv"
    long_list.write_text(f"name,path\nAda,ada.jpg,{'x' * 61}\n")
    cases = (
        (tmp_path / "none", "no roster at"),
        (empty, "no person folders"),
        (bad, "line 1"),
        (long_list, "line 2: watchlist name is longer than 60 characters"),
    )
    for target, needle in cases:
        result = main_py("enrol", "--gallery", str(tmp_path / "g.db"), "--folders", str(target))
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and needle in result.stderr, result.stderr
    result = main_py("enrol", "--gallery", str(tmp_path / "g.db"), "--name", "Ada", str(bad), "--watchlist", " ")
    assert result.returncode == 2 and "--watchlist: watchlist name is empty" in result.stderr, result.stderr


def test_scan_puts_recorded_footage_into_the_history(tmp_path: Path) -> None:
    """`scan FILE --start ISO`: the live engine over a file; sightings timed from --start, searchable after."""
    clip = need(CLIP)
    gallery = str(tmp_path / "gallery.db")
    enrolled = main_py(
        "enrol", "--gallery", gallery, "--name", "Lin-Manuel Miranda", str(REFERENCE / "lin-manuel-miranda.png")
    )
    assert enrolled.returncode == 0, enrolled.stderr
    result = main_py("scan", "--gallery", gallery, str(clip), "--camera", "archive", "--start", "2026-11-02T20:00:00Z")
    assert result.returncode == 0, result.stderr
    assert_no_native_noise(result.stderr)
    *sightings, summary = lines(result)
    assert summary["event"] == "scan" and summary["camera"] == "archive" and summary["frames"] >= 130
    assert summary["embedded"] < summary["faces"] / 2, "track-first: most faces are not embedded"
    assert {s["event"] for s in sightings} == {"sighting"} and len(sightings) == summary["sightings"]
    named = [s for s in sightings if s["person"] is not None]
    assert [s["person"] for s in named] == ["Lin-Manuel Miranda"]
    assert "2026-11-02T20:00:02" <= named[0]["start"] < named[0]["end"] <= "2026-11-02T20:00:09.2"
    assert all("2026-11-02T20:00:00" <= s["start"] <= "2026-11-02T20:00:09.2" for s in sightings)
    history = main_py("history", "--gallery", gallery, "--camera", "archive", "--person", "Lin-Manuel Miranda")
    assert history.returncode == 0 and len(lines(history)) == 1


def test_scan_errors_are_one_line(tmp_path: Path) -> None:
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    result = main_py("scan", "--gallery", str(tmp_path / "g.db"), str(tmp_path / "missing.mp4"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no video file" in result.stderr
    result = main_py("scan", "--gallery", str(tmp_path / "g.db"), str(not_video), "--start", "yesterday")
    assert result.returncode == 2 and "--start" in result.stderr
    result = main_py("scan", "--gallery", str(tmp_path / "g.db"), str(not_video))
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if "notes.mp4" in line] == [
        f"main.py: {not_video}: cannot open video file {not_video} (not a video OpenCV can decode)"
    ]
