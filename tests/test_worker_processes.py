"""Recognition in worker processes (``headless --worker-processes``): the same engine in one process per worker,
a real stream, a real gallery; a worker killed mid-stream costs the frame it held and comes back."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from station.station import Station, StationOptions
from storage.gallery import Gallery
from tests.conftest import CLIP, FACES, SenderFactory, need, wait_until
from vision.pipeline import FacePipeline, read_image

pytestmark = pytest.mark.slow


def test_worker_processes_recognise_a_stream_and_survive_a_killed_worker(
    tmp_path: Path, key_file: Path, pipeline: FacePipeline, start_sender: SenderFactory
) -> None:
    image = read_image(need(FACES / "video" / "reference_faces" / "lin-manuel-miranda.png"))
    assert image is not None
    face = pipeline.central_face(image)
    gallery_path = tmp_path / "gallery.db"
    with Gallery.open(gallery_path) as g:
        g.enrol_sample(
            "Lin-Manuel Miranda", model=face.model, embedding=face.embedding, crop_jpeg=b"", source="t", quality=1
        )
    options = StationOptions(
        gallery=gallery_path, listen=("127.0.0.1", 0), key_file=key_file, workers=2, worker_processes=True
    )
    named: list[str] = []
    with Station(options) as station:
        station.add_sighting_listener(lambda r: named.append(r.person) if r.person else None)
        recogniser = station.recogniser
        assert station.receiver is not None and recogniser is not None and recogniser.processes is not None
        pids = recogniser.processes.pids
        assert len(pids) == 2 and all(p is not None and p != os.getpid() for p in pids)
        host, port = station.receiver.address
        start_sender("--source", str(need(CLIP)), "--loop", "--name", "stage", "--station", f"{host}:{port}")

        def analysed() -> int:
            return sum(s.recognised for s in recogniser.stats())

        assert wait_until(lambda: analysed() >= 20, 90), recogniser.stats()
        (stats,) = recogniser.stats()
        home = recogniser.processes.home("stage")
        victim = pids[home]
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        before = analysed()
        assert wait_until(lambda: analysed() >= before + 20, 90), "recognition goes on in a fresh worker"
        (after,) = recogniser.stats()
        assert after.errors <= stats.errors + 2, "the killed worker cost the frame it held, not the stream"
        assert recogniser.processes.pids[home] not in (None, victim), "the worker was started again"

        def him_live() -> bool:
            result = recogniser.latest_results().get("stage")
            return result is not None and any(f.person == "Lin-Manuel Miranda" for f in result.faces)

        assert wait_until(him_live, 60), "named live by a worker process"
    assert "Lin-Manuel Miranda" in named, "his tracks were recorded as him (the stop ends the live ones)"
