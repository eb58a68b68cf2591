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
from tests.conftest import ROOT, wait_until

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
