"""Smoke test of the frozen station app in dist/facestation (build it with `make package`; run with
`make package-test`). Everything here runs the app's own binary: no interpreter from the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import CLIP, FACES, ROOT, need

APP = ROOT / "dist" / "facestation" / "facestation"
REFERENCE = FACES / "video" / "reference_faces"

pytestmark = [
    pytest.mark.package,
    pytest.mark.slow,
    pytest.mark.skipif(not APP.is_file(), reason="no frozen app: run `make package` first"),
]


def app_env(tmp_path: Path) -> dict[str, str]:
    """A user whose data folder and logs are inside tmp_path; offscreen Qt."""
    return {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "HOME": str(tmp_path / "home"),
        "FACESTATION_LOG_DIR": str(tmp_path / "logs"),
        "QT_QPA_PLATFORM": "offscreen",
    }


def app(tmp_path: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(APP), *args], capture_output=True, text=True, timeout=timeout, env=app_env(tmp_path), check=False
    )


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_version_and_paths_in_the_users_data_folder(tmp_path: Path) -> None:
    version = app(tmp_path, "--version", timeout=60)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "FaceStation 0.1.0"
    paths = app(tmp_path, "paths", timeout=60)
    assert paths.returncode == 0, paths.stderr
    [shown] = lines(paths.stdout)
    data = tmp_path / "xdg" / "facestation"
    assert shown == {
        "gallery": str(data / "gallery.db"),
        "key": str(data / "station.key"),
        "logs": str(tmp_path / "logs"),
        "data_dir": str(data),
        "frozen": True,
    }
    # The default key is made in the user's data folder, never next to the binary.
    result = app(tmp_path, "headless", "--no-recognition", "--listen", "127.0.0.1:0", "--duration", "0.5", timeout=60)
    assert result.returncode == 0, result.stderr
    assert (data / "station.key").is_file() and not (APP.parent / "data").exists()
    # Ray is left out of the bundle (packaging/facestation.spec): asking for it is one clear line.
    ray = app(tmp_path, "headless", "--listen", "127.0.0.1:0", "--ray-address", "127.0.0.1:9", timeout=60)
    assert ray.returncode == 2 and "Traceback" not in ray.stderr, ray.stderr[-2000:]
    assert "Ray is not installed" in ray.stderr.strip().splitlines()[-1]


def test_the_app_runs_its_models_on_openvino_and_ships_no_tensorflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No TensorFlow in the bundle, and the models load on OpenVINO (once they silently fell back to
    TensorFlow, whose package versions the app could not read); choosing TF is one line naming the extra."""
    bundle = APP.parent / "_internal"
    assert not [p.name for p in bundle.iterdir() if p.name.split("-")[0] in ("tensorflow", "keras", "mtcnn")]
    photo = str(need(FACES / "group" / "2008_001009.jpg"))
    monkeypatch.setenv("FACESTATION_RUNTIME", "openvino")
    found = app(tmp_path, "identify", "--model", "facenet-512", photo)
    assert found.returncode == 0, found.stderr[-2000:]
    assert len(lines(found.stdout)[0]["faces"]) == 2
    monkeypatch.setenv("FACESTATION_RUNTIME", "tf")
    tf = app(tmp_path, "identify", photo, timeout=120)
    assert tf.returncode == 2 and tf.stderr.count("\n") == 1, tf.stderr[-2000:]
    assert "needs the 'tensorflow' extra" in tf.stderr


def test_headless_receives_a_frozen_sender_and_records_a_sighting(tmp_path: Path) -> None:
    """The bundled models enrol a face, the app's own sender streams the clip, headless names the performer."""
    need(CLIP)
    gallery = str(tmp_path / "gallery.db")
    key = tmp_path / "station.key"
    assert app(tmp_path, "keygen", str(key), timeout=60).returncode == 0
    enrolled = app(
        tmp_path,
        "enrol",
        "--gallery",
        gallery,
        "--name",
        "Lin-Manuel Miranda",
        str(REFERENCE / "lin-manuel-miranda.png"),
    )
    assert enrolled.returncode == 0, enrolled.stderr[-3000:]
    [summary] = lines(enrolled.stdout)
    assert summary["enrolled"] == 1 and summary["model"] == "facenet-512"
    station = subprocess.Popen(
        [
            *(str(APP), "headless", "--gallery", gallery, "--listen", "127.0.0.1:0", "--key-file", str(key)),
            *("--stats-every", "2", "--max-rate", "10"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=app_env(tmp_path),
    )
    try:
        assert station.stdout is not None
        first = json.loads(station.stdout.readline())  # printed once the models are loaded and the socket is bound
        assert first["event"] == "listening", first
        sender = subprocess.run(
            [
                *(str(APP), "sender", "--source", str(CLIP), "--name", "stage", "--station", str(first["address"])),
                *("--key-file", str(key), "--fps", "15", "--no-announce"),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            env=app_env(tmp_path),
            check=False,
        )
        assert sender.returncode == 0, sender.stderr[-3000:]
        time.sleep(3)
    finally:
        station.terminate()
        out, err = station.communicate(timeout=90)
    assert station.returncode == 0, err[-3000:]
    events = lines(out)
    assert {"online", "offline"} <= {e["state"] for e in events if e["event"] == "camera" and e["camera"] == "stage"}
    frames = max((e.get("frames", 0) for e in events if e["event"] == "stats" and e["camera"] == "stage"), default=0)
    sightings = [e for e in events if e["event"] == "sighting"]
    assert {e["person"] for e in sightings if e["person"]} == {"Lin-Manuel Miranda"}, (sightings, frames)
    history = app(tmp_path, "history", "--gallery", gallery, "--person", "Lin-Manuel Miranda", timeout=60)
    assert history.returncode == 0, history.stderr
    assert len(lines(history.stdout)) >= 1
    log_text = (tmp_path / "logs" / "headless.log").read_text()
    assert "camera stage online" in log_text and "camera stage offline" in log_text


def _senders_started_with(key_path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if str(key_path) in cmdline and "sender" in cmdline:
            found.append(proc)
    return found


def test_console_starts_offscreen_with_demo_cameras_and_closes_cleanly(tmp_path: Path) -> None:
    gallery = tmp_path / "data" / "gallery.db"
    result = app(tmp_path, "--demo", "--gallery", str(gallery), "--quit-after", "20", timeout=150)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    # The demo cameras were the frozen app's own sender, and they reached the console.
    log_text = (tmp_path / "logs" / "console.log").read_text()
    assert "camera demo-1 online" in log_text and "camera demo-2 online" in log_text, log_text[-3000:]
    deadline = time.monotonic() + 10
    while _senders_started_with(gallery.parent / "station.key") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _senders_started_with(gallery.parent / "station.key"), "demo senders outlived the console"
