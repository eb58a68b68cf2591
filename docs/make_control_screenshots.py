"""Screenshots of the control room for the README and the operator's guide, on a real X server (Xvfb).

    xvfb-run -s "-screen 0 1440x900x24" .venv/bin/python docs/make_control_screenshots.py

The console runs as `main.py --demo` does (two demo cameras, the demo people enrolled) plus the Hamilton
clip streamed by a real sender. Lin-Manuel Miranda is put on a "Barred" list and Alex Lacamoire on "VIP"
before the clip plays, and stranger alarms are on for the stage camera (a face seen twice in half an
hour), so the station raises real alarms; Barred's is acknowledged with a note, the next one stays new. Earlier
unknown sightings of Colin Powell on a "lobby" camera (LFW photos through the real pipeline) are named from
the Unknown faces page, which offers his other past sightings. Saves docs/screenshots/alarms.png (the queue
with an acknowledged and a new alarm), alarm.png (one opened), person.png and relabel.png.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from make_screenshots import FACES, OUT, shoot, stream_clip, wait  # noqa: E402  (docs/, beside this script)
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui.app import ConsoleOptions, build_services  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from station.enrolment import crop_jpeg  # noqa: E402
from storage.gallery import Gallery  # noqa: E402
from storage.records import NewSighting  # noqa: E402
from storage.watchlist_records import ListAction, Priority  # noqa: E402
from vision.pipeline import FacePipeline, read_image  # noqa: E402

LIN, ALEX = "Lin-Manuel Miranda", "Alex Lacamoire"


def wait_for(app: QApplication, what: Callable[[], object], seconds: float, name: str) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if what():
            return
        wait(app, 0.2)
    raise SystemExit(f"gave up waiting for {name}")


def lobby_history(gallery: Gallery) -> None:
    """Colin Powell seen on a lobby camera last week, unknown then: his first photo twice (a still camera),
    his others once each, and two other people; each with its crop and the photo as evidence snapshot."""
    pipeline = FacePipeline()
    keys = [("Colin_Powell", i) for i in (1, 1, 2, 3, 4, 5, 6, 7)] + [("Tony_Blair", 2), ("Hugo_Chavez", 1)]
    paths = [FACES / "identities" / n / f"{n}_{i:04d}.jpg" for n, i in keys]
    images = [read_image(p) for p in paths]
    faces = pipeline.central_faces([im for im in images if im is not None])
    week_ago = time.time() - 7 * 86_400
    rng = np.random.default_rng(1)
    for n, (obs, image) in enumerate(zip(faces, images, strict=True)):
        assert image is not None
        _ok, snapshot = cv2.imencode(".jpg", image)
        x, y, w, h = (float(v) for v in obs.detection.box)
        emb = obs.embedding + rng.normal(0, 0.002, obs.embedding.shape).astype(np.float32)
        start = week_ago + n * 3600
        gallery.record_sightings(
            [
                NewSighting(
                    "lobby",
                    start,
                    start + 4,
                    None,
                    0.31,
                    (x, y, w, h),
                    crop_jpeg(obs),
                    emb,
                    obs.model,
                    f"lobby-{n}",
                    quality=0.8,
                    snapshot_jpeg=bytes(snapshot),
                    snapshot_box=(x, y, w, h),
                )
            ]
        )
    gallery.flush()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="facestation-shots-"))
    path = data / "gallery.db"
    with Gallery.open(path, actor="setup") as g:
        lobby_history(g)
    app = QApplication(sys.argv)
    services, stops = build_services(
        ConsoleOptions(
            gallery=path, listen=("127.0.0.1", 0), demo_cameras=2, demo_people=True, mdns_interfaces=("127.0.0.1",)
        )
    )
    gallery = services.gallery
    assert gallery is not None
    window = MainWindow(services)
    window.setGeometry(0, 0, 1440, 900)
    window.show()
    sender: subprocess.Popen[bytes] | None = None
    try:
        wait_for(app, lambda: {LIN, ALEX} <= {p.name for p in gallery.persons()}, 240, "the demo people")
        gallery.watchlists.create(
            "Barred",
            priority=Priority.CRITICAL,
            sound="bell x3",
            escalate_after_s=120,
            actions=[ListAction.QUEUE, ListAction.TRAY, ListAction.FOCUS],
        )
        gallery.watchlists.create("VIP", priority=Priority.LOW, sound="bell", escalate_after_s=0)
        gallery.watchlists.add(LIN, "Barred")
        gallery.watchlists.add(ALEX, "VIP")
        # Strangers on the stage camera who come back (the clip loops) raise a stranger alarm.
        for key, value in (
            ("alerts.unknown", True),
            ("alerts.strangers.cameras", "stage"),
            ("alerts.strangers.returns", 2),
            ("alerts.strangers.window_min", 30),
        ):
            gallery.set_setting(key, value)
        _, port = services.receiver.address
        sender = stream_clip(port, services.key_file)
        queue = window.alerts
        wait_for(app, lambda: any(a.watchlist == "Barred" for a in queue.alarms), 180, "Barred's alarm")
        (barred,) = [a for a in queue.alarms if a.watchlist == "Barred"]
        gallery.alarms.acknowledge(barred.id, "Guard 2 sent to the stage door", by="guard-1@control-room")
        wait_for(app, lambda: any(a.id != barred.id and a.state == "new" for a in queue.alarms), 240, "a new alarm")
        window.tabs.setCurrentWidget(window.grid)
        if "stage" in window.grid.tiles:
            window.grid.move_tile("stage", window.grid.order[0])
        wait(app, 3)
        shoot("alarms")

        dialog = window.open_alarm(barred)
        assert dialog is not None
        dialog.setGeometry(140, 120, 1180, 560)
        wait_for(app, lambda: dialog.detail is not None, 30, "the alarm's detail")
        dialog.note.setPlainText("Stage manager called")
        wait(app, 1)
        shoot("alarm")
        dialog.reject()

        view = window.gallery_view
        assert view is not None
        window.tabs.setCurrentWidget(view)
        lin = gallery.person(LIN).id
        wait_for(app, lambda: gallery.history(person=lin, limit=1, audit=False), 120, "a recorded sighting")
        view.select_person(lin)
        wait_for(app, lambda: view.page is not None and view.page.person.id == lin and view.busy == 0, 30, "page")
        wait(app, 1)
        shoot("person")

        unknown = window.unknown_view
        assert unknown is not None
        unknown.threshold = 0.95
        window.tabs.setCurrentWidget(unknown)
        unknown.refresh()
        wait_for(app, lambda: unknown.busy == 0 and unknown.clusters, 60, "the unknown clusters")
        row = next(i for i, r in enumerate(unknown.clusters) if "lobby" in r.cluster.cameras)
        unknown.table.selectRow(row)
        unknown.name_cluster(row, "Colin Powell")
        wait_for(app, lambda: window.relabel_dialog is not None, 60, "the relabelling offer")
        offer = window.relabel_dialog
        assert offer is not None
        offer.setGeometry(200, 120, 1000, 600)
        wait(app, 2)
        shoot("relabel")
        QTimer.singleShot(0, window.close)
        wait(app, 0.5)
    finally:
        if sender is not None:
            sender.terminate()
        window.close()
        for stop in stops:
            try:
                stop()
            except Exception as exc:
                print(f"stopping: {exc}")
        shutil.rmtree(data, ignore_errors=True)  # its gallery holds faces
    return 0


if __name__ == "__main__":
    sys.exit(main())
