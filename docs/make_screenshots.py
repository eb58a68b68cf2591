"""Screenshots of the console for the README, taken on a real X server (run under Xvfb).

    xvfb-run -s "-screen 0 1440x900x24" .venv/bin/python docs/make_screenshots.py

It enrols Lin-Manuel Miranda from ../shared/faces, opens the console with two demo cameras plus
the Hamilton clip streamed by a real sender, and saves docs/screenshots/{grid,enrol,history}.png.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
from PySide6.QtCore import QPoint, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui.app import ConsoleOptions, build_services  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402

FACES = ROOT.parent / "shared" / "faces"
CLIP = FACES / "video" / "short_hamilton_clip.mp4"
OUT = ROOT / "docs" / "screenshots"


def wait(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def shoot(name: str) -> None:
    screen = QGuiApplication.primaryScreen()
    path = OUT / f"{name}.png"
    screen.grabWindow(0).save(str(path))
    print(f"saved {path}")


def stream_clip(port: int, key_file: Path) -> subprocess.Popen[bytes]:
    """A real sender streaming the Hamilton clip, looped at 15 fps, as camera "stage"."""
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "network" / "udp_sender.py"),
            "--source",
            str(CLIP),
            "--loop",
            "--name",
            "stage",
            "--station",
            f"127.0.0.1:{port}",
            "--key-file",
            str(key_file),
            "--fps",
            "15",
        ],
        stderr=subprocess.DEVNULL,
    )


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="facestation-shots-"))
    gallery = data / "gallery.db"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "--gallery",
            str(gallery),
            "enrol",
            "--name",
            "Lin-Manuel Miranda",
            str(FACES / "video" / "reference_faces" / "lin-manuel-miranda.png"),
        ],
        check=True,
    )
    app = QApplication(sys.argv)
    services, stops = build_services(
        ConsoleOptions(gallery=gallery, listen=("127.0.0.1", 0), demo_cameras=2, mdns_interfaces=("127.0.0.1",))
    )
    _, port = services.receiver.address
    sender = stream_clip(port, services.key_file)
    window = MainWindow(services)
    window.setGeometry(0, 0, 1440, 900)
    window.show()
    try:
        # Wait until the stage camera shows a named face.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            wait(app, 0.2)
            tile = window.grid.tiles.get("stage")
            if tile is not None and any(o.label == "Lin-Manuel Miranda" for o in tile.overlays):
                break
        window.grid.move_tile("stage", window.grid.order[0])
        wait(app, 0.5)
        shoot("grid")

        window.freeze_and_enrol("stage")
        deadline = time.monotonic() + 30
        while window.enrol_dialog is None and time.monotonic() < deadline:
            wait(app, 0.1)
        dialog = window.enrol_dialog
        assert dialog is not None
        dialog.setGeometry(120, 60, 1200, 760)
        while dialog.busy and time.monotonic() < deadline + 30:
            wait(app, 0.1)
        if dialog.detected:
            box = dialog.detected[0].detection.box
        else:
            h, w = dialog.image.shape[:2]
            box = (w * 0.4, h * 0.2, w * 0.2, h * 0.4)
        editor = dialog.editor
        r = editor.picture_rect()
        sx, sy = r.width() / editor.image.width(), r.height() / editor.image.height()
        x, y, bw, bh = box
        a = QPoint(round(r.x() + (x - 8) * sx), round(r.y() + (y - 8) * sy))
        b = QPoint(round(r.x() + (x + bw + 8) * sx), round(r.y() + (y + bh + 8) * sy))
        QTest.mousePress(editor, Qt.MouseButton.LeftButton, pos=a)
        QTest.mouseMove(editor, b)
        QTest.mouseRelease(editor, Qt.MouseButton.LeftButton, pos=b)
        dialog.person.setCurrentText("Lin-Manuel Miranda")
        wait(app, 4)
        shoot("enrol")
        dialog.reject()
        wait(app, 0.5)

        history = getattr(window, "history_view", None)
        if history is not None:
            window.tabs.setCurrentWidget(history)
            services.recogniser.stop() if services.recogniser else None  # flush tracks into the gallery
            if hasattr(history, "refresh"):
                history.refresh()
            wait(app, 3)
            for row, shown in enumerate(history.rows()):
                if shown.sighting.person == "Lin-Manuel Miranda":
                    history.select_row(row)
                    break
            wait(app, 2)
            shoot("history")
        QTimer.singleShot(0, window.close)
        wait(app, 0.5)
    finally:
        sender.terminate()
        window.close()
        for stop in stops:
            try:
                stop()
            except Exception as exc:
                print(f"stopping: {exc}")
        shutil.rmtree(data, ignore_errors=True)  # its gallery holds faces
    _ = cv2  # OpenCV is imported first so its libraries load before Qt's
    return 0


if __name__ == "__main__":
    sys.exit(main())
