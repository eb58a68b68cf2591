"""The Qt-free station: its start order, its schedules (retention on any face), and its shutdown."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from station.runtime import RETENTION_DAYS
from station.schedule import Schedule
from station.station import Station, StationError, StationOptions
from storage.gallery import Gallery
from storage.records import NewSighting
from tests.conftest import ROOT, SenderFactory, wait_until

DAY = 86_400.0


def old_and_new_sightings(path: Path, days_kept: float) -> None:
    """A gallery with one sighting 100 days old and one from now, keeping ``days_kept`` days."""
    now = time.time()
    with Gallery.open(path) as gallery:
        for i, start in enumerate((now - 100 * DAY, now)):
            gallery.record_sightings(
                [
                    NewSighting(
                        camera="door",
                        start=start,
                        end=start + 1,
                        person_id=None,
                        score=0.2,
                        box=(1, 2, 30, 30),
                        crop_jpeg=b"",
                        embedding=np.ones(512, np.float32),
                        model="facenet-512",
                        track=f"door-{i}",
                    )
                ]
            )
        gallery.set_setting(RETENTION_DAYS, days_kept)
        assert gallery.flush(10)
        assert gallery.count_sightings() == 2


@pytest.mark.slow
def test_retention_runs_when_a_headless_station_starts(tmp_path: Path) -> None:
    """It used to be scheduled by the console's window only: a headless server kept everything forever."""
    gallery = tmp_path / "gallery.db"
    old_and_new_sightings(gallery, days_kept=30)
    result = subprocess.run(
        [
            *(sys.executable, str(ROOT / "main.py"), "headless", "--gallery", str(gallery)),
            *("--listen", "127.0.0.1:0", "--duration", "1", "--stats-every", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[0])["event"] == "listening"
    with Gallery.open(gallery) as g:
        kept = g.history(limit=10, audit=False)
    assert [s.track for s in kept] == ["door-1"], "the 100-day-old sighting was not removed"


def test_the_station_runs_retention_at_start_then_on_its_schedule(tmp_path: Path) -> None:
    gallery = tmp_path / "gallery.db"
    old_and_new_sightings(gallery, days_kept=30)
    options = StationOptions(gallery=gallery, listen=("127.0.0.1", 0), lazy_models=True, retention_every_s=0.2)
    station = Station(options).start()
    try:
        assert wait_until(lambda: station.schedule.runs("retention") >= 3, 10), "retention did not repeat"
        assert station.gallery is not None and station.gallery.count_sightings() == 1
    finally:
        station.stop()


def test_a_failed_start_stops_what_had_started(tmp_path: Path) -> None:
    """An unusable gallery fails after the socket was bound: the port is free again, one clear error."""
    folder = tmp_path / "folder.db"
    folder.mkdir()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    station = Station(StationOptions(gallery=folder, listen=("127.0.0.1", port)))
    with pytest.raises(StationError, match="is a directory"):
        station.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))  # the station's receiver let it go


def test_a_station_key_is_created_beside_the_gallery_once(tmp_path: Path) -> None:
    options = StationOptions(gallery=tmp_path / "g" / "gallery.db", listen=("127.0.0.1", 0), recognition=False)
    with Station(options) as first:
        assert first.key_created and first.key_file == tmp_path / "g" / "station.key"
    with Station(options) as second:
        assert not second.key_created and second.key == first.key


def test_a_failing_job_is_logged_and_runs_again(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[float] = []
    ok = threading.Event()

    def flaky() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("disk full")
        ok.set()

    schedule = Schedule()
    schedule.every(0.05, flaky, name="flaky")
    schedule.start()
    try:
        assert ok.wait(5)
    finally:
        schedule.stop()
    assert len(calls) >= 2
    assert any("scheduled job flaky failed" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError):
        schedule.every(0, flaky, name="never")


@pytest.mark.slow
def test_every_camera_that_sends_frames_is_noted_with_its_first_and_last_seen(
    tmp_path: Path, key_file: Path, start_sender: SenderFactory
) -> None:
    """The History page's camera filter is filled from the cameras table, which nothing in the station wrote:
    the station notes each camera from its frames, one write per camera every few seconds, not one per frame."""
    path = tmp_path / "gallery.db"
    options = StationOptions(gallery=path, listen=("127.0.0.1", 0), key_file=key_file, lazy_models=True)
    station = Station(options).start()
    try:
        assert station.receiver is not None
        host, port = station.receiver.address
        began = time.time()
        start_sender("--source", "demo", "--name", "gate", "--station", f"{host}:{port}", "--fps", "15")
        assert wait_until(lambda: any(s.frames >= 30 for s in station.receiver.stats()), 30)  # type: ignore[union-attr]
        frames = sum(s.frames for s in station.receiver.stats())
        assert station.storage is not None, "the free-space watch runs with the gallery"
        room = station.storage.status().room_bytes
        assert room is not None and room > 0 and not station.storage.status().low_space
    finally:
        station.stop()
    stopped = time.time()
    with Gallery.open(path) as g:
        cameras = g.cameras()
    assert [c.name for c in cameras] == ["gate"], "the camera was not noted"
    (camera,) = cameras
    assert camera.address.startswith("127.0.0.1:")
    assert began <= camera.first_seen <= camera.last_seen <= stopped
    assert camera.last_seen - camera.first_seen >= 1.5, "the last frame's time is noted when the station stops"
    assert station.camera_log is not None
    assert station.camera_log.notes <= 3, f"{station.camera_log.notes} writes for {frames} frames: not throttled"
