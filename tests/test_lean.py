"""A lean station: the default path runs with TensorFlow unimportable, and choosing what needs it says so.

Every process here starts with tests/no_tensorflow on PYTHONPATH, whose sitecustomize makes
``import tensorflow`` (and keras, mtcnn) fail as on a machine where the ``tensorflow`` extra was
never installed, and reports at exit whether anything tried.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FACES, ROOT, need

BLOCKER = ROOT / "tests" / "no_tensorflow"
PHOTO = FACES / "group" / "2008_001009.jpg"
EXTRA_LINE = "needs the 'tensorflow' extra, which is not installed: pip install 'facestation[tensorflow]'"


def blocked_env(reports: Path, **extra: str) -> dict[str, str]:
    """The environment of a process with TensorFlow blocked that reports into ``reports``."""
    reports.mkdir(exist_ok=True)
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(BLOCKER), path) if p),
        "FACESTATION_TF_REPORT": str(reports),
        "FACESTATION_RUNTIME": "",
        **extra,
    }


def read_reports(reports: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(reports.glob("*.json"))]


def main_py(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_a_headless_station_recognises_a_face_with_tensorflow_blocked(tmp_path: Path) -> None:
    """The real default path end to end: headless with a demo camera (a real sender process streaming the
    Hamilton clip over loopback) enrols the demo people and names Lin-Manuel Miranda; neither the station
    nor its sender ever tries to import TensorFlow, and it is absent from their sys.modules at exit."""
    reports = tmp_path / "reports"
    env = blocked_env(reports, XDG_DATA_HOME=str(tmp_path / "data"), FACESTATION_LOG_DIR=str(tmp_path / "logs"))
    command = [sys.executable, str(ROOT / "main.py"), "headless", "--gallery", str(tmp_path / "gallery.db")]
    command += ["--listen", "127.0.0.1:0", "--demo", "1", "--stats-every", "1", "--duration", "120"]
    station = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    named: list[dict[str, Any]] = []
    recognised = 0
    deadline = time.monotonic() + 150
    try:
        assert station.stdout is not None
        for line in station.stdout:  # the station ends by itself at --duration if nothing is named
            event = json.loads(line)
            if event["event"] == "recognition":
                recognised = max(recognised, int(event["recognised"]))
            if event["event"] == "sighting" and event["person"] is not None:
                named.append(event)
                break
            assert time.monotonic() < deadline, "no one was named in time"
    finally:
        station.terminate()
        _, err = station.communicate(timeout=60)
    assert station.returncode == 0, err[-3000:]
    assert named and named[0]["person"] == "Lin-Manuel Miranda", (named, err[-2000:])
    assert recognised > 0
    found = read_reports(reports)
    assert any("headless" in r["argv"] for r in found), found  # the station reported ...
    assert any(any("udp_sender" in a or a == "sender" for a in r["argv"]) for r in found), found  # ... its sender too
    assert [(r["argv"], r["attempts"], r["loaded"]) for r in found if r["attempts"] or r["loaded"]] == []


def test_choosing_what_needs_tensorflow_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    photo = str(need(PHOTO))
    cases = {  # what is chosen -> the words that name it in the error line
        "FACESTATION_RUNTIME=tf": (blocked_env(tmp_path / "r1", FACESTATION_RUNTIME="tf"), "facenet-512"),
        "the vggface2-2048 model": (blocked_env(tmp_path / "r2"), "vggface2-2048"),
    }
    for what, (env, model) in cases.items():
        result = main_py(env, "identify", "--model", model, "--gallery", str(tmp_path / "gallery.db"), photo)
        assert result.returncode == 2, (what, result.stderr)
        assert result.stdout == "", what
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("main.py: error: "), lines
        assert what in lines[0] and lines[0].endswith(EXTRA_LINE), lines


def test_without_openvino_or_tensorflow_the_station_says_which_package_is_missing(tmp_path: Path) -> None:
    """The default runtime falls back to TensorFlow only where its extra is installed; else OpenVINO's own error."""
    env = blocked_env(tmp_path / "reports", FACESTATION_BLOCK_ALSO="openvino")
    result = main_py(env, "identify", "--model", "facenet-512", "--gallery", str(tmp_path / "g.db"), str(need(PHOTO)))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "the OpenVINO runtime needs the 'openvino' package" in lines[0], lines
