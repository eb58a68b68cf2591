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
    from vision.tf_runtime import is_native_line

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
        (("--gallery", str(tmp_path / "g.db"), "--ray-address", "127.0.0.1:1", *env_args), "Ray cluster 127.0.0.1:1"),
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
